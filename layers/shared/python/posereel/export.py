"""Data files of an analysis: JSON of the models, and the reel's cuts as a CSV and a CMX3600 EDL
(one row or event per window of the reel, as cut: importing the EDL into an editor rebuilds
reel.mp4; each names the segments it shows).

Every writer replaces its file atomically: it writes a temporary file in the same folder and
renames it over the target, so a reader (or a re-run after a crash) never sees half a file.
Times are seconds from the start of the source video.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel

from posereel.schemas import ReelWindow, Segment

ModelT = TypeVar("ModelT", bound=BaseModel)

CUTS_CSV_HEADER = (
    "cut", "source_in_s", "source_out_s", "reel_in_s", "reel_out_s", "duration_s",
    "segments", "track_ids", "peak_energy", "top_parts",
)  # fmt: skip
# Frame rates within this of an NTSC rate (N * 1000/1001) count as that rate.
_NTSC_TOLERANCE_FPS = 0.01
_EDL_REEL_CHARS = 8  # CMX3600 reel names: at most 8 characters, letters, digits and underscores
_SECONDS_PER_DAY = 86_400


@contextmanager
def atomic_writer(path: Path | str, *, newline: str | None = None) -> Iterator[IO[str]]:
    """Open ``path`` for writing UTF-8 text that appears only when the block ends without an
    exception (temporary file in the same folder, flushed and fsynced, then ``os.replace``d).
    ``newline`` is passed to ``open`` ("" for the csv module)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are 0600 whatever the umask, and the result files are meant to be read.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(model: BaseModel, path: Path | str, *, indent: int | None = None) -> Path:
    """Write a pydantic model as UTF-8 JSON (NaN and infinities become null), atomically."""
    path = Path(path)
    with atomic_writer(path) as f:
        f.write(model.model_dump_json(indent=indent))
        f.write("\n")
    return path


# Files already compressed (video, images) go into a zip as they are; deflating them gains nothing.
_STORED_SUFFIXES = frozenset({".mp4", ".png", ".jpg", ".jpeg", ".zip"})


def write_zip(files: Sequence[tuple[str, Path]], path: Path | str) -> Path:
    """A zip at ``path`` of ``files`` ((name in the zip, file) pairs, in that order): media
    stored, text deflated; zip64 where it grows past 4 GiB. Written under a temporary name and
    renamed, so it appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with zipfile.ZipFile(tmp, "x", allowZip64=True) as archive:
            for name, file in files:
                stored = Path(name).suffix.lower() in _STORED_SUFFIXES
                archive.write(
                    file, name, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path | str, model_type: type[ModelT]) -> ModelT:
    """Read a file written by ``write_json`` back into ``model_type``; raises pydantic's
    ValidationError when the file does not match it, FileNotFoundError when there is no file."""
    return model_type.model_validate_json(Path(path).read_bytes())


@dataclass(frozen=True)
class Cut:
    """One window of the reel: the source span it plays and the segments it shows."""

    start_s: float
    end_s: float
    segments: tuple[Segment, ...]

    @property
    def track_ids(self) -> list[int]:
        return sorted({t for seg in self.segments for t in seg.track_ids})

    @property
    def top_parts(self) -> list[str]:
        """The body parts that moved most, strongest segment's first, each once."""
        strongest = sorted(self.segments, key=lambda s: -s.peak_energy)
        return list(dict.fromkeys(part for seg in strongest for part in seg.top_parts))


def reel_cuts(windows: Sequence[ReelWindow], segments: Sequence[Segment]) -> list[Cut]:
    """The reel's windows in play order, each with the segments it shows."""
    by_index = {seg.index: seg for seg in segments}
    return [
        Cut(w.start_s, w.end_s, tuple(by_index[i] for i in w.segment_indices if i in by_index))
        for w in windows
    ]


def reel_starts(windows: Sequence[ReelWindow], segments: Sequence[Segment]) -> dict[int, float]:
    """Where each shown segment's start plays in the reel (segment index -> seconds, 3
    decimals): the windows back to back, in play order."""
    by_index = {seg.index: seg for seg in segments}
    starts: dict[int, float] = {}
    played = 0.0
    for window in windows:
        for index in window.segment_indices:
            if (seg := by_index.get(index)) is not None:
                starts[index] = round(played + max(0.0, seg.start_s - window.start_s), 3)
        played += window.end_s - window.start_s
    return starts


def cuts_csv(cuts: Sequence[Cut], path: Path | str) -> Path:
    """One row per cut under ``CUTS_CSV_HEADER``: where it is in the source and in the reel (the
    cuts back to back), in seconds (3 decimals); the segments it shows, their tracks and body parts
    joined with ';'; the strongest segment's peak energy (body lengths per second, 4 decimals)."""
    path = Path(path)
    played = 0.0
    with atomic_writer(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CUTS_CSV_HEADER)
        for number, cut in enumerate(cuts, start=1):
            duration = cut.end_s - cut.start_s
            peak = max((seg.peak_energy for seg in cut.segments), default=0.0)
            writer.writerow(
                [
                    number,
                    f"{cut.start_s:.3f}",
                    f"{cut.end_s:.3f}",
                    f"{played:.3f}",
                    f"{played + duration:.3f}",
                    f"{duration:.3f}",
                    ";".join(str(seg.index) for seg in cut.segments),
                    ";".join(str(t) for t in cut.track_ids),
                    f"{peak:.4f}",
                    ";".join(cut.top_parts),
                ]
            )
            played += duration
    return path


def timecode_base(fps: float) -> int:
    """Frames per timecode second for a video of ``fps`` frames per second: the nearest integer
    (23.976 -> 24, 29.97 -> 30, 59.94 -> 60). EDLs here are always non-drop-frame (NDF), so on an
    NTSC rate the timecode runs 0.1 % slower than the clock, as NDF timecode does."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return max(1, round(fps))


def frame_number(t_s: float, *, fps: float) -> int:
    """Index of the source frame on screen at ``t_s`` seconds, rounded to the nearest frame edge.
    NTSC-like rates (within 0.01 of N * 1000/1001, e.g. 29.97) are taken as exactly N * 1000/1001."""
    nominal = round(fps)
    ntsc = nominal * 1000 / 1001
    exact = ntsc if abs(fps - ntsc) < _NTSC_TOLERANCE_FPS and abs(fps - nominal) > 1e-9 else fps
    return round(t_s * exact + 1e-9)


def frames_to_timecode(frames: int, *, base: int) -> str:
    """``HH:MM:SS:FF`` non-drop-frame timecode of a frame count at ``base`` frames per second."""
    if frames < 0:
        raise ValueError(f"timecode of a negative frame count: {frames}")
    if frames >= _SECONDS_PER_DAY * base:
        raise ValueError(f"{frames} frames at {base} fps is past 24 hours")
    seconds, ff = divmod(frames, base)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def cuts_edl(
    cuts: Sequence[Cut],
    path: Path | str,
    *,
    fps: float,
    title: str,
    reel_name: str,
    clip_name: str | None = None,
    record_start_s: float = 0.0,
    with_audio: bool = False,
) -> Path:
    """A CMX3600 EDL with one cut event per cut of the reel, in the order given.

    Source in/out are the cut's start/end as source frames (``frame_number``) written as NDF
    timecode at ``timecode_base(fps)`` (29.97 -> 30 NDF, 23.976 -> 24 NDF); the out point is
    exclusive, as CMX3600 wants. Record timecodes start at ``record_start_s`` and accumulate the
    events' lengths, so the events play back to back. ``reel_name`` goes in the reel column
    (upper-cased, characters other than letters, digits and _ dropped, at most 8, "AX" if nothing
    is left); each event is followed by ``* FROM CLIP NAME: <clip_name or title>`` and a comment
    naming the segments it shows. The track is V, or B (audio and video) with ``with_audio``.
    """
    base = timecode_base(fps)
    reel = re.sub(r"[^A-Z0-9_]", "", reel_name.upper())[:_EDL_REEL_CHARS] or "AX"
    clip = _one_line(clip_name if clip_name is not None else title)
    track = "B" if with_audio else "V"
    record = frame_number(record_start_s, fps=fps)
    lines = [f"TITLE: {_one_line(title)}", "FCM: NON-DROP FRAME", ""]
    event = 0
    for cut in cuts:
        src_in = frame_number(cut.start_s, fps=fps)
        src_out = frame_number(cut.end_s, fps=fps)
        if src_out <= src_in:
            continue  # shorter than one frame: nothing to cut
        event += 1
        if event > 999:
            raise ValueError("a CMX3600 EDL holds at most 999 events")
        rec_out = record + (src_out - src_in)
        tcs = " ".join(frames_to_timecode(n, base=base) for n in (src_in, src_out, record, rec_out))
        lines.append(f"{event:03d}  {reel:<8} {track:<5} C        {tcs}")
        lines.append(f"* FROM CLIP NAME: {clip}")
        if cut.segments:
            shown = ", ".join(str(seg.index) for seg in cut.segments)
            tracks = ", ".join(str(t) for t in cut.track_ids)
            lines.append(f"* POSEREEL SEGMENTS: {shown}; TRACKS: {tracks}")
        lines.append("")
        record = rec_out
    path = Path(path)
    with atomic_writer(path) as f:
        f.write("\n".join(lines) + ("\n" if lines[-1] else ""))
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())
