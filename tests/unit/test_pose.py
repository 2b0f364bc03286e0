"""pose: the MediaPipe -> PersonPose conversion, and PoseEstimator on real footage."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from posereel.errors import ModelError
from posereel.pose import PoseEstimator, persons_from_landmarks
from posereel.settings import PoseSettings

NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24


def _landmarks(points: list[tuple[float, float, float, float | None]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(x=x, y=y, z=z, visibility=v) for x, y, z, v in points]


# --- conversion (no model needed) -----------------------------------------------------------


def test_conversion_box_spans_visible_landmarks_and_is_clipped():
    # Given 31 visible landmarks inside the picture, one visible off its left edge, one hidden far away
    points = [(0.4 + 0.005 * i, 0.2 + 0.01 * i, -0.1, 0.9) for i in range(31)]
    points.append((-0.2, 0.5, 0.0, 0.8))
    points.append((0.99, 0.99, 0.0, 0.1))
    person = persons_from_landmarks(_landmarks(points))
    # Then the box spans the visible ones only, clipped to the picture
    x0, y0, x1, y1 = person.box
    assert (x0, y0) == (0.0, pytest.approx(0.2))
    assert (x1, y1) == (pytest.approx(0.55), pytest.approx(0.5))
    assert person.track_id is None
    assert len(person.landmarks) == 33
    assert person.landmarks[31] == pytest.approx((-0.2, 0.5, 0.0, 0.8))  # landmarks are not clipped
    assert person.score == pytest.approx((31 * 0.9 + 0.8 + 0.1) / 33)


def test_conversion_with_nothing_visible_uses_every_landmark_and_treats_none_as_zero():
    points = [(0.1 + 0.02 * i, 0.3, 0.0, None) for i in range(33)]
    person = persons_from_landmarks(_landmarks(points))
    assert person.box == pytest.approx((0.1, 0.3, 0.74, 0.3))
    assert person.score == 0.0
    assert all(lm[3] == 0.0 for lm in person.landmarks)


def test_conversion_rejects_a_wrong_landmark_count():
    with pytest.raises(ValueError, match="33"):
        persons_from_landmarks(_landmarks([(0.5, 0.5, 0.0, 1.0)] * 17))


# --- PoseEstimator --------------------------------------------------------------------------


def test_missing_or_damaged_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        PoseEstimator(PoseSettings(), tmp_path / "nope.task")
    junk = tmp_path / "junk.task"
    junk.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelError, match="cannot load"):
        PoseEstimator(PoseSettings(), junk)
