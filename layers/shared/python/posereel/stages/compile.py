"""Stage 3, once per video (the compile function): write every artefact of an analysis into a
folder: the first reel (with its cut, reel.json, and exports: posereel.stages.recut), the
overlay, thumbnails, the timeline plot and the data files (posereel.outputs names them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from posereel import export, render
from posereel.outputs import RESULT_FILES, THUMBNAILS_DIR
from posereel.schemas import AnalysisResult, MetricsFile, SegmentsFile
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.stages.merge import Merged
from posereel.stages.recut import ReelCut, render_reel
from posereel.video import VideoSource

T = TypeVar("T")


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
    source: VideoSource,
    merged: Merged,
    out_dir: Path,
    *,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
) -> tuple[AnalysisResult, Outputs]:
    """Write every artefact of an analysis into out_dir (the overlay video only when
    ``settings.reel.overlay``); returns the result with render timings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result, frames, info = merged.result, merged.tracks.frames, merged.result.video
    timings = dict(result.timings_s)
    started = time.perf_counter()

    timeline = out_dir / RESULT_FILES["timeline"]

    def timed(name: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings[name] = round(time.perf_counter() - t0, 4)

    def make_overlay() -> Path | None:
        if not (settings.reel.overlay and frames):
            return None
        return render.render_overlay(
            source,
            frames,
            out_dir / RESULT_FILES["overlay"],
            info=info,
            fps=result.analysis_fps,
            max_height_px=settings.reel.overlay_max_height_px,
            primary_track_id=result.primary_track_id,
            preset=settings.reel.preset,
            crf=settings.reel.crf,
            ffmpeg=runtime.ffmpeg,
            processes=runtime.tool_processes(),
        )

    def make_pictures() -> list[Path]:
        thumbs = render.render_thumbnails(
            source,
            result.segments,
            out_dir / THUMBNAILS_DIR,
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
            lambda: render_reel(
                source,
                ReelCut(segments=result.segments, windows=result.reel_windows),
                merged.tracks,
                out_dir,
                reel_id=0,
                primary_track_id=result.primary_track_id,
                settings=settings,
                runtime=runtime,
            ),
        )
        overlay_job = pool.submit(timed, "overlay", make_overlay)
        pictures_job = pool.submit(timed, "thumbnails_timeline", make_pictures)
        reel_out, overlay_path, thumbs = reel_job.result(), overlay_job.result(), pictures_job.result()
    timings["render_wall"] = round(time.perf_counter() - started, 4)

    result = result.model_copy(update={"timings_s": timings})
    paths = Outputs(
        result=out_dir / RESULT_FILES["result"],
        tracks=out_dir / RESULT_FILES["tracks"],
        segments_json=out_dir / RESULT_FILES["segments"],
        metrics_json=out_dir / RESULT_FILES["metrics"],
        segments_csv=out_dir / RESULT_FILES["segments_csv"],
        segments_edl=out_dir / RESULT_FILES["segments_edl"],
        timeline=timeline,
        overlay=overlay_path,
        reel=out_dir / RESULT_FILES["reel"] if reel_out.windows else None,
        thumbnails=thumbs,
        reel_duration_s=reel_out.duration_s,
    )
    export.write_json(result, paths.result)
    export.write_json(merged.tracks, paths.tracks)
    export.write_json(SegmentsFile.of(result), paths.segments_json)
    export.write_json(MetricsFile.of(result), paths.metrics_json)
    return result, paths
