"""The analysis engine: the three stages the serverless pipeline runs, and one function that runs
them on one machine.

- ``analyze_chunk``  (worker container, per chunk): decode + pose + tracking with chunk-local ids.
- ``merge_chunks``   (merge Lambda): stitch chunks, then motion, segments, metrics, primary subject.
- ``render_results`` (compile Lambda): reel, overlay, thumbnails, timeline plot, data files.

``analyze_video`` plans chunks, runs ``analyze_chunk`` in worker threads, and calls the other two.
A one-pass run is the same code with a single chunk.
"""

from __future__ import annotations

import logging
import math
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from posereel import chunks as chunking
from posereel import export, metrics, motion, reel, render, segments, tracking
from posereel.errors import InputError
from posereel.modelstore import resolve_model
from posereel.pose import AdaptivePoseEstimator, PoseEstimator
from posereel.schemas import (
    AnalysisResult,
    ChunkResult,
    ChunkSpec,
    EnergySeries,
    FramePoses,
    MetricsFile,
    SegmentsFile,
    TracksFile,
    TrackSummary,
    VideoInfo,
)
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.video import grid_indices, probe, sample_frames

log = logging.getLogger(__name__)

MIN_LOCAL_CHUNK_S = 6.0
T = TypeVar("T")

# progress(stage, done, total): stage is "pose", "merge" or "render"
ProgressFn = Callable[[str, float, float], None]


def _noop(stage: str, done: float, total: float) -> None:
    return None


def snap_range(
    info: VideoInfo, fps: float, start_s: float = 0.0, end_s: float | None = None
) -> tuple[float, float]:
    """Clip [start_s, end_s) to the video and snap its start onto the analysis grid."""
    end = info.duration_s if end_s is None else min(end_s, info.duration_s)
    start = max(0.0, math.ceil(start_s * fps - 1e-6) / fps)
    if end - start < 1.0 / fps:
        raise InputError(
            f"the range [{start_s}, {end_s}) holds no analysable frame of a {info.duration_s:.2f} s video"
        )
    return start, end


def plan(info: VideoInfo, settings: AnalysisSettings, range_s: tuple[float, float]) -> list[ChunkSpec]:
    """Chunks for a range of the video, on the global analysis grid."""
    start, end = range_s
    specs = chunking.plan_chunks(
        end - start,
        chunk_seconds=settings.chunks.chunk_seconds,
        overlap_seconds=settings.chunks.overlap_seconds,
        grid_fps=settings.sampling.target_fps,
    )
    if start == 0:
        return specs
    return [
        spec.model_copy(
            update={
                "start_s": spec.start_s + start,
                "end_s": min(spec.end_s + start, end),
                "own_start_s": spec.own_start_s + start,
                "own_end_s": min(spec.own_end_s + start, end),
            }
        )
        for spec in specs
    ]


def analyze_chunk(
    source: Path,
    chunk: ChunkSpec,
    *,
    info: VideoInfo,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
    on_frame: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Pose + tracking for one chunk. Track ids are local to the chunk."""
    model_path = resolve_model(settings.pose.model, runtime.model_dir)
    fps = settings.sampling.target_fps
    tracker = tracking.Tracker(settings.tracking, aspect=info.width / info.height)
    frames: list[FramePoses] = []
    t_decode = t_pose = t_track = 0.0
    started = time.perf_counter()
    estimator_type = AdaptivePoseEstimator if settings.pose.adaptive else PoseEstimator
    with estimator_type(settings.pose, model_path) as estimator:
        t_init = time.perf_counter() - started
        stream = sample_frames(
            source,
            info=info,
            start_s=chunk.start_s,
            end_s=chunk.end_s,
            target_fps=fps,
            max_height_px=settings.sampling.max_height_px,
            ffmpeg=runtime.ffmpeg,
        )
        try:
            while True:
                t0 = time.perf_counter()
                sampled = next(stream, None)
                t1 = time.perf_counter()
                t_decode += t1 - t0
                if sampled is None:
                    break
                persons = estimator.detect(sampled.rgb, round(sampled.t_s * 1000))
                t2 = time.perf_counter()
                frames.append(
                    tracker.update(FramePoses(index=sampled.index, t_s=sampled.t_s, persons=persons))
                )
                t_pose += t2 - t1
                t_track += time.perf_counter() - t2
                if on_frame is not None:
                    on_frame(1)
        finally:
            stream.close()
        device, device_note = estimator.device, estimator.device_note
    t0 = time.perf_counter()
    frames = tracking.drop_short_tracks(frames, min_frames=settings.tracking.min_track_frames)
    t_track += time.perf_counter() - t0
    return ChunkResult(
        chunk=chunk,
        video=info,
        analysis_fps=fps,
        model=settings.pose.model,
        device=device,
        device_note=device_note,
        frames=frames,
        timings_s={
            "model_load": round(t_init, 4),
            "decode_wait": round(t_decode, 4),
            "pose": round(t_pose, 4),
            "tracking": round(t_track, 4),
            "total": round(time.perf_counter() - started, 4),
        },
    )


@dataclass(frozen=True)
class Merged:
    """The merge stage's output: the analysis summary and the stitched per-frame poses."""

    result: AnalysisResult
    tracks: TracksFile


def merge_chunks(
    results: list[ChunkResult], *, settings: AnalysisSettings, range_s: tuple[float, float] | None = None
) -> Merged:
    """Stitch chunk results and measure: motion energy, segments, metrics, primary subject, reel windows."""
    started = time.perf_counter()
    frames = chunking.merge_chunk_results(results, tracking=settings.tracking)
    info = results[0].video
    fps = results[0].analysis_fps
    if range_s is None:
        ordered = sorted(results, key=lambda r: r.chunk.index)
        range_s = (ordered[0].chunk.own_start_s, ordered[-1].chunk.own_end_s)
    energies = motion.all_track_energies(
        frames, width=info.width, height=info.height, fps=fps, settings=settings.motion
    )
    primary = motion.choose_primary(energies, fps=fps)
    found = segments.find_segments(
        energies,
        settings=settings.segments,
        primary_track_id=primary if settings.segments.focus == "primary" else None,
    )
    windows = segments.reel_windows(
        found,
        buffer_before_s=settings.reel.buffer_before_s,
        buffer_after_s=settings.reel.buffer_after_s,
        duration_s=info.duration_s,
        range_s=range_s,
    )
    track_metrics = metrics.track_metrics(
        frames, range_s=range_s, fps=fps, width=info.width, height=info.height
    )
    summaries = [
        TrackSummary(
            track_id=tid,
            first_s=float(e.t_s[0]),
            last_s=float(e.t_s[-1]),
            frames=e.frames_seen,
            mean_energy=round(e.mean_energy, 4),
            is_primary=tid == primary,
        )
        for tid, e in sorted(energies.items())
    ]
    series = [
        EnergySeries(
            track_id=tid,
            t_s=[round(float(t), 3) for t in e.t_s],
            energy=[None if math.isnan(v) else round(float(v), 4) for v in e.energy],
        )
        for tid, e in sorted(energies.items())
    ]
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings_s.items():
            timings[f"chunks.{k}"] = round(timings.get(f"chunks.{k}", 0.0) + v, 4)
    timings["merge"] = round(time.perf_counter() - started, 4)
    result = AnalysisResult(
        video=info,
        analysis_fps=fps,
        model=results[0].model,
        devices=[r.device for r in sorted(results, key=lambda r: r.chunk.index)],
        range_s=range_s,
        primary_track_id=primary,
        tracks=summaries,
        segments=found,
        metrics=track_metrics,
        energy=series,
        reel_windows=windows,
        timings_s=timings,
    )
    return Merged(result=result, tracks=TracksFile(video=info, analysis_fps=fps, frames=frames))


@dataclass(frozen=True)
class Outputs:
    """Where render_results wrote each artefact (None where there was nothing to write)."""

    result: Path
    tracks: Path
    segments_json: Path
    metrics_json: Path
    segments_csv: Path
    segments_edl: Path
    timeline: Path
    overlay: Path | None
    reel: Path | None
    thumbnails: list[Path]
    reel_duration_s: float


def render_results(
    source: Path,
    merged: Merged,
    out_dir: Path,
    *,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
    overlay: bool = True,
) -> tuple[AnalysisResult, Outputs]:
    """Write every artefact of an analysis into out_dir; returns the result with render timings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result, frames, info = merged.result, merged.tracks.frames, merged.result.video
    timings = dict(result.timings_s)
    started = time.perf_counter()

    timeline = out_dir / "timeline.png"

    def timed(name: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings[name] = round(time.perf_counter() - t0, 4)

    def make_overlay() -> Path | None:
        if not (overlay and frames):
            return None
        return render.render_overlay(
            source,
            frames,
            out_dir / "overlay.mp4",
            info=info,
            fps=result.analysis_fps,
            max_height_px=settings.reel.overlay_max_height_px,
            primary_track_id=result.primary_track_id,
            preset=settings.reel.preset,
            crf=settings.reel.crf,
            ffmpeg=runtime.ffmpeg,
        )

    def make_pictures() -> list[Path]:
        thumbs = render.render_thumbnails(
            source,
            result.segments,
            out_dir / "thumbnails",
            info=info,
            frames=frames,
            energy=result.energy,
            primary_track_id=result.primary_track_id,
            ffmpeg=runtime.ffmpeg,
        )
        render.render_timeline(
            result.energy,
            result.segments,
            timeline,
            duration_s=info.duration_s,
            primary_track_id=result.primary_track_id,
            title=info.name,
        )
        return thumbs

    # The three are mostly ffmpeg subprocesses: running them side by side keeps both cores busy.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="render") as pool:
        reel_job = pool.submit(
            timed,
            "reel",
            lambda: reel.compile_reel(
                source,
                result.reel_windows,
                out_dir / "reel.mp4",
                info=info,
                settings=settings.reel,
                ffmpeg=runtime.ffmpeg,
            ),
        )
        overlay_job = pool.submit(timed, "overlay", make_overlay)
        pictures_job = pool.submit(timed, "thumbnails_timeline", make_pictures)
        reel_out, overlay_path, thumbs = reel_job.result(), overlay_job.result(), pictures_job.result()
    timings["render_wall"] = round(time.perf_counter() - started, 4)

    result = result.model_copy(update={"timings_s": timings})
    paths = Outputs(
        result=out_dir / "result.json",
        tracks=out_dir / "tracks.json",
        segments_json=out_dir / "segments.json",
        metrics_json=out_dir / "metrics.json",
        segments_csv=out_dir / "segments.csv",
        segments_edl=out_dir / "segments.edl",
        timeline=timeline,
        overlay=overlay_path,
        reel=reel_out.path if reel_out else None,
        thumbnails=thumbs,
        reel_duration_s=reel_out.duration_s if reel_out else 0.0,
    )
    export.write_json(result, paths.result)
    export.write_json(merged.tracks, paths.tracks)
    export.write_json(SegmentsFile.of(result), paths.segments_json)
    export.write_json(MetricsFile.of(result), paths.metrics_json)
    export.segments_csv(result.segments, paths.segments_csv)
    export.segments_edl(
        result.segments, paths.segments_edl, fps=info.fps, title=info.name, reel_name="SOURCE"
    )
    return result, paths


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

    Threads, not processes: MediaPipe and ffmpeg do their work outside the GIL (two threads on
    two cores measured 1.8x one), and threads start in no time and share the loaded modules."""
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
    overlay: bool = True,
    split_for_workers: bool = False,
    progress: ProgressFn = _noop,
) -> tuple[AnalysisResult, Outputs]:
    """The whole analysis of one video (or a range of it) on this machine.

    ``split_for_workers``: shorten the chunks of a short video so every worker has one."""
    t0 = time.perf_counter()
    info = probe(source, ffprobe=runtime.ffprobe)
    range_s = snap_range(info, settings.sampling.target_fps, start_s, end_s)
    if split_for_workers:
        chunk_s = local_chunk_seconds(range_s[1] - range_s[0], settings, workers=workers)
        settings = settings.model_copy(
            update={"chunks": settings.chunks.model_copy(update={"chunk_seconds": chunk_s})}
        )
    specs = plan(info, settings, range_s)
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
    result, outputs = render_results(
        source, merged, out_dir, settings=settings, runtime=runtime, overlay=overlay
    )
    progress("render", 1, 1)
    return result, outputs
