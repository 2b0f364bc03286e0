"""Stage 1, per chunk (the worker container): decode the chunk's grid frames, find the people in
each (posereel.pose), track them with chunk-local ids (posereel.tracking), and note what each track
looks like (posereel.appearance) for linking over the whole video."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from posereel import appearance, grid, tracking
from posereel.modelstore import DETECTOR, resolve_model
from posereel.pose import ModelFiles, PersonFinder
from posereel.schemas import Box, ChunkResult, ChunkSpec, FramePoses, PersonPose, TrackAppearance, VideoInfo
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.video import VideoSource, sample_frames


def model_files(settings: AnalysisSettings, runtime: RuntimeSettings) -> ModelFiles:
    """The verified model files an analysis with ``settings`` runs."""
    return ModelFiles(
        landmarks=resolve_model(settings.pose.model, runtime.model_dir),
        detector=resolve_model(DETECTOR.name, runtime.model_dir),
    )


def analyze_chunk(
    source: VideoSource,
    chunk: ChunkSpec,
    *,
    info: VideoInfo,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
    on_frame: Callable[[int], None] | None = None,
) -> ChunkResult:
    """People and their chunk-local tracks for one chunk."""
    fps = settings.sampling.target_fps
    tracker = tracking.Tracker(settings.tracking, fps=fps)
    frames: list[FramePoses] = []
    # What each person found looks like, until their frame is tracked (one frame later). Looks are
    # noted on the frames the chunk owns only: the merge keeps those, so a person's look over the
    # whole video is the same however the video was chunked (the overlap is not counted twice).
    owned = range(
        grid.index_at_or_after(chunk.own_start_s, fps), grid.index_at_or_after(chunk.own_end_s, fps)
    )
    described: dict[int, dict[Box, np.ndarray]] = {}
    looks: dict[int, tuple[np.ndarray, int]] = {}
    t_decode = t_pose = t_track = 0.0
    started = time.perf_counter()
    threads = runtime.model_threads()
    with PersonFinder(settings.pose, model_files(settings, runtime), fps=fps, threads=threads) as finder:
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
                persons = finder.find(sampled.rgb, sampled.index)
                t2 = time.perf_counter()
                described[sampled.index] = _describe(sampled.rgb, persons) if sampled.index in owned else {}
                done = tracker.update(FramePoses(index=sampled.index, t_s=sampled.t_s, persons=persons))
                if done is not None:
                    _note_looks(looks, described.pop(done.index), done)
                    frames.append(done)
                t_pose += t2 - t1
                t_track += time.perf_counter() - t2
                if on_frame is not None:
                    on_frame(1)
        finally:
            stream.close()
        done = tracker.flush()
        if done is not None:
            _note_looks(looks, described.pop(done.index), done)
            frames.append(done)
        device, device_note, detector_runs = finder.device, finder.device_note, finder.detector_runs
    return ChunkResult(
        chunk=chunk,
        video=info,
        analysis_fps=fps,
        model=settings.pose.model,
        device=device,
        device_note=device_note,
        frames=frames,
        tracks=[
            TrackAppearance(track_id=tid, histogram=[round(float(v), 5) for v in hist], seen=seen)
            for tid, (hist, seen) in sorted(looks.items())
        ],
        timings_s={
            "model_load": round(t_init, 4),
            "decode_wait": round(t_decode, 4),
            "pose": round(t_pose, 4),
            "tracking": round(t_track, 4),
            "detector_runs": float(detector_runs),
            "total": round(time.perf_counter() - started, 4),
        },
    )


def _describe(rgb: np.ndarray, persons: list[PersonPose]) -> dict[Box, np.ndarray]:
    """Each person's look (posereel.appearance), by box (unique within a frame)."""
    if not persons:
        return {}
    hsv = appearance.hsv_frame(rgb)
    out = {}
    for person in persons:
        look = appearance.describe(hsv, person)
        if look is not None:
            out[person.box] = look
    return out


def _note_looks(
    looks: dict[int, tuple[np.ndarray, int]], described: dict[Box, np.ndarray], frame: FramePoses
) -> None:
    for person in frame.persons:
        look = described.get(person.box)
        if look is None or person.track_id is None:
            continue
        total, seen = looks.get(person.track_id, (np.zeros(appearance.SIZE, np.float32), 0))
        looks[person.track_id] = (total + look, seen + 1)
