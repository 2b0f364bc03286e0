"""Stage 1, per chunk (the worker container): decode the chunk's grid frames, find the people in
each, and track them with chunk-local ids."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from posereel import tracking
from posereel.modelstore import resolve_model
from posereel.pose import AdaptivePoseEstimator, PoseEstimator
from posereel.schemas import ChunkResult, ChunkSpec, FramePoses, VideoInfo
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.video import sample_frames


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
