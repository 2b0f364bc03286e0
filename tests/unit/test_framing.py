"""What a reel's frames get (posereel.framing): the crop's size, a path that follows the chosen
people smoothly and stays on them and in the frame, heads from the pose landmarks, and blurred
boxes that keep no detail."""

from __future__ import annotations

import numpy as np
import pytest

from posereel import framing
from posereel.schemas import FramePoses
from tests.builders import person

FRAME = (1280, 720)


@pytest.mark.parametrize(
    ("frame", "aspect", "size"),
    [
        ((1280, 720), "9:16", (404, 720)),
        ((1280, 720), "1:1", (720, 720)),
        ((1080, 1920), "1:1", (1080, 1080)),
        ((1080, 1920), "9:16", (1080, 1920)),
        ((1280, 720), "source", (1280, 720)),
    ],
)
def test_the_crop_is_the_largest_of_its_aspect_inside_the_frame(frame, aspect, size) -> None:
    assert framing.crop_size(frame, aspect) == size


def walker(speed: float, *, seconds: float = 4.0, fps: float = 10.0) -> list[FramePoses]:
    """One person (track 0) crossing the frame at ``speed`` frame widths per second."""
    return [
        FramePoses(index=i, t_s=i / fps, persons=[person(0, cx=0.1 + speed * i / fps)])
        for i in range(int(seconds * fps))
    ]


def test_the_crop_follows_its_person_smoothly_and_keeps_them_in_view() -> None:
    frames = walker(0.2)
    path = framing.SubjectPath.of(frames, [0])
    times = np.arange(0, 3.9, 1 / 30)
    origins = framing.crop_origins(path, times, frame_px=FRAME, size=(404, 720))
    x = origins[:, 0]
    # It moves with the walker, a few pixels a frame at most (no jumps)
    assert x[-1] > x[0] + 300
    assert np.abs(np.diff(x)).max() <= 12
    # The walker's centre is always in the crop, and the crop in the frame
    for t, left in zip(times, x, strict=True):
        centre = (0.1 + 0.2 * t) * FRAME[0]
        assert left <= centre <= left + 404
    assert x.min() >= 0 and x.max() <= FRAME[0] - 404


def test_a_window_without_its_people_is_cut_from_the_middle() -> None:
    origins = framing.crop_origins(
        framing.SubjectPath.of(walker(0.1), [7]), np.arange(0, 1, 0.1), frame_px=FRAME, size=(404, 720)
    )
    assert set(origins[:, 0]) == {(FRAME[0] - 404) // 2}


def test_heads_come_from_the_pose_and_are_sized_from_the_body() -> None:
    heads = framing.head_tracks(walker(0.1), frame_px=FRAME)
    assert len(heads) == 1
    cx, cy, size = heads[0].at(1.0, max_gap_s=0.25) or (0, 0, 0)
    body = person(0, cx=0.2)
    top = body.box[1] * FRAME[1]
    assert abs(cx - 0.2 * FRAME[0]) < size / 2
    assert top - size / 2 <= cy <= top + size  # near the top of the body
    assert size >= framing.HEAD_OF_BODY * (body.box[3] - body.box[1]) * FRAME[1]
    # Between sightings too far apart, or away from them, there is no head
    assert heads[0].at(10.0, max_gap_s=0.25) is None


def test_a_blurred_box_keeps_no_detail() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    before = image.copy()
    framing.blur_boxes(image, [(10, 20, 50, 70), (90, 90, 200, 200)])
    assert image[20:70, 10:50].reshape(-1, 3).std(axis=0).max() == 0
    assert (image[90:, 90:].reshape(-1, 3).std(axis=0) == 0).all()  # clipped to the image
    assert (image[:20] == before[:20]).all()
