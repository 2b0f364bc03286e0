"""Benchmark: a long recording through the whole pipeline on the embedded local AWS.

Makes a --minutes long 720p video from the shared clips (the one-minute video of bench_pipeline,
looped by stream copy; made once, kept in --out), runs it through ``posereel run``'s code path
(API, presigned multipart upload, Step Functions, Lambda handlers, Batch workers and stage jobs as
local processes) and prints: wall time and wall / video length, the seconds of each stage, what
each stage's process used (wall, CPU, peak memory, S3 requests, where it ran), the bytes S3 sent
each stage (told apart by the User-Agent each request carries; what each chunk worker read against
its share of the source), the job's cost
estimate, and a projection, from the measured per-chunk and per-stage rates, of a 3-hour 1080p
video in AWS at the prod environment's max_concurrency.

Targets on these 2 cores: wall <= 0.5 x the video's length; no stage in a Lambda above 2 GB of
memory or 10 minutes (long uploads' scan, merge and compile run as stage jobs). Not in CI (tens of
minutes). Run with `make bench-long` (MINUTES=10 for a shorter run).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import make_one_minute_video

from posereel.costs import estimate
from posereel.pipeline.scan import PIECE_BYTES, pieces
from posereel.resources import STAGE_JOB
from posereel.settings import CostBasis
from posereel.usage import Platform, StageUse

REPO = Path(__file__).resolve().parents[2]
LAMBDA_MEMORY_TARGET_MB = 2048
LAMBDA_WALL_TARGET_S = 600
PROJECTED_S = 3 * 3600
# 1080p H.264 as cameras and phones record it (about 8 Mbit/s): the size the projected scan reads.
PROJECTED_BYTES_PER_S = 8e6 / 8


def long_video(media: Path, out: Path, minutes: float) -> Path:
    target = out / f"long_{minutes:g}min_720p.mp4"
    if target.exists():
        return target
    base = make_one_minute_video(media, out)
    loops = math.ceil(minutes)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(base), "-c", "copy",
         "-t", str(minutes * 60), "-movflags", "+faststart", str(target)],
        check=True,
    )  # fmt: skip
    return target


def prod_config() -> dict:
    environments = json.loads((REPO / "cdk.json").read_text())["context"]["posereel:environments"]
    return environments["prod"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from posereel_local.run import run_video
    from posereel_local.stack import LocalStack

    video = long_video(args.media, args.out, args.minutes)
    size = video.stat().st_size
    print(f"{video.name}: {args.minutes:g} minutes, {size / 1e9:.2f} GB")
    started = time.perf_counter()
    with LocalStack(api_port=0) as stack:
        outcome = run_video(stack, video, args.out / "run", timeout_s=args.minutes * 60 * 3, poll_s=2.0)
        chunk_seconds = stack.settings.chunks.chunk_seconds
        concurrency = stack.max_concurrency
        assert stack.aws.s3_reads is not None
        read = stack.aws.s3_reads.of_job(outcome.record.job_id)
    wall = time.perf_counter() - started
    record = outcome.record
    if outcome.exit_code != 0:
        sys.exit(f"the job ended {record.status.value}: {record.error}")
    length = (
        record.result.video_duration_s
        if record.result and record.result.video_duration_s
        else 60 * args.minutes
    )

    print(f"\nwall {wall:.0f} s for {length / 60:.1f} minutes of video = {wall / length:.2f} x its length "
          f"(target <= 0.50: {'met' if wall / length <= 0.5 else 'NOT met'}); "
          f"{record.chunks_total} chunks of {chunk_seconds:g} s, {concurrency} at once")  # fmt: skip
    print("seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in record.stage_seconds.items()))
    read_by_key = bytes_by_usage_key(read, record.devices)
    print(f"\n{'stage':<12}{'where':>11}{'runs':>6}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}{'S3 req':>8}"
          f"{'S3 MB read':>12}")  # fmt: skip
    over: list[str] = []
    for key, use in record.usage.items():
        print(f"{key:<12}{use.platform.value:>11}{use.runs:>6}{use.wall_s:>9.1f}{use.cpu_s:>9.1f}"
              f"{use.peak_memory_mb:>9.0f}{use.s3_gets + use.s3_puts:>8}"
              f"{read_by_key.get(key, 0) / 1e6:>12.1f}")  # fmt: skip
        per_run = use.wall_s / use.runs
        if use.platform == Platform.LAMBDA and (
            use.peak_memory_mb > LAMBDA_MEMORY_TARGET_MB or per_run > LAMBDA_WALL_TARGET_S
        ):
            over.append(f"{key} ({use.peak_memory_mb:.0f} MB, {per_run:.0f} s a run)")
    print(
        "Lambda stages within 2 GB and 10 minutes: "
        + ("met" if not over else "NOT met: " + ", ".join(over))
        + " (peak memory: the stage's process and its children, ffmpeg's included)"
    )
    if record.cost is not None:
        print(f"cost estimate (on-demand list prices, CPU workers): {record.cost.total_usd:.4f} USD, "
              f"{record.cost.per_video_minute_usd or 0:.5f} USD per video minute")  # fmt: skip
    print_chunk_reads(read, size, record.chunks_total)
    project(record.usage, record.chunks_total, length, size, chunk_seconds)


def bytes_by_usage_key(read: dict[str, int], devices: dict[str, str]) -> dict[str, int]:
    """The bytes S3 sent each stage, under the job record's usage keys: a chunk ("ANALYZE/3")
    under its device's ("ANALYZE_CPU")."""
    out: dict[str, int] = {}
    for stage, count in read.items():
        name, _, chunk = stage.partition("/")
        key = f"{name}_{devices.get(chunk, 'cpu').upper()}" if chunk else name
        out[key] = out.get(key, 0) + count
    return out


def print_chunk_reads(read: dict[str, int], size_bytes: int, chunks: int) -> None:
    """What each chunk worker read of the source, against its share of it (target: about 2x at
    most). S3 sends a range read as fast as the connection takes it, so a reader that stops
    early is counted for what the socket buffers held too, as S3 would have sent it."""
    per_chunk = [n for stage, n in read.items() if stage.startswith("ANALYZE/")]
    if not per_chunk or not chunks:
        return
    share = size_bytes / chunks
    worst = max(per_chunk) / share
    print(f"chunk workers read {sum(per_chunk) / size_bytes:.2f} x the source in all; each "
          f"{min(per_chunk) / share:.2f}-{worst:.2f} x its share of {share / 1e6:.1f} MB "
          f"(target <= about 2: {'met' if worst <= 2.2 else 'NOT met'}; the scan "
          f"{read.get('SCAN', 0) + read.get('SCAN_JOB', 0):,} bytes of {size_bytes:,})")  # fmt: skip


def _stage(usage: dict[str, StageUse], key: str) -> StageUse | None:
    """A stage's use, its stage job's and its Lambda's together."""
    found = [use for k, use in usage.items() if k in (key, f"{key}_JOB")]
    return None if not found else max(found, key=lambda u: u.wall_s)


def project(
    usage: dict[str, StageUse], chunks: int, length_s: float, size_bytes: int, chunk_s: float
) -> None:
    """3 hours of 1080p at prod's max_concurrency, from the rates measured here, on CPU workers
    (frames are scaled to the same analysis height, so a 1080p chunk costs about a 720p one plus
    its decode). The GPU path is not measured here: no GPU on this machine."""
    prod = prod_config()
    concurrency = int(prod["max_concurrency"])
    worker = usage.get("ANALYZE_CPU")
    if worker is None:
        print("\nno CPU chunk jobs measured: no projection")
        return
    chunk_wall = worker.wall_s / worker.runs
    projected_chunks = math.ceil(PROJECTED_S / chunk_s)
    waves = math.ceil(projected_chunks / concurrency)
    times = {"ANALYZE": waves * chunk_wall}
    for key in ("VALIDATE", "PLAN"):
        use = _stage(usage, key)
        times[key] = use.wall_s / use.runs if use else 0.0
    # At 3 hours scan and compile run as stage jobs, their pieces side by side on its vCPUs: the
    # scan's pieces in rounds of that many; the reel's passes and the overlay's pieces are
    # CPU-bound, so the compile's CPU seconds shared out. The merge is one process.
    scan = _stage(usage, "SCAN")
    if scan is not None:
        projected_pieces = len(pieces(round(PROJECTED_S * PROJECTED_BYTES_PER_S)))
        piece_s = scan.wall_s / size_bytes * PIECE_BYTES
        times["SCAN"] = math.ceil(projected_pieces / STAGE_JOB.vcpus) * piece_s
    merge = _stage(usage, "MERGE")
    if merge is not None:
        times["MERGE"] = merge.wall_s * PROJECTED_S / length_s
    compile_use = _stage(usage, "COMPILE")
    if compile_use is not None:
        times["COMPILE"] = compile_use.cpu_s / STAGE_JOB.vcpus * PROJECTED_S / length_s
    total = sum(times.values())
    # Cost: each stage's use scaled with the length; the chunk jobs with their number.
    per_chunk, per_length = projected_chunks / max(1, chunks), PROJECTED_S / length_s

    def scaled(key: str, use: StageUse) -> StageUse:
        factor = per_chunk if key.startswith("ANALYZE") else per_length
        runs = max(1, round(use.runs * per_chunk)) if key.startswith("ANALYZE") else use.runs
        # A stage job is priced by its vCPUs for its wall: in AWS its pieces share them out.
        wall = use.cpu_s / STAGE_JOB.vcpus if key.endswith(STAGE_JOB.usage_suffix) else use.wall_s
        return use.model_copy(
            update={
                "wall_s": wall * factor,
                "runs": runs,
                "s3_gets": round(use.s3_gets * factor),
                "s3_puts": round(use.s3_puts * factor),
            }
        )

    projected_usage = {key: scaled(key, use) for key, use in usage.items()}
    basis = CostBasis(**prod.get("prices", {}))
    cost = estimate(projected_usage, basis, chunks=projected_chunks, cpu_chunks=projected_chunks,
                    video_duration_s=PROJECTED_S)  # fmt: skip
    print(f"\nprojection, 3 hours of 1080p in AWS at prod's max_concurrency {concurrency} "
          f"({projected_chunks} "
          f"chunks of {chunk_s:g} s, {waves} waves of {chunk_wall:.0f} s on CPU workers):")  # fmt: skip
    print("  " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items())
          + f" (scan and compile side by side on the stage job's {STAGE_JOB.vcpus} vCPUs)")  # fmt: skip
    print(f"  wall about {total / 60:.0f} minutes (target < 10 on GPU workers; the GPU is not measured here, "
          f"and Batch's start-up, about a minute per wave, is not in it)")  # fmt: skip
    print(f"  cost about {cost.per_video_minute_usd or 0:.4f} USD per video minute on Fargate CPU workers at "
          f"prod's prices (target < 0.002 on GPU spot: not measured here)")  # fmt: skip


if __name__ == "__main__":
    main()
