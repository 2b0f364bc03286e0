"""Which windows a reel shows: a length limit keeps the strongest segments that fit, and the
order is by time or strongest first (posereel.segments.cut_windows)."""

from __future__ import annotations

import pytest

from posereel.segments import cut_windows
from posereel.settings import ReelSettings
from tests.builders import segment

DURATION_S = 60.0


def reel(**knobs: object) -> ReelSettings:
    return ReelSettings.model_validate({"buffer_before_s": 1.0, "buffer_after_s": 1.0, **knobs})


SEGMENTS = [
    segment(0, 5.0, 8.0, score=1.0),  # window 4-9 (5 s)
    segment(1, 20.0, 22.0, score=3.0),  # window 19-23 (4 s)
    segment(2, 23.5, 24.5, score=0.5),  # window 22.5-25.5: joins window 1 (19-25.5)
    segment(3, 40.0, 50.0, score=2.0),  # window 39-51 (12 s)
]


def lengths(windows: list) -> float:
    return sum(w.end_s - w.start_s for w in windows)


def test_without_a_limit_every_segment_is_shown_in_time_order() -> None:
    windows = cut_windows(SEGMENTS, reel=reel(), duration_s=DURATION_S)
    assert [w.segment_indices for w in windows] == [[0], [1, 2], [3]]


def test_a_limit_keeps_the_strongest_segments_that_fit() -> None:
    # 19-23 (segment 1, strongest) and then 39-51 (segment 3) make 16 s; segment 0 would not fit
    windows = cut_windows(SEGMENTS, reel=reel(max_duration_s=17.0), duration_s=DURATION_S)
    assert [w.segment_indices for w in windows] == [[1], [3]]
    assert lengths(windows) == pytest.approx(16.0)
    # A smaller limit still finds what fits after the strongest: 4 s + 5 s
    windows = cut_windows(SEGMENTS, reel=reel(max_duration_s=10.0), duration_s=DURATION_S)
    assert [w.segment_indices for w in windows] == [[0], [1]]


def test_when_not_even_the_strongest_fits_it_is_cut_around_its_middle() -> None:
    windows = cut_windows(SEGMENTS, reel=reel(max_duration_s=2.0), duration_s=DURATION_S)
    assert len(windows) == 1 and windows[0].segment_indices == [1]
    assert (windows[0].start_s, windows[0].end_s) == (20.0, 22.0)


def test_energy_order_shows_the_strongest_first() -> None:
    windows = cut_windows(SEGMENTS, reel=reel(order="energy"), duration_s=DURATION_S)
    assert [w.segment_indices for w in windows] == [[1, 2], [3], [0]]
