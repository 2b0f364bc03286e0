"""Segments of real movement, found by hysteresis on motion energy (see ``motion``).

Per track, on its smoothed energy (body lengths per second, one sample per analysed frame):

* movement *starts* once energy has stayed at or above ``enter_threshold`` for ``min_motion_s``;
  the segment is back-dated to the first sample of that run (where the threshold was crossed);
* movement *ends* once energy has stayed below ``exit_threshold`` (or the track is absent) for
  ``min_still_s``; the segment ends at the last sample at or above ``exit_threshold``. A rest
  shorter than ``HOLD_ENDS_S`` ends it only where the body is back in the pose it started from
  (within ``HOME_TOLERANCE`` body lengths, see ``motion.posture_distance``): with a short
  ``min_still_s`` the pause at the top of a lateral raise, arms held up, does not cut the rep in
  two, while the rest with the arms down between reps ends it (measured on the shared clip: 0.16
  body lengths from the start at the top, 0.015-0.03 in the rests);
* segments of one track closer than ``merge_gap_s`` are joined, then those shorter than
  ``min_segment_s`` are dropped.

A run of k samples lasts k / fps seconds; a segment runs from its first to its last sample time.
Track segments are then combined into video-level ``Segment``s: overlapping ones, and ones closer
than ``merge_gap_s``, become one. A segment's ``score`` (for ranking) is
``mean_energy * sqrt(duration_s)``: intensity counts more than length, but a long steady
movement still beats a short twitch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from posereel import grid
from posereel.motion import PART_NAMES, TrackEnergy, posture_distance
from posereel.schemas import ReelWindow, Segment
from posereel.settings import ReelSettings, SegmentSettings

# A rest at least this long ends a segment wherever the body is; a shorter one (at least
# min_still_s) only where it is back in its starting pose, within HOME_TOLERANCE body lengths.
HOLD_ENDS_S = 2.0
HOME_TOLERANCE = 0.05
# A third body part is named in ``top_parts`` when it moved at least this fraction of the first.
THIRD_PART_MIN_SHARE = 0.5
_EPS = 1e-9


@dataclass(frozen=True)
class TrackSpan:
    """One track's stretch of movement, in seconds."""

    track_id: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _samples(seconds: float, fps: float) -> int:
    """How many samples make a run of at least ``seconds`` (at least one)."""
    return grid.steps(seconds, fps)


def hysteresis(
    energy: np.ndarray, *, fps: float, settings: SegmentSettings, posture: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Inclusive sample ranges of movement in one energy series (before merging and dropping).

    NaN (track absent) counts as still. ``posture`` (``TrackEnergy.posture``): where a short
    rest is back in the starting pose (where the person is not seen, it is not); without it
    every rest of ``min_still_s`` ends movement.
    See the module docstring for the rules.
    """
    need_motion = _samples(settings.min_motion_s, fps)
    need_still = _samples(settings.min_still_s, fps)
    need_hold = _samples(max(settings.min_still_s, HOLD_ENDS_S), fps)

    def home(i: int, start: int) -> bool:
        """Is the body at sample i back in the pose it started from: its pose at the stillest
        sample just before the movement's start (the run is back-dated to where energy crossed
        ``enter_threshold``, by then the body is on its way)."""
        if posture is None:
            return True
        before = energy[max(0, start - need_still - need_motion) : start + 1]
        ref = start if not np.isfinite(before).any() else start - before.size + 1 + int(np.nanargmin(before))
        # Unknown (the person lost for a moment) is not home: a gap in tracking is no rest.
        return bool(posture_distance(posture, i, ref) <= HOME_TOLERANCE)

    above_enter = np.isfinite(energy) & (energy >= settings.enter_threshold)
    above_exit = np.isfinite(energy) & (energy >= settings.exit_threshold)

    runs: list[tuple[int, int]] = []
    active = False
    run_start = 0
    run_len = 0
    last_active = 0
    still_len = 0
    for i in range(energy.size):
        if not active:
            if above_enter[i]:
                if run_len == 0:
                    run_start = i
                run_len += 1
                if run_len >= need_motion:
                    active = True
                    last_active = i
                    still_len = 0
            else:
                run_len = 0
        elif above_exit[i]:
            last_active = i
            still_len = 0
        else:
            still_len += 1
            if still_len >= need_hold or (still_len >= need_still and home(i, run_start)):
                runs.append((run_start, last_active))
                active = False
                run_len = 0
    if active:
        runs.append((run_start, last_active))
    return runs


def _merge_and_drop(
    spans: list[tuple[float, float]], *, merge_gap_s: float, min_segment_s: float
) -> list[tuple[float, float]]:
    """Join time spans closer than ``merge_gap_s``, then drop those shorter than
    ``min_segment_s``. Input and output sorted by start."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] < merge_gap_s - _EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return [(s, e) for s, e in merged if e - s >= min_segment_s - _EPS]


def track_spans(energy: TrackEnergy, *, settings: SegmentSettings) -> list[TrackSpan]:
    """Movement of one track: hysteresis, then merge and drop (times in seconds)."""
    t = energy.t_s
    runs = hysteresis(energy.energy, fps=energy.fps, settings=settings, posture=energy.posture)
    kept = _merge_and_drop(
        [(float(t[a]), float(t[b])) for a, b in runs],
        merge_gap_s=settings.merge_gap_s,
        min_segment_s=settings.min_segment_s,
    )
    return [TrackSpan(energy.track_id, start, end) for start, end in kept]


def _per_sample_max(
    tracks: Sequence[TrackEnergy], part: str | None, start_s: float, end_s: float
) -> np.ndarray:
    """For each grid sample in [start_s, end_s], the largest value across ``tracks`` of their
    energy (``part`` None) or of one body part's energy; samples where no track has a value are
    left out."""
    best: dict[int, float] = {}
    for te in tracks:
        series = te.energy if part is None else te.part_energy[part]
        inside = (te.t_s >= start_s - _EPS) & (te.t_s <= end_s + _EPS) & np.isfinite(series)
        for offset in np.flatnonzero(inside):
            key = te.first_index + int(offset)
            best[key] = max(best.get(key, -math.inf), float(series[offset]))
    return np.array([best[k] for k in sorted(best)], dtype=float)


def _top_parts(tracks: Sequence[TrackEnergy], start_s: float, end_s: float) -> list[str]:
    """The two body parts that moved most in [start_s, end_s], plus a third when it moved at
    least ``THIRD_PART_MIN_SHARE`` of the first."""
    means = []
    for name in PART_NAMES:
        values = _per_sample_max(tracks, name, start_s, end_s)
        if values.size:
            means.append((float(values.mean()), name))
    means.sort(key=lambda item: -item[0])
    parts = [name for _, name in means[:2]]
    if len(means) >= 3 and means[0][0] > 0 and means[2][0] >= THIRD_PART_MIN_SHARE * means[0][0]:
        parts.append(means[2][1])
    return parts


def find_segments(
    energies: Mapping[int, TrackEnergy],
    *,
    settings: SegmentSettings | None = None,
    primary_track_id: int | None = None,
) -> list[Segment]:
    """Video-level segments of movement, sorted by start and numbered from 0.

    Every track contributes (``primary_track_id`` None), or only the primary one when its id is
    given (a reel about the main subject; raises ValueError for an unknown id), or only the
    people of ``settings.track_ids`` when they are chosen (ids with no energy series add
    nothing). Energies are body lengths per second; ``peak_energy``/``mean_energy`` are taken
    over the per-sample maximum across the segment's tracks. Returns [] when nobody moves or nobody is there.
    """
    settings = settings or SegmentSettings()
    if settings.track_ids is not None:
        energies = {tid: energies[tid] for tid in settings.track_ids if tid in energies}
    elif primary_track_id is not None:
        if primary_track_id not in energies:
            raise ValueError(f"primary track {primary_track_id} has no energy series")
        energies = {primary_track_id: energies[primary_track_id]}

    spans = [span for tid in sorted(energies) for span in track_spans(energies[tid], settings=settings)]
    spans.sort(key=lambda s: (s.start_s, s.end_s))
    groups: list[list[TrackSpan]] = []
    group_end = -math.inf
    for span in spans:
        if groups and span.start_s - group_end < settings.merge_gap_s - _EPS:
            groups[-1].append(span)
            group_end = max(group_end, span.end_s)
        else:
            groups.append([span])
            group_end = span.end_s

    segments: list[Segment] = []
    for group in groups:
        start_s = min(s.start_s for s in group)
        end_s = max(s.end_s for s in group)
        ids = sorted({s.track_id for s in group})
        tracks = [energies[tid] for tid in ids]
        values = _per_sample_max(tracks, None, start_s, end_s)
        peak = float(values.max()) if values.size else 0.0
        mean = float(values.mean()) if values.size else 0.0
        segments.append(
            Segment(
                index=len(segments),
                start_s=round(start_s, 6),
                end_s=round(end_s, 6),
                track_ids=ids,
                peak_energy=peak,
                mean_energy=mean,
                top_parts=_top_parts(tracks, start_s, end_s),
                score=mean * math.sqrt(max(end_s - start_s, 0.0)),
            )
        )
    return segments


def reel_windows(
    segments: Iterable[Segment],
    *,
    buffer_before_s: float,
    buffer_after_s: float,
    duration_s: float,
    range_s: tuple[float, float] | None = None,
) -> list[ReelWindow]:
    """Windows to cut for the reel, sorted by start: each segment widened to
    [start - buffer_before_s, end + buffer_after_s] and clipped to [0, duration_s] (and to the
    analysed ``range_s`` when given); windows that overlap or touch are merged and list every
    segment index they hold. Empty windows are left out."""
    low, high = 0.0, duration_s
    if range_s is not None:
        low, high = max(low, range_s[0]), min(high, range_s[1])
    windows: list[tuple[float, float, list[int]]] = []
    for seg in sorted(segments, key=lambda s: (s.start_s, s.end_s)):
        start = max(low, seg.start_s - buffer_before_s)
        end = min(high, seg.end_s + buffer_after_s)
        if end <= start:
            continue
        if windows and start <= windows[-1][1] + _EPS:
            prev_start, prev_end, indices = windows[-1]
            windows[-1] = (prev_start, max(prev_end, end), [*indices, seg.index])
        else:
            windows.append((start, end, [seg.index]))
    return [
        ReelWindow(start_s=round(s, 6), end_s=round(e, 6), segment_indices=sorted(i)) for s, e, i in windows
    ]


def cut_windows(
    segments: Sequence[Segment],
    *,
    reel: ReelSettings,
    duration_s: float,
    range_s: tuple[float, float] | None = None,
) -> list[ReelWindow]:
    """The reel's windows in the order it shows them: ``reel_windows`` of the segments with the
    reel's buffers; with ``reel.max_duration_s``, only those of the strongest segments (by
    ``score``) that fit in it in all (a segment joins when the windows with it still fit; when not
    even the strongest one's does, its window is cut to the limit around the segment's middle);
    then by start ("time") or strongest first ("energy")."""

    def windows_of(chosen: Iterable[Segment]) -> list[ReelWindow]:
        return reel_windows(
            chosen,
            buffer_before_s=reel.buffer_before_s,
            buffer_after_s=reel.buffer_after_s,
            duration_s=duration_s,
            range_s=range_s,
        )

    windows = windows_of(segments)
    limit = reel.max_duration_s
    if limit is not None and _length(windows) > limit + _EPS:
        kept: list[Segment] = []
        for seg in sorted(segments, key=lambda s: (-s.score, s.start_s)):
            if _length(windows_of([*kept, seg])) <= limit + _EPS:
                kept.append(seg)
        windows = windows_of(kept) if kept else _cut_to(windows_of(segments), segments, limit)
    if reel.order == "energy":
        score = {s.index: s.score for s in segments}
        return sorted(windows, key=lambda w: (-max(score[i] for i in w.segment_indices), w.start_s))
    return windows


def _length(windows: Iterable[ReelWindow]) -> float:
    return sum(w.end_s - w.start_s for w in windows)


def _cut_to(windows: Sequence[ReelWindow], segments: Sequence[Segment], limit: float) -> list[ReelWindow]:
    """The strongest segment's window, cut to ``limit`` seconds around the segment's middle."""
    best = max(segments, key=lambda s: (s.score, -s.start_s))
    window = next(w for w in windows if best.index in w.segment_indices)
    middle = (best.start_s + best.end_s) / 2
    start = max(window.start_s, min(middle - limit / 2, window.end_s - limit))
    end = min(window.end_s, start + limit)
    return [ReelWindow(start_s=round(start, 6), end_s=round(end, 6), segment_indices=[best.index])]
