"""Stage 2, once per video (the merge function): stitch the chunk results into one sequence with
global track ids, then measure: motion energy, segments, metrics, the primary subject and the reel
windows."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from posereel import chunks as chunking
from posereel import linking, metrics, motion
from posereel.schemas import AnalysisResult, ChunkResult, EnergySeries, FramePoses, TracksFile, TrackSummary
from posereel.settings import AnalysisSettings
from posereel.stages.recut import plan_cut


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
    stitched = chunking.merge_chunk_results(results, tracking=settings.tracking)
    info = results[0].video
    fps = results[0].analysis_fps
    frames = linking.link_tracks(
        stitched.frames,
        fps=fps,
        aspect=info.width / info.height,
        settings=settings.tracking,
        appearance=stitched.appearance,
    )
    if range_s is None:
        ordered = sorted(results, key=lambda r: r.chunk.index)
        range_s = (ordered[0].chunk.own_start_s, ordered[-1].chunk.own_end_s)
    energies = motion.all_track_energies(
        frames, width=info.width, height=info.height, fps=fps, settings=settings.motion
    )
    primary = motion.choose_primary(energies, fps=fps)
    cut = plan_cut(
        energies, primary_track_id=primary, settings=settings, duration_s=info.duration_s, range_s=range_s
    )
    track_metrics = metrics.track_metrics(
        frames, range_s=range_s, fps=fps, width=info.width, height=info.height
    )
    scores = _mean_scores(frames)
    summaries = [
        TrackSummary(
            track_id=tid,
            first_s=float(e.t_s[0]),
            last_s=float(e.t_s[-1]),
            frames=e.frames_seen,
            mean_energy=round(e.mean_energy, 4),
            score=round(scores.get(tid, 0.0), 3),
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
        segments=cut.segments,
        metrics=track_metrics,
        energy=series,
        reel_windows=cut.windows,
        timings_s=timings,
    )
    return Merged(result=result, tracks=TracksFile(video=info, analysis_fps=fps, frames=frames))


def _mean_scores(frames: list[FramePoses]) -> dict[int, float]:
    sums: dict[int, list[float]] = {}
    for frame in frames:
        for p in frame.persons:
            if p.track_id is not None:
                sums.setdefault(p.track_id, []).append(p.score)
    return {tid: sum(v) / len(v) for tid, v in sums.items()}
