"""landmarks: a person's crop (Roi) from a detector box or from the landmarks of the frame before,
the crop itself and the way back from crop pixels to frame pixels, and reading the landmark model
out of a pose bundle. No model is run."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest

from posereel.errors import ModelError
from posereel.landmarks import (
    CROP,
    LANDMARKS,
    MEMBER,
    Roi,
    crop,
    read_model,
    roi_from_box,
    roi_from_landmarks,
    snap,
    to_frame,
)

HIP_CENTRE, FULL_BODY = 33, 34


def aux_landmarks(hip: tuple[float, float], full_body: tuple[float, float]) -> np.ndarray:
    """(39, 5) landmarks in frame pixels, all at the hips but the full-body point."""
    out = np.zeros((LANDMARKS, 5))
    out[:, :2] = hip
    out[FULL_BODY, :2] = full_body
    return out


def bright_centre(image: np.ndarray) -> tuple[float, float]:
    """(x, y) of the brightness-weighted centre of an image, in its pixel indices."""
    weight = image.sum(axis=2) if image.ndim == 3 else image
    ys, xs = np.indices(weight.shape)
    total = float(weight.sum())
    return float((xs * weight).sum() / total), float((ys * weight).sum() / total)


# --- Roi --------------------------------------------------------------------------------------


def test_upright_roi_corners_are_its_square_clockwise_from_top_left():
    roi = Roi(cx=100.0, cy=50.0, side=20.0)
    np.testing.assert_allclose(roi.corners(), [(90, 40), (110, 40), (110, 60), (90, 60)])


def test_roi_turned_a_quarter_has_its_top_on_the_frame_right():
    # Given a crop turned by pi/2 (for a body lying with its head to the right)
    roi = Roi(cx=100.0, cy=50.0, side=20.0, rotation=math.pi / 2)
    corners = roi.corners()
    # Then its top-left corner is the frame's top-right: the crop's top edge is the frame's right edge
    np.testing.assert_allclose(corners, [(110, 40), (110, 60), (90, 60), (90, 40)], atol=1e-9)
    up = corners[0] - corners[3]  # bottom-left to top-left
    np.testing.assert_allclose(up / np.linalg.norm(up), (1.0, 0.0), atol=1e-9)


@pytest.mark.parametrize("rotation", [0.3, -2.0, math.pi])
def test_roi_corners_keep_the_centre_and_side_whatever_the_rotation(rotation):
    corners = Roi(cx=-5.0, cy=12.0, side=8.0, rotation=rotation).corners()
    np.testing.assert_allclose(corners.mean(axis=0), (-5.0, 12.0), atol=1e-9)
    sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
    np.testing.assert_allclose(sides, [8.0] * 4)


def near_lattice(roi: Roi, cx: float, cy: float, side: float, rotation: float = 0.0) -> None:
    """``roi`` is the crop (cx, cy, side, rotation) moved at most half a lattice step."""
    assert roi.side == pytest.approx(side, rel=0.011)
    assert abs(roi.cx - cx) <= roi.side / 128 + 1e-9 and abs(roi.cy - cy) <= roi.side / 128 + 1e-9
    assert roi.rotation == pytest.approx(rotation, abs=math.radians(1) + 1e-9)


def test_roi_from_box_is_an_upright_square_one_and_a_quarter_times_the_longer_side():
    near_lattice(roi_from_box((10.0, 20.0, 50.0, 120.0)), 30.0, 70.0, 125.0)
    near_lattice(roi_from_box((0.0, 0.0, 80.0, 40.0)), 40.0, 20.0, 100.0)


def test_crops_that_differ_by_a_little_snap_to_the_same_crop() -> None:
    # Given two analyses whose crops of one person differ by a fraction of a pixel and a degree:
    # the one that started on a detector box, the one that followed the landmarks before
    a = snap(301.3, 202.2, 151.1, 0.101)
    b = snap(301.4, 202.1, 151.0, 0.1)
    # Then they are the same crop, which lies on the lattice (snapping it again changes nothing)
    assert a == b
    assert snap(a.cx, a.cy, a.side, a.rotation) == a
    near_lattice(a, 301.3, 202.2, 151.1, 0.101)
    # And the rotation stays in [-pi, pi)
    assert -math.pi <= snap(0, 0, 10, math.pi - 0.001).rotation < math.pi


@pytest.mark.parametrize(
    ("full_body", "rotation"),
    [
        ((200.0, 220.0), 0.0),  # straight above the hips: upright
        ((280.0, 300.0), math.pi / 2),  # to the right: lying, head right
        ((120.0, 300.0), -math.pi / 2),  # to the left: lying, head left
        ((280.0, 220.0), math.pi / 4),  # up and right: leaning right
    ],
)
def test_roi_from_landmarks_turns_the_crop_so_the_body_is_upright_in_it(full_body, rotation):
    # Given hips at (200, 300) and the full-body point 80 px away
    roi = roi_from_landmarks(aux_landmarks((200.0, 300.0), full_body))
    # Then the crop is centred on the hips, turned by the body's lean (on the crop lattice)
    side = 2.5 * math.hypot(full_body[0] - 200.0, full_body[1] - 300.0)
    near_lattice(roi, 200.0, 300.0, side, rotation)
    # And the full-body point is straight above the centre in the crop: the crop's up direction
    corners = roi.corners()
    up = (corners[0] - corners[3]) / roi.side
    towards = (np.array(full_body) - (200.0, 300.0)) / np.hypot(*(np.array(full_body) - (200.0, 300.0)))
    np.testing.assert_allclose(up, towards, atol=math.radians(1))


def test_roi_from_landmarks_of_a_body_upside_down_is_a_half_turn():
    roi = roi_from_landmarks(aux_landmarks((200.0, 300.0), (200.0, 380.0)))
    assert abs(roi.rotation) == pytest.approx(math.pi)
    assert -math.pi <= roi.rotation <= math.pi


@pytest.mark.parametrize("full_body", [(200.0, 220.0), (260.0, 300.0), (150.0, 350.0)])
def test_roi_from_landmarks_side_is_two_and_a_half_hip_to_full_body_distances(full_body):
    roi = roi_from_landmarks(aux_landmarks((200.0, 300.0), full_body))
    assert roi.side == pytest.approx(2.5 * math.hypot(full_body[0] - 200.0, full_body[1] - 300.0), rel=0.011)


# --- crop and to_frame ------------------------------------------------------------------------


def test_crop_is_the_model_input_shape_in_zero_to_one():
    rgb = np.full((120, 160, 3), 255, np.uint8)
    pixels = crop(rgb, Roi(80.0, 60.0, 50.0))
    assert pixels.shape == (CROP, CROP, 3)
    assert pixels.dtype == np.float32
    assert pixels.min() == pytest.approx(1.0)  # the crop lies inside the white frame


def test_crop_outside_the_frame_is_black():
    rgb = np.full((120, 160, 3), 255, np.uint8)
    pixels = crop(rgb, Roi(80.0, 0.0, 100.0))  # its upper half is above the frame
    assert pixels[: CROP // 2 - 2].max() == 0.0
    assert pixels[CROP // 2 + 2 :].min() == pytest.approx(1.0)


@pytest.mark.parametrize("rotation", [0.0, 0.7, math.pi / 2, -2.5, math.pi])
@pytest.mark.parametrize("side", [120.0, 400.0])
def test_a_dot_found_in_the_crop_maps_back_onto_the_dot(rotation, side):
    # Given a dark frame with a bright dot at (300, 200)
    rgb = np.zeros((480, 640, 3), np.uint8)
    ys, xs = np.indices(rgb.shape[:2])
    rgb[..., 1] = (255 * np.exp(-((xs - 300) ** 2 + (ys - 200) ** 2) / (2 * 3.0**2))).astype(np.uint8)
    # And a turned crop around a point near it
    roi = Roi(cx=320.0, cy=230.0, side=side, rotation=rotation)
    # When the dot is found in the crop and its crop pixels go back to the frame
    x, y = bright_centre(crop(rgb, roi))
    raw = np.zeros((LANDMARKS, 5))
    raw[0, :2] = (x, y)
    back = to_frame(raw, roi)
    # Then it lands on the dot
    assert math.hypot(back[0, 0] - 300.0, back[0, 1] - 200.0) < 0.5


def test_to_frame_maps_the_crop_centre_and_corners_onto_the_roi():
    roi = Roi(cx=50.0, cy=80.0, side=40.0, rotation=0.9)
    raw = np.zeros((LANDMARKS, 5))
    raw[:5, :2] = [(CROP / 2, CROP / 2), (0, 0), (CROP, 0), (CROP, CROP), (0, CROP)]
    out = to_frame(raw, roi)
    np.testing.assert_allclose(out[0, :2], (50.0, 80.0))
    np.testing.assert_allclose(out[1:5, :2], roi.corners())


def test_to_frame_scales_depth_like_x():
    roi = Roi(cx=0.0, cy=0.0, side=512.0)
    raw = np.zeros((LANDMARKS, 5))
    raw[0, 2], raw[1, 2] = CROP, -CROP / 4
    out = to_frame(raw, roi)
    assert out[0, 2] == pytest.approx(512.0)
    assert out[1, 2] == pytest.approx(-128.0)


def test_to_frame_turns_visibility_and_presence_logits_into_probabilities():
    raw = np.zeros((LANDMARKS, 5))
    raw[0, 3:5] = (0.0, 0.0)
    raw[1, 3:5] = (math.log(3.0), -math.log(3.0))  # odds 3:1 and 1:3
    raw[2, 3:5] = (1e4, -1e4)  # far beyond float range once exponentiated
    with np.errstate(over="raise"):
        out = to_frame(raw, Roi(0.0, 0.0, 100.0))
    np.testing.assert_allclose(out[0, 3:5], (0.5, 0.5))
    np.testing.assert_allclose(out[1, 3:5], (0.75, 0.25))
    np.testing.assert_allclose(out[2, 3:5], (1.0, 0.0), atol=1e-12)
    assert out.dtype == np.float64


# --- read_model -------------------------------------------------------------------------------


def test_read_model_returns_the_landmark_model_of_a_bundle(tmp_path):
    bundle = tmp_path / "pose_landmarker_lite.task"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("pose_detector.tflite", b"detector")
        archive.writestr(MEMBER, b"landmarks")
    assert read_model(bundle) == b"landmarks"


def test_read_model_of_a_file_that_is_not_a_zip_is_a_model_error(tmp_path):
    bundle = tmp_path / "junk.task"
    bundle.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelError, match=MEMBER):
        read_model(bundle)


def test_read_model_of_a_zip_without_the_landmark_model_is_a_model_error(tmp_path):
    bundle = tmp_path / "other.task"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("pose_detector.tflite", b"detector")
    with pytest.raises(ModelError, match=MEMBER):
        read_model(bundle)
