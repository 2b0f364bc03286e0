"""Test-only Batch job command: records what it was given, waits for its siblings (proving the
jobs run at the same time), then exits with the code it was asked for."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--greeting", required=True)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--barrier", type=int, default=1, help="wait until this many jobs started")
    parser.add_argument("--sleep-s", type=float, default=0.0)
    args = parser.parse_args()

    out_dir = Path(args.out_dir)
    started_at = time.time()
    (out_dir / f"started-{args.queue}-{args.index}").touch()
    print(f"job {args.queue}/{args.index} started", flush=True)
    give_up = time.monotonic() + 20
    while len(list(out_dir.glob(f"started-{args.queue}-*"))) < args.barrier:
        if time.monotonic() > give_up:
            print("siblings never started: jobs are not running in parallel", file=sys.stderr)
            return 3
        time.sleep(0.02)
    time.sleep(args.sleep_s)
    record = {
        "argv": sys.argv[1:],
        "pid": os.getpid(),
        "started_at": started_at,
        "ended_at": time.time(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "DEF_", "CHUNK_", "MANAGED_"))},
    }
    (out_dir / f"{args.queue}-{args.index}.json").write_text(json.dumps(record))
    print(f"job {args.queue}/{args.index} done, exiting {args.exit_code}", flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
