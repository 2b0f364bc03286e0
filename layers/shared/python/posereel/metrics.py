"""Instructor-tracking metrics per track over the analysed range.

Definitions (grid frames are the analysed frames, index = t * fps; the range is [start, end)):

* ``coverage_pct``: frames in which the track is seen / grid frames in the range x 100.
* ``gaps``: runs of consecutive unseen frames between the track's first and last sighting in the
  range (time before it enters or after it leaves is not a gap). ``longest_gap_s``: the longest
  such run in seconds (frames / fps), 0 without gaps.
* ``distance_body_lengths``: path length of the hip centre (mid-point of landmarks 23 and 24,
  both at least ``min_visibility``), in body lengths (see ``motion``: about the standing height).
  The path is smoothed over ``DISTANCE_SMOOTH_S`` first so that landmark jitter does not add up
  to distance; across a gap it counts the straight line from the last to the next sighting.
* ``jitter``: mean absolute second difference ``|p[i+1] - 2 p[i] + p[i-1]|`` of landmark
  positions over three consecutive seen frames, in body lengths, over landmarks visible in all
  three. Lower is steadier. Real acceleration adds to it too, so compare tracks doing similar
  things; 0 when the track never has three consecutive frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from posereel import grid
from posereel.motion import (
    LEFT_HIP,
    RIGHT_HIP,
    TrackArrays,
    arrays_from_sightings,
    body_length_px,
    sightings,
    smooth,
    window_samples,
)
from posereel.schemas import FramePoses, TrackMetrics

# The hip path is smoothed over this many seconds before its length is measured.
DISTANCE_SMOOTH_S = 0.5
# Jitter in words, calibrated on the shared clips (make bench-tracking, 2026-12-02): people walking
# in full view 0.065-0.09, the PETS walkers 30-60 px tall 0.066-0.11, fast basketball players
# 0.075-0.10, a player seen for a second behind the other 0.20.
JITTER_STEADY = 0.09
JITTER_SHAKY = 0.15
JitterLevel = Literal["low", "medium", "high"]


def jitter_level(jitter: float) -> JitterLevel:
    """low: the skeleton holds steady; medium: some shake from frame to frame; high: the points
    shake a lot (a small, blurred or half-hidden person, or very sudden movement)."""
    return "low" if jitter < JITTER_STEADY else "medium" if jitter < JITTER_SHAKY else "high"


def range_indices(range_s: tuple[float, float], fps: float) -> tuple[int, int]:
    """First and one-past-last grid index of the frames whose time lies in [start, end)."""
    start, end = range_s
    return grid.index_at_or_after(start, fps), grid.index_at_or_after(end, fps)


def _runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return [int(b - a) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _distance(arrays: TrackArrays, length: np.ndarray, *, fps: float, min_visibility: float) -> float:
    """Path length of the smoothed hip centre, in body lengths."""
    vis = arrays.visibility
    ok = arrays.present & (vis[:, LEFT_HIP] >= min_visibility) & (vis[:, RIGHT_HIP] >= min_visibility)
    if np.count_nonzero(ok) < 2:
        return 0.0
    hip = (arrays.xy_px[:, LEFT_HIP] + arrays.xy_px[:, RIGHT_HIP]) / 2
    window = window_samples(DISTANCE_SMOOTH_S, fps)
    path = np.stack([smooth(np.where(ok, hip[:, k], np.nan), window=window) for k in range(2)], axis=1)[ok]
    steps_px = np.linalg.norm(np.diff(path, axis=0), axis=1)
    step_length_px = (length[ok][1:] + length[ok][:-1]) / 2
    return float(np.sum(steps_px / step_length_px))


def _jitter(arrays: TrackArrays, length: np.ndarray, *, min_visibility: float) -> float:
    """Mean |second difference| of visible landmarks over seen frame triples, in body lengths."""
    if arrays.present.size < 3:
        return 0.0
    xy = arrays.xy_px
    visible = (arrays.visibility >= min_visibility) & arrays.present[:, None]
    ok = visible[:-2] & visible[1:-1] & visible[2:]  # (n - 2, 33)
    if not ok.any():
        return 0.0
    second = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=2)  # px
    with np.errstate(invalid="ignore"):
        relative = second / length[1:-1, None]
    return float(relative[ok].mean())


def track_metrics(
    frames: Sequence[FramePoses],
    *,
    range_s: tuple[float, float],
    fps: float,
    width: int,
    height: int,
    min_visibility: float = 0.5,
) -> list[TrackMetrics]:
    """Metrics of every track seen in ``range_s`` (seconds, [start, end)), sorted by id.

    ``fps`` is the analysis rate, ``width``/``height`` the displayed frame size in pixels.
    Persons without a track id are ignored.
    """
    first, stop = range_indices(range_s, fps)
    in_range = [f for f in frames if first <= f.index < stop]
    total = max(stop - first, 0)
    out: list[TrackMetrics] = []
    for tid, found in sorted(sightings(in_range).items()):
        arrays = arrays_from_sightings(found, width=width, height=height)
        length = body_length_px(arrays, fps=fps)
        gaps = _runs(~arrays.present)  # the arrays span first to last sighting
        out.append(
            TrackMetrics(
                track_id=tid,
                coverage_pct=round(100.0 * np.count_nonzero(arrays.present) / total, 3) if total else 0.0,
                gaps=len(gaps),
                longest_gap_s=round(max(gaps, default=0) / fps, 6),
                distance_body_lengths=round(
                    _distance(arrays, length, fps=fps, min_visibility=min_visibility), 6
                ),
                jitter=round(_jitter(arrays, length, min_visibility=min_visibility), 6),
            )
        )
    return out
