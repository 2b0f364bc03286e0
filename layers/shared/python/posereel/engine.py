"""The analysis of one video on this machine: plan its chunks, run stage 1 (posereel.stages.analyze)
for each in worker threads, then stages 2 and 3 (merge, compile). A one-pass run is the same code
with a single chunk; the serverless pipeline runs the same stages in a worker and two functions.

The output folder also keeps how it was made (``ANALYSIS_FILE``: the video's path and the
settings), so ``recut_folder`` cuts more reels from it into reels/N/, as the recut function does
for a job.
"""

from __future__ import annotations

import logging
import math
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from posereel import chunks as chunking
from posereel import export, grid
from posereel.errors import InputError, VideoNotFoundError
from posereel.outputs import REELS_DIR, RESULT_FILES
from posereel.schemas import AnalysisResult, ChunkResult, ChunkSpec, Model, ReelFile, TracksFile, VideoInfo
from posereel.settings import AnalysisSettings, ReelRequest, RuntimeSettings
from posereel.stages.analyze import analyze_chunk
from posereel.stages.compile import Outputs, render_results
from posereel.stages.merge import Merged, merge_chunks
from posereel.stages.recut import cut_reel
from posereel.video import grid_indices, probe

log = logging.getLogger(__name__)

MIN_LOCAL_CHUNK_S = 6.0
ANALYSIS_FILE = "analysis.json"


class LocalAnalysis(Model):
    """analysis.json of an ``analyze`` output folder: what was analysed, and how."""

    source: Path
    settings: AnalysisSettings


# progress(stage, done, total): stage is "pose", "merge" or "render"
ProgressFn = Callable[[str, float, float], None]


def _noop(stage: str, done: float, total: float) -> None:
    return None


def snap_range(
    info: VideoInfo, fps: float, start_s: float = 0.0, end_s: float | None = None
) -> tuple[float, float]:
    """Clip [start_s, end_s) to the video and snap its start onto the analysis grid."""
    end = info.duration_s if end_s is None else min(end_s, info.duration_s)
    start = max(0.0, grid.snap_up(start_s, fps))
    if end - start < 1.0 / fps:
        raise InputError(
            f"the range [{start_s}, {end_s}) holds no analysable frame of a {info.duration_s:.2f} s video"
        )
    return start, end


def run_chunks(
    source: Path,
    specs: list[ChunkSpec],
    *,
    info: VideoInfo,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
    workers: int,
    progress: ProgressFn = _noop,
) -> list[ChunkResult]:
    """analyze_chunk for every chunk, ``workers`` at a time.

    Threads, not processes: the model runtimes (ONNX Runtime, LiteRT) and ffmpeg do their work
    outside the GIL, and threads start in no time and share the loaded modules."""
    fps = settings.sampling.target_fps
    total = sum(
        len(grid_indices(s.start_s, s.end_s, target_fps=fps, duration_s=info.duration_s)) for s in specs
    )
    done = 0
    lock = threading.Lock()

    def tick(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            progress("pose", done, total)

    def one(spec: ChunkSpec) -> ChunkResult:
        return analyze_chunk(source, spec, info=info, settings=settings, runtime=runtime, on_frame=tick)

    if workers <= 1 or len(specs) == 1:
        return [one(spec) for spec in specs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk") as pool:
        return list(pool.map(one, specs))


def local_chunk_seconds(duration_s: float, settings: AnalysisSettings, *, workers: int) -> float:
    """Chunk length for a run on this machine: the configured one, shortened so that every
    worker gets a chunk of a short video (never below ``MIN_LOCAL_CHUNK_S``)."""
    chunk = settings.chunks.chunk_seconds
    if workers <= 1 or duration_s >= workers * chunk:
        return chunk
    share = duration_s / workers + settings.chunks.overlap_seconds
    return min(chunk, max(MIN_LOCAL_CHUNK_S, math.ceil(share)))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def analyze_video(
    source: Path,
    out_dir: Path,
    *,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
    start_s: float = 0.0,
    end_s: float | None = None,
    workers: int = 1,
    split_for_workers: bool = False,
    progress: ProgressFn = _noop,
) -> tuple[AnalysisResult, Outputs]:
    """The whole analysis of one video (or a range of it) on this machine.

    ``split_for_workers``: shorten the chunks of a short video so every worker has one."""
    t0 = time.perf_counter()
    info = probe(source, ffprobe=runtime.ffprobe)
    settings = settings.for_video(info.fps)
    range_s = snap_range(info, settings.sampling.target_fps, start_s, end_s)
    if split_for_workers:
        chunk_s = local_chunk_seconds(range_s[1] - range_s[0], settings, workers=workers)
        settings = settings.model_copy(
            update={"chunks": settings.chunks.model_copy(update={"chunk_seconds": chunk_s})}
        )
    specs = chunking.plan_chunks(
        range_s[1],
        start_s=range_s[0],
        chunk_seconds=settings.chunks.chunk_seconds,
        overlap_seconds=settings.chunks.overlap_seconds,
        grid_fps=settings.sampling.target_fps,
    )
    t_probe = time.perf_counter() - t0
    t0 = time.perf_counter()
    children_cpu = _children_cpu_s()
    results = run_chunks(
        source, specs, info=info, settings=settings, runtime=runtime, workers=workers, progress=progress
    )
    t_chunks = time.perf_counter() - t0
    decode_cpu = _children_cpu_s() - children_cpu  # the ffmpeg decoders, the only children here
    progress("merge", 0, 1)
    merged = merge_chunks(results, settings=settings, range_s=range_s)
    timings = {
        "probe": round(t_probe, 4),
        "chunks_wall": round(t_chunks, 4),
        "decode_cpu": round(decode_cpu, 4),
        **merged.result.timings_s,
    }
    merged = Merged(result=merged.result.model_copy(update={"timings_s": timings}), tracks=merged.tracks)
    progress("merge", 1, 1)
    progress("render", 0, 1)
    result, outputs = render_results(source, merged, out_dir, settings=settings, runtime=runtime)
    export.write_json(LocalAnalysis(source=source.resolve(), settings=settings), out_dir / ANALYSIS_FILE)
    progress("render", 1, 1)
    return result, outputs


def recut_folder(out_dir: Path, request: ReelRequest, *, runtime: RuntimeSettings) -> tuple[Path, ReelFile]:
    """Cut another reel from an ``analyze`` output folder (its tracks: no pose estimation) into
    its next free reels/N/ (N from 1); returns that folder and what its reel.json holds. Raises
    InputError when the folder is no analysis, VideoNotFoundError when its video moved."""
    try:
        made = export.read_json(out_dir / ANALYSIS_FILE, LocalAnalysis)
        result = export.read_json(out_dir / RESULT_FILES["result"], AnalysisResult)
        tracks = export.read_json(out_dir / RESULT_FILES["tracks"], TracksFile)
    except FileNotFoundError as exc:
        raise InputError(f"{out_dir} holds no analysis (run posereel analyze first): {exc.filename}") from exc
    if not made.source.is_file():
        raise VideoNotFoundError(f"the analysed video is no longer at {made.source}")
    taken = {int(p.name) for p in (out_dir / REELS_DIR).glob("*") if p.name.isdigit()}
    reel_id = max(taken, default=0) + 1
    folder = out_dir / REELS_DIR / str(reel_id)
    settings = request.applied_to(made.settings)
    reel = cut_reel(made.source, result, tracks, folder, reel_id=reel_id, settings=settings, runtime=runtime)
    return folder, reel
