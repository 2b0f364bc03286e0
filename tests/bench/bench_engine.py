"""Benchmark: PoseReel's engine against a naive baseline, on the shared clips.

For each clip, in the same run:
- engine:   `posereel analyze` with its defaults (lite model, 10 fps, 480 px, one chunk thread per core),
            the default outputs (reel, thumbnails, timeline, data: no overlay video, the page draws
            skeletons from tracks.json); and again with --overlay, for what that video costs.
- baseline: every frame at full resolution, single-person MediaPipe (lite, VIDEO mode), OpenCV decode,
            then the same reel windows cut and joined with MoviePy clip by clip.
Fractions of real time (x RT) are seconds per second of video. "analysis" is the wall time of the
decode + pose + tracking stage; inside it, "decode" is ffmpeg's CPU time, "pose" and "tracking" the
seconds spent in them summed over chunk threads (so with two threads they can exceed the wall
time). "reel+render" sums the reel and picture renders, which run side by side. Peak
memory is the RSS of the whole process tree, sampled every 50 ms. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from proctree import tree_rss_bytes

CLIPS = [
    "hybrik_taiji",
    "sports2d_walk_in_out",
    "sports2d_fitness_lateral_raise",
    "sports2d_park_walk",
    "musepose_dance",
    "mmaction2_basketball",
    "pets2009_vtest_crowd_walking",
]
HERE = Path(__file__).resolve().parent


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS of its process tree in bytes)."""
    peak = 0
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid)[0])
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clips", nargs="*", default=CLIPS)
    parser.add_argument("--no-baseline", action="store_true", help="engine only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    rows = []
    for name in args.clips:
        src = args.media / f"{name}.mp4"
        out = args.out / name
        wall, peak = run_measured(
            [str(bin_dir / "posereel"), "analyze", str(src), "--out", str(out), "--quiet"]
        )
        result = json.loads((out / "result.json").read_text())
        dur = result["range_s"][1] - result["range_s"][0]
        t = result["timings_s"]
        row = {
            "clip": name,
            "size": f"{result['video']['width']}x{result['video']['height']}",
            "duration_s": dur,
            "engine_s": wall,
            "engine_rt": wall / dur,
            "decode_rt": t.get("decode_cpu", 0) / dur,
            "pose_rt": t.get("chunks.pose", 0) / dur,
            "tracking_rt": t.get("chunks.tracking", 0) / dur,
            "analysis_rt": t.get("chunks_wall", 0) / dur,
            "reel_rt": (t.get("reel", 0) + t.get("overlay", 0) + t.get("thumbnails_timeline", 0)) / dur,
            "engine_peak_mb": peak / 2**20,
            "windows": result["reel_windows"],
        }
        # What the optional overlay video adds.
        overlay_wall, _ = run_measured(
            [
                str(bin_dir / "posereel"),
                "analyze",
                str(src),
                "--out",
                str(out / "with-overlay"),
                "--quiet",
                "--overlay",
            ]
        )
        row["engine_overlay_s"] = overlay_wall
        if not args.no_baseline:
            windows = json.dumps([[w["start_s"], w["end_s"]] for w in result["reel_windows"]])
            bwall, bpeak = run_measured(
                [
                    sys.executable,
                    str(HERE / "naive_baseline.py"),
                    str(src),
                    "--windows",
                    windows,
                    "--out",
                    str(out / "naive_reel.mp4"),
                ]
            )
            row.update(
                baseline_s=bwall,
                baseline_rt=bwall / dur,
                ratio=bwall / wall,
                ratio_overlay=bwall / overlay_wall,
                baseline_peak_mb=bpeak / 2**20,
            )
        rows.append(row)
        print(_line(row), flush=True)
    (args.out / "bench.json").write_text(json.dumps(rows, indent=2))
    _summary(rows)


def _line(r: dict) -> str:
    base = (
        f"  baseline {r['baseline_s']:6.1f}s ({r['baseline_rt']:.2f}x RT, {r['baseline_peak_mb']:.0f} MB)"
        f"  speed-up {r['ratio']:.1f}x (with --overlay: {r['ratio_overlay']:.1f}x)"
        if "baseline_s" in r
        else ""
    )
    return (
        f"{r['clip']:<32} {r['size']:>9} {r['duration_s']:5.1f}s | engine {r['engine_s']:5.1f}s "
        f"= {r['engine_rt']:.2f}x RT (analysis {r['analysis_rt']:.2f}: decode {r['decode_rt']:.2f} "
        f"pose {r['pose_rt']:.2f} tracking {r['tracking_rt']:.3f}; reel+render {r['reel_rt']:.2f}) "
        f"peak {r['engine_peak_mb']:.0f} MB; --overlay {r['engine_overlay_s']:.1f}s{base}"
    )


def _summary(rows: list[dict]) -> None:
    hd = [r for r in rows if r["size"].endswith("x720")]
    total_d = sum(r["duration_s"] for r in rows)
    print()
    print(
        f"all clips: {total_d:.1f} s of video, engine {sum(r['engine_s'] for r in rows):.1f} s "
        f"= {sum(r['engine_s'] for r in rows) / total_d:.2f}x real time"
    )
    if hd:
        d = sum(r["duration_s"] for r in hd)
        analysis = sum(r["analysis_rt"] * r["duration_s"] for r in hd) / d
        e2e = sum(r["engine_s"] for r in hd) / d
        print(f"720p clips: analysis {analysis:.2f}x real time (target <= 0.30), end to end {e2e:.2f}x")
    if rows and "ratio" in rows[0]:
        base = sum(r["baseline_s"] for r in rows)
        eng = sum(r["engine_s"] for r in rows)
        print(
            f"baseline {base:.1f} s vs engine {eng:.1f} s: {base / eng:.1f}x faster end to end (target >= 3)"
        )
    print(
        f"peak memory: engine {max(r['engine_peak_mb'] for r in rows):.0f} MB"
        + (
            f", baseline {max(r['baseline_peak_mb'] for r in rows):.0f} MB"
            if rows and "ratio" in rows[0]
            else ""
        )
    )


if __name__ == "__main__":
    main()
