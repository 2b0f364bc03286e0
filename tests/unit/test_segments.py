"""Segments: hysteresis, merge and drop rules, combining tracks, reel windows (synthetic energy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posereel.motion import PART_NAMES, TrackEnergy
from posereel.schemas import Segment
from posereel.segments import find_segments, hysteresis, reel_windows, track_spans
from posereel.settings import SegmentSettings
from tests.builders import segment

FPS = 10.0
# Explicit knobs, so these tests check the rules and not the calibrated defaults.
RULES = SegmentSettings(
    enter_threshold=0.4,
    exit_threshold=0.2,
    min_motion_s=0.3,
    min_still_s=0.6,
    merge_gap_s=1.0,
    min_segment_s=0.5,
)
STILL, SWAY, MOVE = 0.05, 0.3, 0.8
NAN = math.nan

# --- builders ---------------------------------------------------------------------------------


def series(*pieces: tuple[float, float]) -> np.ndarray:
    """Energy samples at FPS from (value, seconds) pieces."""
    return np.concatenate([np.full(round(seconds * FPS), value, dtype=float) for value, seconds in pieces])


def track(
    values: np.ndarray, *, track_id: int = 0, first_index: int = 0, parts: dict[str, float] | None = None
) -> TrackEnergy:
    """A TrackEnergy whose parts are ``values`` scaled by ``parts`` (default: arms carry it)."""
    shares = parts or {"left_arm": 1.0, "right_arm": 0.9}
    present = np.isfinite(values)
    return TrackEnergy(
        track_id=track_id,
        first_index=first_index,
        fps=FPS,
        t_s=(first_index + np.arange(values.size)) / FPS,
        energy=values,
        part_energy={name: values * shares.get(name, 0.05) for name in PART_NAMES},
        present=present,
        body_length_px=np.where(present, 100.0, np.nan),
    )


def spans(values: np.ndarray, settings: SegmentSettings = RULES) -> list[tuple[float, float]]:
    return [(round(s.start_s, 3), round(s.end_s, 3)) for s in track_spans(track(values), settings=settings)]


def seg(index: int, start: float, end: float) -> Segment:
    return segment(index, start, end, top_parts=(), peak_energy=1, mean_energy=1, score=1)


# --- one track ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        pytest.param([(STILL, 5)], [], id="still"),
        pytest.param([(SWAY, 5)], [], id="sway below enter"),
        pytest.param([(STILL, 2), (MOVE, 3), (STILL, 2)], [(2.0, 4.9)], id="one burst"),
        pytest.param([(STILL, 2), (MOVE, 0.2), (STILL, 2)], [], id="shorter than min_motion_s"),
        pytest.param([(STILL, 2), (MOVE, 2), (SWAY, 2), (STILL, 2)], [(2.0, 5.9)], id="exit hysteresis"),
        pytest.param(
            [(STILL, 2), (SWAY, 1), (MOVE, 2), (STILL, 2)], [(3.0, 4.9)], id="sway before does not start"
        ),
        pytest.param([(MOVE, 2), (STILL, 0.5), (MOVE, 2)], [(0.0, 4.4)], id="dip shorter than min_still_s"),
        pytest.param([(MOVE, 2), (STILL, 0.8), (MOVE, 2)], [(0.0, 4.7)], id="split then merged"),
        pytest.param(
            [(MOVE, 2), (STILL, 1.5), (MOVE, 2)], [(0.0, 1.9), (3.5, 5.4)], id="gap over merge_gap_s"
        ),
        pytest.param([(STILL, 1), (MOVE, 0.4), (STILL, 3)], [], id="shorter than min_segment_s"),
        pytest.param([(STILL, 1), (MOVE, 2), (NAN, 3)], [(1.0, 2.9)], id="ends where the track leaves"),
        pytest.param([(NAN, 2), (MOVE, 2)], [(2.0, 3.9)], id="moving until the end"),
        pytest.param([(MOVE, 1), (NAN, 0.3), (MOVE, 1)], [(0.0, 2.2)], id="short gap inside"),
    ],
)
def test_track_spans(pieces, expected):
    assert spans(series(*pieces)) == expected


def test_start_is_back_dated_to_the_crossing_not_the_confirmation():
    # Given energy that crosses enter at 2.0 s and is confirmed 0.3 s later
    values = series((STILL, 2), (0.5, 0.3), (MOVE, 2), (STILL, 2))
    # Then the segment starts at the crossing
    assert spans(values)[0][0] == 2.0


def test_end_is_the_last_sample_above_exit_not_the_end_of_the_still_window():
    values = series((MOVE, 2), (0.3, 0.5), (STILL, 3))
    assert spans(values) == [(0.0, 2.4)]


@pytest.mark.parametrize(
    ("still_s", "merge_gap_s", "count"),
    [(0.6, 0.5, 2), (0.6, 2.0, 1), (2.0, 0.0, 1)],
)
def test_a_pause_splits_only_when_still_long_enough_and_not_merged(still_s, merge_gap_s, count):
    values = series((MOVE, 2), (STILL, 1), (MOVE, 2))
    knobs = RULES.model_copy(update={"min_still_s": still_s, "merge_gap_s": merge_gap_s})
    assert len(spans(values, knobs)) == count


def test_hysteresis_runs_before_merging():
    values = series((MOVE, 1), (STILL, 1), (MOVE, 0.5))
    assert hysteresis(values, fps=FPS, settings=RULES) == [(0, 9), (20, 24)]


# --- video level ---------------------------------------------------------------------------------


def test_no_people_or_no_movement_gives_no_segments():
    assert find_segments({}, settings=RULES) == []
    assert find_segments({0: track(series((STILL, 10)))}, settings=RULES) == []


def test_overlapping_movement_of_two_tracks_is_one_segment():
    # Given track 1 moving 1-4 s and track 2 (on its own grid, from 2 s) moving 3-6 s
    one = track(series((STILL, 1), (MOVE, 3), (STILL, 4)), track_id=1)
    two = track(series((STILL, 1), (1.2, 3), (STILL, 2)), track_id=2, first_index=20)
    found = find_segments({1: one, 2: two}, settings=RULES)
    # Then one segment spans both, names both and peaks at the stronger one
    assert len(found) == 1
    only = found[0]
    assert (only.index, only.start_s, only.end_s, only.track_ids) == (0, 1.0, 5.9, [1, 2])
    assert only.peak_energy == pytest.approx(1.2)


def test_separate_movements_are_numbered_by_start():
    late = track(series((STILL, 6), (MOVE, 2), (STILL, 1)), track_id=1)
    early = track(series((STILL, 1), (MOVE, 2), (STILL, 6)), track_id=2)
    found = find_segments({1: late, 2: early}, settings=RULES)
    assert [(s.index, s.track_ids, s.start_s) for s in found] == [(0, [2], 1.0), (1, [1], 6.0)]


def test_primary_track_id_keeps_only_the_primary():
    a = track(series((STILL, 1), (MOVE, 2), (STILL, 6)), track_id=1)
    b = track(series((STILL, 6), (MOVE, 2), (STILL, 1)), track_id=2)
    found = find_segments({1: a, 2: b}, settings=RULES, primary_track_id=2)
    assert [(s.track_ids, s.start_s) for s in found] == [([2], 6.0)]
    with pytest.raises(ValueError):
        find_segments({1: a}, settings=RULES, primary_track_id=9)


def test_energies_top_parts_and_score():
    # Given 2 s of movement at 0.8 carried by the legs, the torso at 60 %
    values = series((STILL, 1), (MOVE, 2), (STILL, 2))
    parts = {"left_leg": 1.0, "right_leg": 0.9, "torso": 0.6, "head": 0.2}
    found = find_segments({0: track(values, parts=parts)}, settings=RULES)
    [only] = found
    assert only.top_parts == ["left_leg", "right_leg", "torso"]
    assert only.mean_energy == pytest.approx(MOVE) and only.peak_energy == pytest.approx(MOVE)
    assert only.score == pytest.approx(MOVE * math.sqrt(only.end_s - only.start_s))


def test_a_third_part_is_named_only_when_it_moved_enough():
    values = series((MOVE, 2), (STILL, 2))
    found = find_segments(
        {0: track(values, parts={"left_arm": 1.0, "right_arm": 0.9, "head": 0.3})}, settings=RULES
    )
    assert found[0].top_parts == ["left_arm", "right_arm"]


def test_longer_stronger_movement_scores_higher():
    short = track(series((STILL, 1), (MOVE, 1), (STILL, 8)), track_id=1)
    long = track(series((STILL, 5), (MOVE, 4), (STILL, 1)), track_id=2)
    found = find_segments({1: short, 2: long}, settings=RULES)
    assert found[1].score > found[0].score


# --- reel windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "duration", "range_s", "expected"),
    [
        pytest.param([], 20, None, [], id="nothing"),
        pytest.param([(5, 6)], 20, None, [(3, 9, [0])], id="buffers"),
        pytest.param([(1, 2)], 20, None, [(0, 5, [0])], id="clipped at 0"),
        pytest.param([(17, 19)], 20, None, [(15, 20, [0])], id="clipped at the end"),
        pytest.param([(5, 6), (8, 9)], 20, None, [(3, 12, [0, 1])], id="overlap merges"),
        pytest.param([(5, 6), (11, 12)], 20, None, [(3, 15, [0, 1])], id="touching merges"),
        pytest.param([(5, 6), (12, 13)], 20, None, [(3, 9, [0]), (10, 16, [1])], id="apart"),
        pytest.param([(5, 6)], 20, (4.0, 8.0), [(4, 8, [0])], id="clipped to the range"),
        pytest.param([(12, 13), (2, 3)], 20, None, [(0, 6, [1]), (10, 16, [0])], id="sorted by start"),
    ],
)
def test_reel_windows(segments, duration, range_s, expected):
    segs = [seg(i, a, b) for i, (a, b) in enumerate(segments)]
    windows = reel_windows(segs, buffer_before_s=2, buffer_after_s=3, duration_s=duration, range_s=range_s)
    assert [(w.start_s, w.end_s, w.segment_indices) for w in windows] == expected


def test_reel_windows_never_exceed_the_video():
    windows = reel_windows([seg(0, 0.0, 30.0)], buffer_before_s=5, buffer_after_s=5, duration_s=10)
    assert [(w.start_s, w.end_s) for w in windows] == [(0, 10)]


# --- a short rest ends a rep only back in the starting pose -------------------------------------


def posture_of(offsets: np.ndarray) -> np.ndarray:
    """A posture series whose arms (landmarks 13-22) sit ``offsets`` body lengths from their
    start, one value per sample; every other landmark stays put (NaN: the person is not seen)."""
    posture = np.zeros((offsets.size, 33, 2))
    posture[:, 13:23, 1] = offsets[:, None]
    posture[~np.isfinite(offsets)] = np.nan
    return posture


def test_a_short_rest_away_from_the_start_pose_does_not_end_the_movement() -> None:
    # Given arms raised (moving), held up still for 0.8 s, lowered, then rested down for 0.8 s
    energy = series(
        (STILL, 1.0), (MOVE, 1.0), (STILL, 0.8), (SWAY, 1.0), (STILL, 0.8), (MOVE, 1.0), (STILL, 1.0)
    )
    away = series((0.0, 1.0), (0.3, 1.0), (0.3, 0.8), (0.1, 1.0), (0.0, 0.8), (0.3, 1.0), (0.0, 1.0))
    short = RULES.model_copy(update={"min_still_s": 0.4, "merge_gap_s": 0.4, "min_segment_s": 0.0})
    piece = track(energy)
    with_posture = TrackEnergy(**{**piece.__dict__, "posture": posture_of(away)})
    # Then the pause at the top belongs to the rep, and the rest with the arms down ends it
    found = [(round(s.start_s, 1), round(s.end_s, 1)) for s in track_spans(with_posture, settings=short)]
    assert found == [(1.0, 3.7), (4.6, 5.5)]
    # Without the posture every short rest ends the movement, as before: the lowering, slower
    # than what starts a movement, is lost
    assert spans(energy, short) == [(1.0, 1.9), (4.6, 5.5)]


def test_a_long_hold_ends_the_movement_wherever_the_body_is() -> None:
    energy = series((STILL, 1.0), (MOVE, 1.0), (STILL, 2.5), (MOVE, 1.0), (STILL, 1.0))
    away = series((0.0, 1.0), (0.3, 1.0), (0.3, 2.5), (0.3, 1.0), (0.3, 1.0))
    short = RULES.model_copy(update={"min_still_s": 0.4, "merge_gap_s": 0.4, "min_segment_s": 0.0})
    piece = TrackEnergy(**{**track(energy).__dict__, "posture": posture_of(away)})
    assert len(track_spans(piece, settings=short)) == 2


def test_a_person_lost_for_a_moment_is_not_resting() -> None:
    energy = series((STILL, 1.0), (MOVE, 1.0), (NAN, 0.6), (MOVE, 1.0), (STILL, 1.0))
    away = series((0.0, 1.0), (0.3, 1.0), (NAN, 0.6), (0.3, 1.0), (0.0, 1.0))
    short = RULES.model_copy(update={"min_still_s": 0.4, "merge_gap_s": 0.4, "min_segment_s": 0.0})
    piece = TrackEnergy(**{**track(energy).__dict__, "posture": posture_of(away)})
    assert [(round(s.start_s, 1), round(s.end_s, 1)) for s in track_spans(piece, settings=short)] == [
        (1.0, 3.5)
    ]


def test_a_choice_of_people_makes_segments_of_their_movement_only() -> None:
    energies = {
        0: track(series((MOVE, 2.0), (STILL, 4.0)), track_id=0),
        1: track(series((STILL, 3.0), (MOVE, 2.0), (STILL, 1.0)), track_id=1),
    }
    chosen = RULES.model_copy(update={"track_ids": (1, 7)})  # 7: nobody, adds nothing
    found = find_segments(energies, settings=chosen)
    assert [s.track_ids for s in found] == [[1]]
