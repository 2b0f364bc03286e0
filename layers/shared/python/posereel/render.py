"""Pictures of an analysis: the overlay video, one thumbnail per segment and the timeline plot.

Drawing is done with OpenCV on **BGR** uint8 images (OpenCV's order); colours in this module are
BGR tuples unless a name says ``_rgb``. Pose coordinates are normalised to the displayed frame
(see ``schemas``) and are multiplied by the image's width/height in pixels when drawn. Frames are
decoded with ``video.sample_frames``, the same decoder and analysis grid the pose stage used, so
a skeleton is drawn on exactly the picture it was found in.

Every track id gets a stable colour (``track_color_bgr``): the same id has the same colour in the
overlay, the thumbnails and the timeline. The primary subject gets a thicker box and skeleton and a
``#id primary`` label.
"""

from __future__ import annotations

import colorsys
import contextlib
import itertools
import logging
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO

import cv2
import numpy as np

from posereel import grid
from posereel.errors import ToolError
from posereel.outputs import thumbnail_file
from posereel.schemas import EnergySeries, FramePoses, PersonPose, Segment, VideoInfo
from posereel.video import VideoSource, frame_size, join_parts, sample_frames

log = logging.getLogger(__name__)

# BlazePose's 33-landmark skeleton: MediaPipe's PoseLandmarksConnections.POSE_LANDMARKS.
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

# Track colours, RGB hex: matplotlib's tab10 without its grey (kept for people without a track id),
# so the timeline plot and the pictures agree. Ids past the palette get hues spaced by the golden
# ratio, which keeps neighbouring ids apart and never cycles back to an earlier colour exactly.
_PALETTE_HEX = ("1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "bcbd22", "17becf")
_UNTRACKED_HEX = "b0b0b0"
_GOLDEN = 0.6180339887498949
MIN_VISIBILITY = 0.5
# An overlay is drawn in pieces side by side only where each piece lasts at least this long.
OVERLAY_PIECE_MIN_S = 30.0
# Face landmarks (nose, eyes, ears, mouth) crowd together: their dots are drawn half size.
_FACE = frozenset(range(11))
# A person this many pixels tall gets 1-pixel bones (2 at twice the height, up to 2 x the base unit).
_PERSON_PX_PER_LINE_PX = 60
_TEXT_FONT = cv2.FONT_HERSHEY_SIMPLEX
_JPEG_QUALITY = 90
_SEGMENT_RGB = "#f2c14e"  # timeline shading of segments
_STDERR_TAIL_CHARS = 1500


def _hex_rgb(value: str) -> tuple[int, int, int]:
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def track_color_rgb(track_id: int | None) -> tuple[int, int, int]:
    """Stable colour of a track as (R, G, B) 0-255; light grey for a person without a track id."""
    if track_id is None:
        return _hex_rgb(_UNTRACKED_HEX)
    if 0 <= track_id < len(_PALETTE_HEX):
        return _hex_rgb(_PALETTE_HEX[track_id])
    r, g, b = colorsys.hsv_to_rgb((0.11 + track_id * _GOLDEN) % 1.0, 0.8, 0.9)
    return round(r * 255), round(g * 255), round(b * 255)


def track_color_bgr(track_id: int | None) -> tuple[int, int, int]:
    """Stable colour of a track as (B, G, R) 0-255, for OpenCV."""
    r, g, b = track_color_rgb(track_id)
    return b, g, r


# ---------------------------------------------------------------------------------------------
# Drawing


def draw_persons(
    image_bgr: np.ndarray,
    persons: Iterable[PersonPose],
    *,
    primary_track_id: int | None = None,
    min_visibility: float = MIN_VISIBILITY,
) -> np.ndarray:
    """Draw each person's box, ``#id`` label and skeleton onto ``image_bgr`` (HxWx3 uint8, BGR),
    in place, and return it. Only landmarks with visibility >= ``min_visibility`` are drawn, and a
    bone only when both its ends are. The primary track is drawn last, thicker, labelled ``primary``."""
    height, width = image_bgr.shape[:2]
    unit = _unit_px(image_bgr)
    ordered = sorted(persons, key=lambda p: p.track_id is not None and p.track_id == primary_track_id)
    for person in ordered:
        primary = person.track_id is not None and person.track_id == primary_track_id
        color = track_color_bgr(person.track_id)
        # Lines scale with the person as well as the picture, so small people stay legible.
        person_px = (person.box[3] - person.box[1]) * height
        thick = max(1, min(2 * unit, round(person_px / _PERSON_PX_PER_LINE_PX))) + (unit if primary else 0)
        points = [
            _to_px(x, y, width, height) if vis >= min_visibility else None
            for x, y, _z, vis in person.landmarks
        ]
        for a, b in POSE_CONNECTIONS:
            pa, pb = points[a], points[b]
            if pa is not None and pb is not None:
                cv2.line(image_bgr, pa, pb, color, thick, cv2.LINE_AA)
        for i, p in enumerate(points):
            if p is not None:
                radius = max(1, thick // 2 if i in _FACE else thick)
                cv2.circle(image_bgr, p, radius, (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(image_bgr, p, radius, color, 1, cv2.LINE_AA)
        x0, y0, x1, y1 = person.box
        top_left, bottom_right = _to_px(x0, y0, width, height), _to_px(x1, y1, width, height)
        if top_left is None or bottom_right is None:
            continue
        cv2.rectangle(image_bgr, top_left, bottom_right, color, unit * (2 if primary else 1), cv2.LINE_AA)
        if person.track_id is not None:
            label = f"#{person.track_id}" + (" primary" if primary else "")
            _label(image_bgr, label, anchor=top_left, color_bgr=color, unit=unit)
    return image_bgr


def _to_px(x: float, y: float, width: int, height: int) -> tuple[int, int] | None:
    """Normalised (x, y) to integer pixels; None when not finite. Far-off points are pulled in to
    a frame's size beyond the border (OpenCV wants 32-bit coordinates; it clips lines itself)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return round(min(max(x, -1.0), 2.0) * width), round(min(max(y, -1.0), 2.0) * height)


def _label(
    image_bgr: np.ndarray, text: str, *, anchor: tuple[int, int], color_bgr: tuple[int, int, int], unit: int
) -> None:
    """A filled tag with ``text`` just above ``anchor`` (kept inside the image)."""
    scale = 0.45 * unit
    (tw, th), base = cv2.getTextSize(text, _TEXT_FONT, scale, unit)
    pad = 2 * unit
    height, width = image_bgr.shape[:2]
    x = min(max(0, anchor[0]), max(0, width - tw - 2 * pad))
    y_bottom = anchor[1] if anchor[1] - th - base - 2 * pad >= 0 else anchor[1] + th + base + 2 * pad
    y_bottom = min(max(th + base + 2 * pad, y_bottom), height)
    cv2.rectangle(image_bgr, (x, y_bottom - th - base - 2 * pad), (x + tw + 2 * pad, y_bottom), color_bgr, -1)
    b, g, r = color_bgr
    ink = (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)
    cv2.putText(image_bgr, text, (x + pad, y_bottom - base - pad), _TEXT_FONT, scale, ink, unit, cv2.LINE_AA)


def _caption(image_bgr: np.ndarray, text: str) -> None:
    """White text on a dark band in the top-left corner."""
    _label(image_bgr, text, anchor=(0, 0), color_bgr=(32, 32, 32), unit=_unit_px(image_bgr))


def _unit_px(image_bgr: np.ndarray) -> int:
    """Base line width in pixels: 1 below 540p, 2 at 720p, 3 at 1080p (of the shorter side)."""
    return max(1, round(min(image_bgr.shape[:2]) / 360))


# ---------------------------------------------------------------------------------------------
# Writing video


class VideoWriter:
    """Encode BGR frames to an H.264 MP4 (yuv420p, ``+faststart``) through an ffmpeg stdin pipe.

    A context manager: the file appears at ``path`` (renamed from a temporary name) only when the
    block ends without an exception; on an exception ffmpeg is killed and nothing is left behind.
    Frames must be HxWx3 uint8 BGR arrays of ``size_px`` = (width, height), both even.
    """

    def __init__(
        self,
        path: Path,
        *,
        size_px: tuple[int, int],
        fps: float,
        preset: str = "veryfast",
        crf: int = 23,
        ffmpeg: str = "ffmpeg",
        threads: int | None = None,
    ) -> None:
        width, height = size_px
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs an even frame size, got {width}x{height}")
        self.path = Path(path)
        self.size_px = (width, height)
        self.frames_written = 0
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        rate = Fraction(fps).limit_denominator(1001)
        self._cmd = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
            "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
            "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            *(["-threads", str(threads)] if threads else []),
            "-movflags", "+faststart", "-f", "mp4", str(self._partial),
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                self._cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except FileNotFoundError as exc:
            self._stderr.close()
            raise ToolError(
                f"ffmpeg not found ({self._cmd[0]!r}): install ffmpeg or set POSEREEL_FFMPEG"
            ) from exc
        return self

    def write(self, frame_bgr: np.ndarray) -> None:
        """Append one frame (HxWx3 uint8, BGR)."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("VideoWriter.write outside its with-block")
        height, width = frame_bgr.shape[:2]
        if (width, height) != self.size_px or frame_bgr.dtype != np.uint8 or frame_bgr.shape[2:] != (3,):
            raise ValueError(f"expected {self.size_px[0]}x{self.size_px[1]}x3 uint8, got {frame_bgr.shape}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame_bgr).data)
        except BrokenPipeError as exc:
            self._proc.wait()
            raise ToolError(f"ffmpeg stopped while encoding {self.path.name}: {self._stderr_tail()}") from exc
        self.frames_written += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            if exc_type is not None:
                proc.kill()
                proc.wait()
                self._partial.unlink(missing_ok=True)
                return
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            returncode = proc.wait()
            if returncode != 0 or self.frames_written == 0:
                self._partial.unlink(missing_ok=True)
                why = "no frames were written" if self.frames_written == 0 else self._stderr_tail()
                raise ToolError(f"ffmpeg could not encode {self.path.name} (exit status {returncode}): {why}")
            os.replace(self._partial, self.path)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if self._stderr is not None:
                self._stderr.close()

    def _stderr_tail(self) -> str:
        assert self._stderr is not None
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-_STDERR_TAIL_CHARS:] or "no message"


# ---------------------------------------------------------------------------------------------
# Overlay video


def render_overlay(
    source: VideoSource,
    frames: Sequence[FramePoses],
    out_path: Path,
    *,
    info: VideoInfo,
    fps: float,
    max_height_px: int,
    primary_track_id: int | None = None,
    ffmpeg: str = "ffmpeg",
    preset: str = "veryfast",
    crf: int = 23,
    processes: int = 1,
    min_piece_s: float = OVERLAY_PIECE_MIN_S,
) -> Path | None:
    """Write an H.264 MP4 of the analysed frames with every person drawn on them.

    The video runs at the analysis rate ``fps`` (frames per second) from the first to the last
    analysed grid index in ``frames``; grid frames without an entry are shown without people. The
    picture is the source scaled to at most ``max_height_px`` rows (displayed orientation), with a
    ``t = ... s`` caption. Returns the path, or None (nothing written) when ``frames`` is empty.

    A long overlay is drawn in up to ``processes`` pieces side by side (each at least
    ``min_piece_s`` long, each its own decoder and encoder with the same settings), joined by
    the concat demuxer without re-encoding.
    """
    if not frames:
        return None
    by_index = {f.index: f for f in frames}
    first, stop = min(by_index), max(by_index) + 1
    inner = grid.even_borders(stop - first, parts=processes, min_count=min_piece_s * fps)
    spans = list(itertools.pairwise([first, *(first + b for b in inner), stop]))

    def draw(span: tuple[int, int], path: Path, threads: int | None) -> Path:
        start, end = span
        size = frame_size(info, max_height_px=max_height_px)
        # The grid indices start .. end - 1: the times half a frame inside them, so none is lost
        # or drawn twice to rounding.
        decoded = sample_frames(
            source, info=info, start_s=max(0.0, (start - 0.5) / fps), end_s=(end - 0.5) / fps,
            target_fps=fps, max_height_px=max_height_px, ffmpeg=ffmpeg,
        )  # fmt: skip
        with VideoWriter(
            path, size_px=size, fps=fps, preset=preset, crf=crf, ffmpeg=ffmpeg, threads=threads
        ) as writer:
            try:
                for sampled in decoded:
                    image = cv2.cvtColor(sampled.rgb, cv2.COLOR_RGB2BGR)
                    poses = by_index.get(sampled.index)
                    if poses is not None:
                        draw_persons(image, poses.persons, primary_track_id=primary_track_id)
                    _caption(image, f"t = {sampled.t_s:.1f} s")
                    writer.write(image)
            finally:
                _close(decoded)
        return path

    out_path = Path(out_path)
    parts = len(spans)
    if parts == 1:
        return draw(spans[0], out_path, None)
    threads = max(1, (os.cpu_count() or 1) // parts)
    with tempfile.TemporaryDirectory(prefix=".overlay-", dir=out_path.parent) as tmp:
        paths = [Path(tmp) / f"piece{n:04d}.mp4" for n in range(parts)]
        with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="overlay") as pool:
            list(pool.map(draw, spans, paths, [threads] * parts))  # the first failure is raised
        joined = Path(tmp) / "overlay.mp4"
        join_parts(paths, joined, what="the overlay's pieces", ffmpeg=ffmpeg)
        os.replace(joined, out_path)
    return out_path


# ---------------------------------------------------------------------------------------------
# Thumbnails


def render_thumbnails(
    source: VideoSource,
    segments: Sequence[Segment],
    out_dir: Path,
    *,
    info: VideoInfo,
    frames: Sequence[FramePoses],
    max_width_px: int = 480,
    energy: Sequence[EnergySeries] | None = None,
    primary_track_id: int | None = None,
    ffmpeg: str = "ffmpeg",
) -> list[Path]:
    """One JPEG per segment, ``out_dir/segment_{index:03d}.jpg``, at most ``max_width_px`` wide.

    The picture is the analysed frame nearest the segment's peak: the time of the highest energy
    of the segment's tracks inside it when ``energy`` is given, else the segment's middle. People
    are drawn on it and a caption gives the segment number and its span in seconds. Thumbnails of
    earlier runs in ``out_dir`` that no longer belong to a segment are removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid_fps = _grid_fps(frames) or info.fps
    ordered = sorted(frames, key=lambda f: f.t_s)
    times = np.array([f.t_s for f in ordered])
    # The height that makes the width at most max_width_px (frame_size never upscales).
    max_height_px = max(2, math.floor(max_width_px * info.height / info.width))
    written: list[Path] = []
    for seg in segments:
        t = _peak_time_s(seg, energy) if energy else None
        t = (seg.start_s + seg.end_s) / 2 if t is None else t
        poses = ordered[int(np.argmin(np.abs(times - t)))] if ordered else None
        if poses is not None and abs(poses.t_s - t) > 1.0 / grid_fps:
            poses = None  # nothing analysed near that time: show the picture alone
        t_frame = poses.t_s if poses is not None else grid.index_at_or_before(t, grid_fps) / grid_fps
        image = _frame_at(
            source, t_frame, info=info, fps=grid_fps, max_height_px=max_height_px, ffmpeg=ffmpeg
        )
        if poses is not None:
            draw_persons(image, poses.persons, primary_track_id=primary_track_id)
        _caption(image, f"segment {seg.index}  {seg.start_s:.1f}-{seg.end_s:.1f} s")
        path = out_dir / thumbnail_file(seg.index)
        _write_jpeg(image, path)
        written.append(path)
    keep = set(written)
    for stale in out_dir.glob("segment_[0-9][0-9][0-9].jpg"):
        if stale not in keep:
            stale.unlink()
    return written


def _grid_fps(frames: Sequence[FramePoses]) -> float | None:
    """The analysis rate implied by the frames (index / t_s), or None when it cannot be told."""
    for f in frames:
        if f.index > 0 and f.t_s > 0:
            return f.index / f.t_s
    return None


def _peak_time_s(seg: Segment, energy: Sequence[EnergySeries]) -> float | None:
    """Time of the highest energy of the segment's tracks within [start_s, end_s]."""
    best_t, best_e = None, -math.inf
    wanted = set(seg.track_ids)
    for series in energy:
        if wanted and series.track_id not in wanted:
            continue
        for t, e in zip(series.t_s, series.energy, strict=False):
            if e is not None and math.isfinite(e) and seg.start_s <= t <= seg.end_s and e > best_e:
                best_t, best_e = t, e
    return best_t


def _frame_at(
    source: VideoSource, t_s: float, *, info: VideoInfo, fps: float, max_height_px: int, ffmpeg: str
) -> np.ndarray:
    """The BGR frame on grid time ``t_s`` (the grid of rate ``fps``), scaled to ``max_height_px``."""
    decoded = sample_frames(
        source, info=info, start_s=t_s, end_s=t_s + 0.5 / fps, target_fps=fps, max_height_px=max_height_px,
        ffmpeg=ffmpeg,
    )  # fmt: skip
    try:
        sampled = next(decoded, None)
    finally:
        _close(decoded)
    if sampled is None:
        raise ToolError(f"ffmpeg decoded no frame of {info.name} at {t_s:.3f} s")
    return cv2.cvtColor(sampled.rgb, cv2.COLOR_RGB2BGR)


def _close(frames: Iterator[object]) -> None:
    """Close a frame generator now (stops its ffmpeg) instead of whenever it is collected."""
    close = getattr(frames, "close", None)
    if close is not None:
        close()


def _write_jpeg(image_bgr: np.ndarray, path: Path) -> None:
    ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ToolError(f"OpenCV could not encode {path.name}")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data.tobytes())
    os.replace(partial, path)


# ---------------------------------------------------------------------------------------------
# Timeline plot


def render_timeline(
    energy: Sequence[EnergySeries],
    segments: Sequence[Segment],
    out_path: Path,
    *,
    duration_s: float,
    primary_track_id: int | None = None,
    title: str = "",
    width_px: int = 1200,
    height_px: int = 420,
    max_legend_tracks: int = 8,
) -> Path:
    """A PNG plot of motion energy (body lengths/s) per track against time (s), ``width_px`` x
    ``height_px``. Each track has its overlay colour; the primary track is drawn thick and on top.
    Segments are shaded and numbered with their index. The legend names the primary and the
    ``max_legend_tracks`` most active tracks (the rest are drawn thin and grouped as "other tracks").
    Without people, or without segments, the plot says so. Uses matplotlib's Agg canvas (no GUI).
    """
    from matplotlib.artist import Artist
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlim(0, max(duration_s, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("motion energy (body lengths/s)")
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.set_title(f"{title} — motion energy per track" if title else "Motion energy per track", loc="left")

    shown = [s for s in energy if any(e is not None and math.isfinite(e) for e in s.energy)]
    ranked = sorted(shown, key=lambda s: -_mean_finite(s.energy))
    named = {s.track_id for s in ranked[:max_legend_tracks]} | {primary_track_id}
    # Legend order: the primary, then named tracks by id, then "other tracks", then segments.
    legend: list[tuple[tuple[int, int], Artist]] = []
    peak = 0.0
    for s in sorted(shown, key=lambda s: s.track_id == primary_track_id):  # primary drawn last, on top
        values = np.array([np.nan if e is None else e for e in s.energy], dtype=float)
        peak = max(peak, float(np.nanmax(values)))
        rgb = tuple(c / 255 for c in track_color_rgb(s.track_id))
        if s.track_id == primary_track_id:
            (line,) = ax.plot(
                s.t_s, values, color=rgb, linewidth=2.6, label=f"#{s.track_id} (primary)", zorder=3
            )
            legend.append(((0, 0), line))
        elif s.track_id in named:
            (line,) = ax.plot(
                s.t_s, values, color=rgb, linewidth=1.3, alpha=0.85, label=f"#{s.track_id}", zorder=2
            )
            legend.append(((1, s.track_id), line))
        else:
            (line,) = ax.plot(s.t_s, values, color=rgb, linewidth=0.8, alpha=0.5, zorder=1)
            if not any(key[0] == 2 for key, _ in legend):
                line.set_label(f"other tracks ({sum(1 for x in shown if x.track_id not in named)})")
                legend.append(((2, 0), line))
    ax.set_ylim(0, max(peak * 1.15, 0.5))

    strip = blended_transform_factory(ax.transData, ax.transAxes)
    for seg in segments:
        span = ax.axvspan(seg.start_s, seg.end_s, color=_SEGMENT_RGB, alpha=0.25, linewidth=0, zorder=0)
        ax.text((seg.start_s + seg.end_s) / 2, 0.97, str(seg.index), transform=strip, ha="center", va="top",
                fontsize=9, fontweight="bold", color="#7a5a00", zorder=4)  # fmt: skip
        if not any(key[0] == 3 for key, _ in legend):
            span.set_label("segment (index on top)")
            legend.append(((3, 0), span))

    if not shown:
        ax.text(0.5, 0.5, "No people found", transform=ax.transAxes, ha="center", va="center", fontsize=14,
                color="#555555")  # fmt: skip
    elif not segments:
        ax.text(0.99, 0.97, "no movement segments", transform=ax.transAxes, ha="right", va="top", fontsize=10,
                color="#555555")  # fmt: skip
    if legend:
        # Outside the axes on the right, so it never hides a curve or a segment number.
        handles = [artist for _, artist in sorted(legend, key=lambda kv: kv[0])]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    fig.savefig(partial, format="png", dpi=dpi)
    os.replace(partial, out_path)
    return out_path


def _mean_finite(values: Sequence[float | None]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else 0.0
