"""pose: the landmark model's output -> PersonPose conversion, and telling duplicates apart (no
model needed; PersonFinder on real footage is in tests/functional/test_pose.py)."""

from __future__ import annotations

import numpy as np
import pytest

from posereel.landmarks import LANDMARKS
from posereel.pose import _MIN_WIDTH, _PAD_BOTTOM, _PAD_SIDE, _PAD_TOP, _distinct, person_from_landmarks

WIDTH, HEIGHT = 1000, 500


def raw_pose(x0: float, y0: float, x1: float, y1: float, *, visibility: float = 0.9) -> np.ndarray:
    """(39, 5) frame-pixel landmarks spread over the box (x0, y0, x1, y1), as to_frame gives them."""
    out = np.zeros((LANDMARKS, 5))
    t = np.linspace(0, 1, 33)
    out[:33, 0] = x0 + (x1 - x0) * t
    out[:33, 1] = y0 + (y1 - y0) * ((7 * t) % 1)
    out[[0, 32], 1] = y0, y1
    out[33:, :2] = (x0 + x1) / 2, (y0 + y1) / 2  # the auxiliary points, inside the body
    out[:, 3] = visibility
    out[:, 4] = 0.9
    return out


def test_the_box_is_the_visible_landmarks_padded_to_the_body_outline() -> None:
    # Given landmarks spanning 200..300 x 100..400 px, all visible
    person = person_from_landmarks(raw_pose(200, 100, 300, 400), 0.8, width=WIDTH, height=HEIGHT)
    # Then the box pads their extent (the head above the eyes, feet and hands beyond their points)
    tall = 300
    assert person.box == pytest.approx(
        (
            (200 - _PAD_SIDE * tall) / WIDTH,
            (100 - _PAD_TOP * tall) / HEIGHT,
            (300 + _PAD_SIDE * tall) / WIDTH,
            (400 + _PAD_BOTTOM * tall) / HEIGHT,
        )
    )
    assert person.score == 0.8 and person.track_id is None
    assert len(person.landmarks) == 33  # the auxiliary landmarks stay out


def test_a_body_seen_from_the_side_gets_a_minimum_width() -> None:
    person = person_from_landmarks(raw_pose(500, 100, 505, 400), 0.9, width=WIDTH, height=HEIGHT)
    x0, y0, x1, y1 = person.box
    assert (x1 - x0) * WIDTH == pytest.approx(_MIN_WIDTH * (y1 - y0) * HEIGHT)
    assert (x0 + x1) / 2 * WIDTH == pytest.approx(502.5)


def test_hidden_landmarks_do_not_stretch_the_box_and_it_is_clipped_to_the_frame() -> None:
    # Given a visible body near the left edge and two hidden landmarks far to the right
    raw = raw_pose(5, 100, 100, 400)
    raw[[30, 31], 0] = 900
    raw[[30, 31], 3] = 0.05
    person = person_from_landmarks(raw, 0.9, width=WIDTH, height=HEIGHT)
    # Then the box ignores them and stops at the frame's edge; the landmarks themselves are kept
    assert person.box[0] == 0.0
    assert person.box[2] < 0.2
    assert person.landmarks[30][0] == pytest.approx(0.9)
    assert person.landmarks[30][3] == pytest.approx(0.05)


def test_with_fewer_than_four_visible_landmarks_every_landmark_counts() -> None:
    raw = raw_pose(100, 100, 400, 400, visibility=0.1)
    person = person_from_landmarks(raw, 0.6, width=WIDTH, height=HEIGHT)
    assert person.box[0] < 0.1 and person.box[2] > 0.4


def test_two_crops_that_ended_on_one_person_keep_the_better_pose() -> None:
    # Given poses in order of presence: one person twice (almost the same landmarks), and another
    first = raw_pose(100, 100, 200, 400)
    copy = first + 2.0
    other = raw_pose(600, 100, 700, 400)
    # Then the copy goes, the better pose and the other person stay
    assert _distinct([0, 1, 2], np.stack([first, copy, other])) == [0, 2]


def test_two_people_side_by_side_are_not_taken_for_copies() -> None:
    # Given two people whose boxes overlap but whose landmarks lie apart
    left = raw_pose(100, 100, 200, 400)
    right = raw_pose(120, 100, 220, 400)
    right[:, 1] = right[::-1, 1]  # another body: its points elsewhere in the overlap
    assert _distinct([0, 1], np.stack([left, right])) == [0, 1]


def test_two_crops_of_one_person_are_one_even_when_one_holds_an_arm_out() -> None:
    # Given one person twice: the same torso and legs, but one crop puts the right arm out
    # sideways, so the two boxes overlap at well under half
    first = raw_pose(100, 100, 160, 400)
    copy = first.copy()
    copy[[14, 16, 18, 20, 22], 0] += 120
    # Then the copy goes
    assert _distinct([0, 1], np.stack([first, copy])) == [0]
