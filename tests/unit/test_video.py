"""video.probe and video.sample_frames on real footage and on small files made here with ffmpeg."""

from __future__ import annotations

import pytest

from posereel import grid
from posereel.errors import NotAVideoError, VideoNotFoundError
from posereel.video import grid_indices, probe

# --- probe ----------------------------------------------------------------------------------


def test_probe_missing_file(tmp_path):
    with pytest.raises(VideoNotFoundError) as err:
        probe(tmp_path / "nope.mp4")
    assert err.value.code == "NOT_FOUND"


def test_probe_empty_file_is_not_a_video(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(NotAVideoError, match="empty"):
        probe(path)


# --- grid and sizes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_s", "end_s", "fps", "duration_s", "expected"),
    [
        (1.3, 6.3, 10, 17.18, range(13, 63)),  # 5 s at 10 fps: 50 frames
        (1.2999999, 6.3, 10, 17.18, range(13, 63)),  # a start a hair below the grid snaps onto it
        (12.0, 99.0, 10, 17.183833, range(120, 172)),  # ends at the video's end: floor
        (0.0, 10.01, 10, 10.01, range(0, 101)),  # t = 10.0 < 10.01 is still inside
        (0.0, 5.0, 3, 10.0, range(0, 15)),
        (5.0, 5.0, 10, 10.0, range(50, 50)),
    ],
)
def test_grid_indices(start_s, end_s, fps, duration_s, expected):
    assert grid_indices(start_s, end_s, target_fps=fps, duration_s=duration_s) == expected


@pytest.mark.parametrize(
    ("count", "parts", "min_count", "expected"),
    [
        (90, 3, 0, [30, 60]),  # equal pieces
        (100, 3, 0, [33, 67]),  # about equal, rounded
        (100, 3, 40, [50]),  # two pieces of at least 40 frames fit, not three
        (100, 3, 101, []),  # too short for two: one piece
        (2, 5, 0, [1]),  # never an empty piece
        (100, 1, 10, []),
    ],
)
def test_frames_are_cut_into_even_pieces_of_at_least_a_length(count, parts, min_count, expected):
    assert grid.even_borders(count, parts=parts, min_count=min_count) == expected
