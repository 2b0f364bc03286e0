"""PoseReel's Batch worker: analyses one chunk of a job's video (pose + tracking) and stores the
chunk result next to the plan, or runs one stage of a long upload (posereel_worker.stage). Run as
``python -m posereel_worker`` (the image's ENTRYPOINT)."""

import logging
import sys


def log_to_stdout(context: str) -> None:
    """INFO and up on stdout (a container's stdout is its CloudWatch log stream), each line with
    ``context`` (``job=... chunk=...``); botocore only from WARNING (it logs where it found
    credentials)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s %(levelname)s {context} %(name)s: %(message)s",
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
