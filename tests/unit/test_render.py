"""Pictures: skeletons land where the poses are, in their track's colour, only for visible
landmarks; the overlay has one frame per analysed frame; thumbnails show the segment's peak;
the timeline is a PNG that shows every track (or that nobody was found)."""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from posereel.render import (
    POSE_CONNECTIONS,
    draw_persons,
    render_timeline,
    track_color_bgr,
    track_color_rgb,
)
from posereel.schemas import EnergySeries, Segment
from tests import builders

# The pictures drawn on are 4:3.
person = partial(builders.person, aspect=4 / 3)


def _colour_mask(
    image_bgr: np.ndarray, color_bgr: tuple[int, int, int], *, tolerance: int = 45
) -> np.ndarray:
    diff = np.abs(image_bgr.astype(int) - np.array(color_bgr, dtype=int))
    return (diff <= tolerance).all(axis=-1)


# --- colours -------------------------------------------------------------------------------------


def test_track_colours_are_stable_and_distinct():
    colours = [track_color_rgb(i) for i in range(40)]
    assert len(set(colours)) == 40
    assert [track_color_rgb(i) for i in range(40)] == colours
    assert track_color_rgb(None) not in colours
    assert all(track_color_bgr(i) == tuple(reversed(track_color_rgb(i))) for i in range(40))
    # the first tracks use matplotlib's tab10, so plot and pictures agree
    assert track_color_rgb(0) == (0x1F, 0x77, 0xB4)


# --- draw_persons --------------------------------------------------------------------------------


def test_skeleton_is_drawn_in_the_track_colour_at_the_landmarks():
    # Given a black 320x240 image and one person with track id 2
    image = np.zeros((240, 320, 3), np.uint8)
    pose = person(2, cx=0.5)

    draw_persons(image, [pose])

    # Then the middle of every bone is painted in track 2's colour
    mask = _colour_mask(image, track_color_bgr(2))
    for a, b in POSE_CONNECTIONS:
        (xa, ya, _, _), (xb, yb, _, _) = pose.landmarks[a], pose.landmarks[b]
        x, y = round((xa + xb) / 2 * 320), round((ya + yb) / 2 * 240)
        assert mask[y - 1 : y + 2, x - 1 : x + 2].any(), f"bone {a}-{b} not drawn"
    # And nothing is drawn far from the person
    assert not image[:, :60].any() and not image[:, 260:].any()


def test_landmarks_below_visibility_are_not_drawn():
    # Given a person whose left ankle (27) is reported far away with visibility 0.2
    image = np.zeros((240, 320, 3), np.uint8)
    pose = person(0, cx=0.3, moved={27: (0.9, 0.1, 0.2)})

    draw_persons(image, [pose])

    # Then neither the ankle nor the bones to it are drawn: the top-right corner stays black
    assert not image[:60, 200:].any()
    knee_x, knee_y = pose.landmarks[25][0] * 320, pose.landmarks[25][1] * 240
    x, y = round((knee_x + 0.9 * 320) / 2), round((knee_y + 0.1 * 240) / 2)
    assert not image[y - 2 : y + 3, x - 2 : x + 3].any()


def test_primary_is_drawn_thicker_than_others():
    pose = person(1, cx=0.5)
    plain, primary = np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8)
    draw_persons(plain, [pose], primary_track_id=7)
    draw_persons(primary, [pose], primary_track_id=1)
    colour = track_color_bgr(1)
    assert _colour_mask(primary, colour).sum() > 1.3 * _colour_mask(plain, colour).sum()


def test_people_without_track_id_are_drawn_in_grey():
    image = np.zeros((240, 320, 3), np.uint8)
    draw_persons(image, [person(None, cx=0.5)])
    assert _colour_mask(image, track_color_bgr(None), tolerance=10).sum() > 100


# --- render_thumbnails ---------------------------------------------------------------------------


def _segment(index: int, start_s: float, end_s: float, track_ids: list[int]) -> Segment:
    return Segment(
        index=index, start_s=start_s, end_s=end_s, track_ids=track_ids, peak_energy=1.0, mean_energy=0.5,
        top_parts=["left_arm"], score=0.5,
    )  # fmt: skip


# --- render_timeline -----------------------------------------------------------------------------


def test_timeline_shows_every_track_and_the_segments(tmp_path):
    # Given two tracks (0 primary, 1 other) and two segments
    t = [i / 10 for i in range(100)]
    energy = [
        EnergySeries(track_id=0, t_s=t, energy=[0.2 + 0.8 * (30 <= i < 60) for i in range(100)]),
        EnergySeries(track_id=1, t_s=t, energy=[None if i < 20 else 0.3 for i in range(100)]),
    ]
    segments = [_segment(0, 3.0, 6.0, [0]), _segment(1, 7.0, 8.0, [1])]

    path = render_timeline(energy, segments, tmp_path / "timeline.png", duration_s=10.0, primary_track_id=0,
                           title="clip.mp4")  # fmt: skip

    # Then a 1200x420 PNG shows both track colours and the segment shading
    image = cv2.imread(str(path))
    assert image.shape == (420, 1200, 3)
    assert _colour_mask(image, track_color_bgr(0), tolerance=12).sum() > 500
    assert _colour_mask(image, track_color_bgr(1), tolerance=80).sum() > 100  # thin, anti-aliased
    shade = _colour_mask(image, (0xDD, 0xEF, 0xFB), tolerance=12)  # #f2c14e at 25 % on white, BGR
    assert shade.sum() > 5000


def test_timeline_without_people_still_renders(tmp_path):
    path = render_timeline([], [], tmp_path / "t.png", duration_s=12.0, title="empty.mp4")
    image = cv2.imread(str(path))
    assert image.shape == (420, 1200, 3)
    # no track curve anywhere
    assert not any(_colour_mask(image, track_color_bgr(i), tolerance=12).sum() > 20 for i in range(9))
