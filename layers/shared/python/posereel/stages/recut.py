"""A reel cut from an analysis: which windows it shows (the merge stage's rule for the first reel,
and a re-cut's from the stored tracks, without any pose estimation), and the reel itself with its
cut list (reel.json) and exports (segments.csv, segments.edl) in a folder."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from posereel import export, framing, motion, reel, segments
from posereel.modelstore import FACE_DETECTOR, resolve_model
from posereel.motion import TrackEnergy
from posereel.outputs import REEL_FILES
from posereel.schemas import AnalysisResult, FramePoses, ReelFile, ReelWindow, Segment, TracksFile
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.video import VideoSource, frame_size


@dataclass(frozen=True)
class ReelCut:
    """The segments found with a reel's settings, and the windows it shows, in play order."""

    segments: list[Segment]
    windows: list[ReelWindow]


def plan_cut(
    energies: Mapping[int, TrackEnergy],
    *,
    primary_track_id: int | None,
    settings: AnalysisSettings,
    duration_s: float,
    range_s: tuple[float, float],
) -> ReelCut:
    """Segments of the chosen people's movement (``settings.segments``: everyone, the primary
    subject, or the chosen ``track_ids``) and the windows the reel cuts (``settings.reel``)."""
    focus_primary = settings.segments.focus == "primary" and primary_track_id in energies
    found = segments.find_segments(
        energies, settings=settings.segments, primary_track_id=primary_track_id if focus_primary else None
    )
    windows = segments.cut_windows(found, reel=settings.reel, duration_s=duration_s, range_s=range_s)
    return ReelCut(segments=found, windows=windows)


def recut(result: AnalysisResult, tracks: TracksFile, *, settings: AnalysisSettings) -> ReelCut:
    """The cut of an analysis with other settings: the energies again from the stored tracks (as
    the merge stage measured them), then ``plan_cut``."""
    info = result.video
    energies = motion.all_track_energies(
        tracks.frames, width=info.width, height=info.height, fps=tracks.analysis_fps, settings=settings.motion
    )
    return plan_cut(
        energies,
        primary_track_id=result.primary_track_id,
        settings=settings,
        duration_s=info.duration_s,
        range_s=result.range_s,
    )


def cut_reel(
    source: VideoSource,
    result: AnalysisResult,
    tracks: TracksFile,
    out_dir: Path,
    *,
    reel_id: int,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
) -> ReelFile:
    """A re-cut of an analysis with ``settings``, rendered into ``out_dir`` (``recut``, then
    ``render_reel``)."""
    return render_reel(
        source,
        recut(result, tracks, settings=settings),
        tracks,
        out_dir,
        reel_id=reel_id,
        primary_track_id=result.primary_track_id,
        settings=settings,
        runtime=runtime,
    )


def render_reel(
    source: VideoSource,
    cut: ReelCut,
    tracks: TracksFile,
    out_dir: Path,
    *,
    reel_id: int,
    primary_track_id: int | None,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
) -> ReelFile:
    """Write the reel (when a window holds a frame), reel.json, segments.csv and segments.edl of
    ``cut`` into ``out_dir``, and its clips (clips.zip) when ``settings.reel.clips``; returns what
    reel.json holds."""
    info = tracks.video
    out_dir.mkdir(parents=True, exist_ok=True)
    shaping = _framing(cut, tracks, primary_track_id=primary_track_id, settings=settings, runtime=runtime)
    compiled = reel.compile_reel(
        source,
        cut.windows,
        out_dir / REEL_FILES["reel"],
        info=info,
        settings=settings.reel,
        ffmpeg=runtime.ffmpeg,
        framing=shaping,
        processes=runtime.tool_processes(),
    )
    windows = compiled.windows if compiled else []
    if compiled and settings.reel.clips:
        reel.export_clips(
            compiled, out_dir / REEL_FILES["clips"], info=info, settings=settings.reel, ffmpeg=runtime.ffmpeg
        )
    shown = {i for w in windows for i in w.segment_indices}
    cuts = export.reel_cuts(windows, cut.segments)
    export.cuts_csv(cuts, out_dir / REEL_FILES["segments_csv"])
    export.cuts_edl(
        cuts, out_dir / REEL_FILES["segments_edl"], fps=info.fps, title=info.name, reel_name="SOURCE"
    )
    chosen = settings.segments.track_ids
    made = ReelFile(
        video=info.name,
        reel_id=reel_id,
        track_ids=list(chosen) if chosen is not None else None,
        size_px=shaping.size if shaping else frame_size(info, max_height_px=info.height),
        duration_s=round(compiled.duration_s, 3) if compiled else 0.0,
        segments=[s for s in cut.segments if s.index in shown],
        windows=windows,
    )
    export.write_json(made, out_dir / REEL_FILES["cut"])
    return made


def _framing(
    cut: ReelCut,
    tracks: TracksFile,
    *,
    primary_track_id: int | None,
    settings: AnalysisSettings,
    runtime: RuntimeSettings,
) -> framing.Framing | None:
    """How the reel's frames change: a crop following, per window, the chosen people (else the
    people of its segments, else the primary subject), and/or blurred faces; None: neither."""
    options = settings.reel
    if options.aspect == "source" and not options.blur_faces:
        return None
    info = tracks.video
    frame_px = frame_size(info, max_height_px=info.height)
    paths = None
    if options.aspect != "source":
        by_index = {s.index: s for s in cut.segments}
        times = [f.t_s for f in tracks.frames]
        paths = []
        for window in cut.windows:
            ids = settings.segments.track_ids or sorted(
                {t for i in window.segment_indices for t in by_index[i].track_ids}
            )
            if not ids and primary_track_id is not None:
                ids = [primary_track_id]
            paths.append(
                framing.SubjectPath.of(_frames_in(tracks.frames, times, window, tracks.analysis_fps), ids)
            )
    blur = None
    if options.blur_faces:
        detector = framing.FaceDetector(
            resolve_model(FACE_DETECTOR.name, runtime.model_dir), threads=runtime.model_threads()
        )
        blur = framing.FaceBlur(
            heads=framing.head_tracks(tracks.frames, frame_px=frame_px),
            detector=detector,
            fps=info.fps,
            analysis_fps=tracks.analysis_fps,
        )
    return framing.Framing(
        frame_px=frame_px, size=framing.crop_size(frame_px, options.aspect), paths=paths, blur=blur
    )


def _frames_in(
    frames: Sequence[FramePoses], times: Sequence[float], window: ReelWindow, fps: float
) -> Sequence[FramePoses]:
    """The analysed frames of ``window`` and one analysis frame either side (``frames`` sorted,
    ``times`` their times)."""
    low = bisect.bisect_left(times, window.start_s - 1.0 / fps)
    high = bisect.bisect_right(times, window.end_s + 1.0 / fps)
    return frames[low:high]
