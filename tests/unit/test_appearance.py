"""appearance: colour histograms of a person's torso and thighs on synthetic frames, and the
distance between two of them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posereel.appearance import HUE_BINS, SATURATION_BINS, SIZE, describe, distance, hsv_frame
from posereel.schemas import PersonPose
from tests.builders import person

WIDTH, HEIGHT = 640, 360
HALF = HUE_BINS * SATURATION_BINS  # one region's bins
TORSO, THIGHS = slice(0, HALF), slice(HALF, SIZE)
TORSO_QUAD, THIGH_QUAD = (11, 12, 24, 23), (23, 24, 26, 25)

RED, YELLOW, GREEN, CYAN, BLUE, MAGENTA = (
    (255, 0, 0),
    (255, 255, 0),
    (0, 255, 0),
    (0, 255, 255),
    (0, 0, 255),
    (255, 0, 255),
)


# --- builders ---------------------------------------------------------------------------------


def someone(**kwargs: object) -> PersonPose:
    """A standing person (tests.builders.person) in a WIDTH x HEIGHT frame."""
    return person(0, aspect=WIDTH / HEIGHT, **kwargs)  # type: ignore[arg-type]


def quad_px(p: PersonPose, indices: tuple[int, ...]) -> np.ndarray:
    return np.array([(p.landmarks[i][0] * WIDTH, p.landmarks[i][1] * HEIGHT) for i in indices])


def dressed(p: PersonPose, *, shirt: tuple[int, int, int], trousers: tuple[int, int, int], background=BLUE):
    """An RGB frame of ``background`` where ``p`` wears a ``shirt`` over the torso and
    ``trousers`` over the thighs (each painted a little wider than the region)."""
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[:] = background
    for indices, colour in ((THIGH_QUAD, trousers), (TORSO_QUAD, shirt)):
        quad = quad_px(p, indices)
        centre = quad.mean(axis=0)
        wider = centre + 1.3 * (quad - centre)
        cv2.fillConvexPoly(rgb, np.round(wider).astype(np.int32), colour)
    # the shirt reaches down to the hips only; the trousers take over there
    thighs = quad_px(p, THIGH_QUAD)
    cv2.fillConvexPoly(rgb, np.round(thighs).astype(np.int32), trousers)
    return rgb


def saturated_bin(hue_bin: int) -> int:
    """A region's bin of a fully saturated colour of hue bin ``hue_bin``."""
    return hue_bin * SATURATION_BINS + SATURATION_BINS - 1


def one_colour(bin_: int, *, region: slice = TORSO, weight: float = 1.0) -> np.ndarray:
    hist = np.zeros(SIZE, np.float32)
    hist[region.start + bin_] = weight
    return hist


# --- describe ---------------------------------------------------------------------------------


def test_a_red_shirt_fills_the_red_bins_of_the_torso_and_green_trousers_the_thighs():
    # Given someone in a red shirt and green trousers against blue
    p = someone()
    rgb = dressed(p, shirt=RED, trousers=GREEN)
    # When described
    hist = describe(hsv_frame(rgb), p)
    # Then the histogram has both regions, each summing to 1
    assert hist is not None
    assert hist.shape == (SIZE,)
    assert hist[TORSO].sum() == pytest.approx(1.0)
    assert hist[THIGHS].sum() == pytest.approx(1.0)
    # And nearly all of the torso is red (hue bin 0), of the thighs green (hue 60 of 180: bin 4)
    assert hist[TORSO][saturated_bin(0)] > 0.9
    assert hist[THIGHS][saturated_bin(4)] > 0.9
    # And the blue background barely shows
    assert hist[TORSO][saturated_bin(8)] < 0.05
    assert hist[THIGHS][saturated_bin(8)] < 0.05


@pytest.mark.parametrize(
    ("colour", "bin_"),
    [
        (RED, saturated_bin(0)),
        (YELLOW, saturated_bin(2)),
        (GREEN, saturated_bin(4)),
        (CYAN, saturated_bin(6)),
        (BLUE, saturated_bin(8)),
        (MAGENTA, saturated_bin(10)),
        ((128, 128, 128), 0),  # grey: no saturation, hue 0
    ],
)
def test_the_colour_of_an_rgb_frame_lands_in_its_hue_bin(colour, bin_):
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[:] = colour
    hist = describe(hsv_frame(rgb), someone())
    assert hist is not None
    assert hist[TORSO][bin_] == pytest.approx(1.0)
    assert hist[THIGHS][bin_] == pytest.approx(1.0)


def test_a_near_and_a_far_view_of_one_person_compare_as_the_same():
    near, far = someone(body=0.8, cy=0.5), someone(body=0.25, cx=0.3, cy=0.7)
    a = describe(hsv_frame(dressed(near, shirt=RED, trousers=GREEN)), near)
    b = describe(hsv_frame(dressed(far, shirt=RED, trousers=GREEN)), far)
    assert a is not None and b is not None
    assert distance(a, b) < 0.1


def test_a_hidden_torso_gives_zeros_there_and_keeps_the_thighs():
    # Given someone whose shoulders are hidden
    visibility = np.full(33, 0.95)
    visibility[[11, 12]] = 0.3
    p = someone(visibility=visibility)
    hist = describe(hsv_frame(dressed(p, shirt=RED, trousers=GREEN)), p)
    # Then the torso bins are zero and the thighs are described
    assert hist is not None
    assert not hist[TORSO].any()
    assert hist[THIGHS].sum() == pytest.approx(1.0)
    assert hist[THIGHS][saturated_bin(4)] > 0.9


def test_hidden_thighs_give_zeros_there_and_keep_the_torso():
    visibility = np.full(33, 0.95)
    visibility[25] = 0.49  # a knee, just below visible
    p = someone(visibility=visibility)
    hist = describe(hsv_frame(dressed(p, shirt=RED, trousers=GREEN)), p)
    assert hist is not None
    assert not hist[THIGHS].any()
    assert hist[TORSO][saturated_bin(0)] > 0.9


def test_someone_with_neither_region_visible_is_not_described():
    p = someone(visibility=0.2)
    assert describe(hsv_frame(dressed(p, shirt=RED, trousers=GREEN)), p) is None


def test_someone_too_small_to_have_pixels_is_not_described():
    p = someone(body=0.01)  # torso about 1 x 1 px
    assert describe(hsv_frame(dressed(p, shirt=RED, trousers=GREEN)), p) is None


def test_someone_half_out_of_the_frame_is_described_from_the_visible_half():
    # Given someone at the right edge of a red frame, the hip centre on the edge
    p = someone(cx=1.0)
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[:] = RED
    hist = describe(hsv_frame(rgb), p)
    assert hist is not None
    assert hist[TORSO][saturated_bin(0)] == pytest.approx(1.0)


# --- distance ---------------------------------------------------------------------------------


def test_identical_histograms_are_at_distance_zero():
    hist = one_colour(saturated_bin(0)) + one_colour(saturated_bin(4), region=THIGHS)
    assert distance(hist, hist.copy()) == pytest.approx(0.0)


def test_a_sum_of_many_views_compares_with_one_view():
    one = one_colour(saturated_bin(0)) + one_colour(saturated_bin(4), region=THIGHS)
    assert distance(one, 30 * one) == pytest.approx(0.0)


def test_different_colours_are_at_distance_one():
    red = one_colour(saturated_bin(0)) + one_colour(saturated_bin(0), region=THIGHS)
    blue = one_colour(saturated_bin(8)) + one_colour(saturated_bin(8), region=THIGHS)
    assert distance(red, blue) == pytest.approx(1.0)


def test_a_shared_shirt_and_different_trousers_are_half_way():
    a = one_colour(saturated_bin(0)) + one_colour(saturated_bin(4), region=THIGHS)
    b = one_colour(saturated_bin(0)) + one_colour(saturated_bin(8), region=THIGHS)
    assert distance(a, b) == pytest.approx(0.5)
    assert distance(b, a) == pytest.approx(0.5)


def test_a_half_red_half_blue_shirt_is_half_way_from_a_red_one():
    red = one_colour(saturated_bin(0))
    mixed = one_colour(saturated_bin(0), weight=0.5) + one_colour(saturated_bin(8), weight=0.5)
    assert distance(red, mixed) == pytest.approx(0.5)


def test_only_regions_both_saw_are_compared():
    # Given one view of the torso only (red) and one of torso (red) and thighs (blue)
    torso_only = one_colour(saturated_bin(0))
    both = one_colour(saturated_bin(0)) + one_colour(saturated_bin(8), region=THIGHS)
    # Then the thighs, unseen in one of them, do not count
    assert distance(torso_only, both) == pytest.approx(0.0)


def test_views_sharing_no_region_are_half_way_for_want_of_anything_to_compare():
    torso_only = one_colour(saturated_bin(0))
    thighs_only = one_colour(saturated_bin(0), region=THIGHS)
    assert distance(torso_only, thighs_only) == pytest.approx(0.5)
