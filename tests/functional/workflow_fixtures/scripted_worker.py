"""Test-only stand-in for the chunk worker: takes the worker's arguments and, on the CPU queue,
exits 1 for jobs named "cpufail-...", 2 (an input error) for "badinput-...", and is killed
(SIGKILL) on its first attempt for "killed-..."; else exits 0."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--job-id", "--chunk", "--bucket", "--device"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    print(f"chunk {args.chunk} of {args.job_id} on the {args.device}", flush=True)
    if args.device != "cpu":
        return 0
    scenario = args.job_id.split("-", 1)[0]
    if scenario == "killed" and os.environ.get("AWS_BATCH_JOB_ATTEMPT") == "1":
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a lost Spot host would
    return {"cpufail": 1, "badinput": 2}.get(scenario, 0)


if __name__ == "__main__":
    sys.exit(main())
