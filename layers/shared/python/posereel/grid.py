"""The analysis grid: the instants ``index / fps`` (seconds from the start of the video) at which
frames are analysed, the same for every chunk of a video so that overlapping chunks analyse the
same instants. The one place that turns times into grid indices (a time a hair below a grid
instant, from floating-point arithmetic, counts as on it).
"""

from __future__ import annotations

import math

# How close below a grid instant a time still counts as on it, in grid steps.
GRID_EPS = 1e-6


def index_at_or_after(t_s: float, fps: float) -> int:
    """The first grid index whose time is at or after ``t_s``."""
    return math.ceil(t_s * fps - GRID_EPS)


def index_at_or_before(t_s: float, fps: float) -> int:
    """The last grid index whose time is at or before ``t_s``."""
    return math.floor(t_s * fps + GRID_EPS)


def snap_up(t_s: float, fps: float) -> float:
    """``t_s`` moved onto the grid: the time of the first grid index at or after it."""
    return index_at_or_after(t_s, fps) / fps


def indices(start_s: float, end_s: float, fps: float) -> range:
    """The grid indices whose times lie in [start_s, end_s)."""
    first = max(0, index_at_or_after(start_s, fps))
    return range(first, max(first, index_at_or_after(end_s, fps)))


def steps(seconds: float, fps: float) -> int:
    """How many grid steps cover ``seconds`` (at least one)."""
    return max(1, math.ceil(seconds * fps - GRID_EPS))


def even_borders(count: int, *, parts: int, min_count: float = 0) -> list[int]:
    """Where to cut ``count`` frames (of any rate) into at most ``parts`` pieces of about equal
    length, none shorter than ``min_count`` frames where that is given: the borders between the
    pieces, ascending, each 0 < border < count (none for one piece)."""
    if min_count > 0:
        parts = min(parts, math.floor(count / min_count))
    parts = max(1, min(parts, count))
    return [round(count * k / parts) for k in range(1, parts)]
