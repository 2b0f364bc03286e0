"""Stress: a burst of concurrent uploads through the local stack's HTTP API, as `posereel up` serves it.

N clients at once (default 100) each announce a short clip (POST /uploads), send it with the
presigned form and poll their job until it ends. Prints how many jobs reached each terminal
state, how many were lost (an announce or upload that got no answer, or a job that never
ended within --timeout), the peak memory of the whole stack (this process, its Lambda workers
and Batch job processes) and how many processes were left once it was idle. Target: N of N
terminal, 0 lost, none stuck. Run with `make stress`; not part of CI.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from proctree import tree_rss_bytes

from posereel_local.client import ApiClient, ApiError, JobTimeout
from posereel_local.stack import LocalStack

CLIP = "sports2d_walk_in_out"
CLIP_S = 2.5


def short_clip(media: Path, out: Path) -> Path:
    target = out / "stress_clip.mp4"
    if not target.exists():
        cut = [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(media / f"{CLIP}.mp4"),
            "-t",
            str(CLIP_S),
            "-c",
            "copy",
        ]
        subprocess.run([*cut, str(target)], check=True)
    return target


class PeakMemory:
    """Samples the stack's resident memory every 0.5 s in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, tree_rss_bytes(os.getpid())[0])

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_client(api: ApiClient, clip: Path, timeout_s: float) -> str:
    """One user: announce, upload, poll until the job ends. Returns its terminal status, or why
    it was lost."""
    try:
        job_id = api.submit(clip)
    except (ApiError, OSError) as exc:
        return f"LOST (upload: {type(exc).__name__})"
    try:
        job = api.wait(job_id, timeout_s=timeout_s, poll_s=5.0)
        # A job that did not succeed says why, so that a run shows what failed, not only how many
        return job.status.value if job.error is None else f"{job.status.value} ({job.error.code})"
    except JobTimeout:
        return "STUCK"
    except (ApiError, OSError) as exc:
        return f"LOST (poll: {type(exc).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "posereel-stress")
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds each job may take")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clip = short_clip(args.media, args.out)
    model_dir = os.environ.get("POSEREEL_MODEL_DIR")
    started = time.monotonic()
    with LocalStack(api_port=0, model_dir=model_dir) as stack, PeakMemory() as memory:
        api = ApiClient(stack.api_url, api_key=stack.api_key)
        with ThreadPoolExecutor(max_workers=args.uploads) as pool:
            outcomes = list(pool.map(lambda _: one_client(api, clip, args.timeout), range(args.uploads)))
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 120
        while stack.in_flight() and time.monotonic() < deadline:
            time.sleep(0.5)
        _, processes = tree_rss_bytes(os.getpid())
        peak = memory.peak
    counts = collections.Counter(outcomes)
    ended = ("SUCCEEDED", "FAILED", "REJECTED")
    terminal = sum(n for status, n in counts.items() if status.split()[0] in ended)
    lost = sum(n for status, n in counts.items() if status.startswith("LOST"))
    print(f"stress: {args.uploads} concurrent uploads of a {CLIP_S} s clip through the local API")
    for status, n in sorted(counts.items()):
        print(f"  {status:<24} {n:>4}")
    print(f"  terminal {terminal} of {args.uploads}, lost {lost}, stuck {counts.get('STUCK', 0)}")
    print(f"  wall {elapsed:.0f} s, peak memory of the stack {peak / 2**30:.2f} GiB, "
          f"processes left when idle {processes}")  # fmt: skip
    return 0 if terminal == args.uploads else 1


if __name__ == "__main__":
    sys.exit(main())
