"""Benchmark: the serverless pipeline's overhead over the bare engine.

Joins the shared 720p clips into a 1-minute 720p video (made once, kept in --out), then times
`posereel analyze` (the engine alone) and `posereel run` (the whole pipeline on the embedded local
AWS: API, presigned upload, Step Functions, Lambda handlers, Batch workers, result download) on it.
Target: run <= 1.25 x analyze + 5 s. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CLIPS = ["hybrik_taiji", "sports2d_walk_in_out", "sports2d_fitness_lateral_raise", "hybrik_taiji"]
TARGET_S = 60.0


def make_one_minute_video(media: Path, out: Path) -> Path:
    """The 720p clips, scaled to 1280x720 at 30 fps and joined, cut to 60 s."""
    target = out / "one_minute_720p.mp4"
    if target.exists():
        return target
    inputs: list[str] = []
    for name in CLIPS:
        inputs += ["-i", str(media / f"{name}.mp4")]
    n = len(CLIPS)
    chains = "".join(f"[{i}:v]scale=1280:720,fps=30,format=yuv420p,setsar=1[v{i}];" for i in range(n))
    joined = "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            chains + joined,
            "-map",
            "[v]",
            "-t",
            str(TARGET_S),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-movflags",
            "+faststart",
            str(target),
        ],
        check=True,
    )
    return target


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    video = make_one_minute_video(args.media, args.out)
    posereel = str(Path(sys.executable).parent / "posereel")
    analyze_s = timed([posereel, "analyze", str(video), "--out", str(args.out / "analyze"), "--quiet"])
    run_s = timed([posereel, "run", str(video), "--out", str(args.out / "run")])
    budget = 1.25 * analyze_s + 5.0
    engine = json.loads((args.out / "analyze" / "result.json").read_text())
    segments_run = sorted((args.out / "run").rglob("segments.json"))
    print(f"one-minute 720p video ({engine['video']['duration_s']:.1f} s):")
    print(
        f"  posereel analyze (engine alone)        {analyze_s:6.1f} s = {analyze_s / TARGET_S:.2f}x real time"
    )
    print(f"  posereel run (pipeline, local AWS)     {run_s:6.1f} s = {run_s / TARGET_S:.2f}x real time")
    print(
        f"  overhead {run_s - analyze_s:+.1f} s ({(run_s / analyze_s - 1) * 100:+.0f} %); "
        f"target run <= 1.25 x analyze + 5 s = {budget:.1f} s: {'met' if run_s <= budget else 'NOT met'}"
    )
    if segments_run:
        ran = json.loads(segments_run[0].read_text())["segments"]
        print(f"  segments: engine {len(engine['segments'])}, pipeline {len(ran)}")


if __name__ == "__main__":
    main()
