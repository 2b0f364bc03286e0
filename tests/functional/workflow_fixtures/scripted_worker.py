"""Test-only stand-in for the chunk worker: takes the worker's arguments and exits 1 on the CPU
queue for jobs named "cpufail-...", else 0."""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--job-id", "--chunk", "--bucket", "--device"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    print(f"chunk {args.chunk} of {args.job_id} on the {args.device}", flush=True)
    return 1 if args.job_id.startswith("cpufail-") and args.device == "cpu" else 0


if __name__ == "__main__":
    sys.exit(main())
