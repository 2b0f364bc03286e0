"""Pictures: skeletons land where the poses are, in their track's colour, only for visible
landmarks; the overlay has one frame per analysed frame; thumbnails show the segment's peak;
the timeline is a PNG that shows every track (or that nobody was found)."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from posereel.errors import ToolError
from posereel.render import (
    VideoWriter,
    render_overlay,
    render_thumbnails,
    track_color_bgr,
)
from posereel.schemas import EnergySeries, FramePoses, Segment
from posereel.video import probe
from tests import builders

ANALYSIS_FPS = 10.0

# The pictures drawn on are 4:3.
person = partial(builders.person, aspect=4 / 3)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _probe_video(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)["streams"][0]


def _decode_bgr(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


def _colour_mask(
    image_bgr: np.ndarray, color_bgr: tuple[int, int, int], *, tolerance: int = 45
) -> np.ndarray:
    diff = np.abs(image_bgr.astype(int) - np.array(color_bgr, dtype=int))
    return (diff <= tolerance).all(axis=-1)


@pytest.fixture(scope="module")
def black_video(tmp_path_factory) -> Path:
    """3 s of black, 320x240 at 25 fps: whatever is coloured in a rendered frame was drawn."""
    path = tmp_path_factory.mktemp("render") / "black.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25:d=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


# --- VideoWriter ---------------------------------------------------------------------------------


def test_video_writer_makes_a_web_ready_h264(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, size_px=(64, 48), fps=10) as writer:
        for i in range(12):
            writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    stream = _probe_video(path)
    assert (stream["codec_name"], stream["pix_fmt"], stream["r_frame_rate"]) == ("h264", "yuv420p", "10/1")
    assert int(stream["nb_frames"]) == 12
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")


def test_video_writer_leaves_nothing_when_the_block_fails(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, size_px=(64, 48), fps=10) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_video_writer_rejects_wrong_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", size_px=(63, 48), fps=10)
    with VideoWriter(tmp_path / "ok.mp4", size_px=(64, 48), fps=10) as writer:
        with pytest.raises(ValueError, match="expected 64x48x3"):
            writer.write(np.zeros((48, 62, 3), np.uint8))
        writer.write(np.zeros((48, 64, 3), np.uint8))


def test_video_writer_without_frames_is_a_tool_error(tmp_path):
    with (
        pytest.raises(ToolError, match="no frames"),
        VideoWriter(tmp_path / "empty.mp4", size_px=(64, 48), fps=10),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


# --- render_overlay ------------------------------------------------------------------------------


def _moving_frames(indices, *, track_id: int = 0) -> list[FramePoses]:
    """One person walking right: hips at x = 0.2 + 0.02 * index."""
    return [
        FramePoses(index=i, t_s=i / ANALYSIS_FPS, persons=[person(track_id, cx=0.2 + 0.02 * i)])
        for i in indices
    ]


@pytest.mark.parametrize("processes", [1, 3], ids=["in one piece", "in three pieces side by side"])
def test_overlay_has_one_frame_per_analysed_frame(black_video, tmp_path, processes):
    # Given poses for grid frames 5..24 at 10 fps, with nobody found at 10..12
    info = probe(black_video)
    frames = [f for f in _moving_frames(range(5, 25)) if f.index not in (10, 11, 12)]

    # When the overlay is rendered at most 128 px high, in one piece or in pieces of 0.6-0.7 s
    out = render_overlay(
        black_video, frames, tmp_path / "overlay.mp4", info=info, fps=ANALYSIS_FPS, max_height_px=128,
        primary_track_id=0, processes=processes, min_piece_s=0.6,
    )  # fmt: skip

    # Then it has the 20 grid frames 5..24 at 10 fps, scaled to 170x128, playable on the web
    assert out == tmp_path / "overlay.mp4"
    stream = _probe_video(out)
    assert (stream["width"], stream["height"], stream["pix_fmt"]) == (170, 128, "yuv420p")
    assert stream["r_frame_rate"] == "10/1"
    video = _decode_bgr(out, 170, 128)
    assert len(video) == 20
    # And each frame with a pose shows the skeleton where the hips are; the empty ones show nobody
    colour = track_color_bgr(0)
    for k, index in enumerate(range(5, 25)):
        if index in (10, 11, 12):
            mask = _colour_mask(video[k], colour)
            mask[:20] = False  # the time caption
            assert mask.sum() < 5, f"grid frame {index} should be empty"
        else:
            assert _legs_centre_x(video[k], colour) == pytest.approx((0.2 + 0.02 * index) * 170, abs=3)
    # And no piece is left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mp4"]


def test_overlay_without_frames_writes_nothing(black_video, tmp_path):
    info = probe(black_video)
    assert render_overlay(black_video, [], tmp_path / "o.mp4", info=info, fps=10, max_height_px=128) is None
    assert list(tmp_path.iterdir()) == []


# --- render_thumbnails ---------------------------------------------------------------------------


def _segment(index: int, start_s: float, end_s: float, track_ids: list[int]) -> Segment:
    return Segment(
        index=index, start_s=start_s, end_s=end_s, track_ids=track_ids, peak_energy=1.0, mean_energy=0.5,
        top_parts=["left_arm"], score=0.5,
    )  # fmt: skip


def _legs_centre_x(image_bgr: np.ndarray, colour_bgr: tuple[int, int, int]) -> float:
    """Mean x of the track-coloured pixels below the hips (the legs and the box sides: symmetric
    about the hips' x, and clear of the label above the box and the caption)."""
    hip_row = round(0.6 * image_bgr.shape[0]) + 2
    mask = _colour_mask(image_bgr, colour_bgr)[hip_row:]
    assert mask.sum() > 20, "no skeleton below the hips"
    return float(np.nonzero(mask)[1].mean())


def test_thumbnails_show_the_peak_of_each_segment(black_video, tmp_path):
    # Given a person walking right over 3 s, two segments, and an energy series peaking at 1.2 s
    info = probe(black_video)
    frames = _moving_frames(range(30))
    t = [i / ANALYSIS_FPS for i in range(30)]
    energy = [
        EnergySeries(
            track_id=0, t_s=t, energy=[(2.0 if i == 12 else 0.5) if 5 <= i <= 15 else None for i in range(30)]
        )
    ]
    segments = [_segment(0, 0.5, 1.5, [0]), _segment(1, 2.0, 2.8, [0])]
    out_dir = tmp_path / "thumbs"
    out_dir.mkdir()
    (out_dir / "segment_007.jpg").write_bytes(b"stale")
    (out_dir / "notes.txt").write_text("keep me")

    paths = render_thumbnails(
        black_video, segments, out_dir, info=info, frames=frames, max_width_px=160, energy=energy
    )

    # Then there is one 160x120 JPEG per segment, named by segment index; stale ones are gone
    assert paths == [out_dir / "segment_000.jpg", out_dir / "segment_001.jpg"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["notes.txt", "segment_000.jpg", "segment_001.jpg"]
    assert cv2.imread(str(paths[0])).shape == (120, 160, 3)
    # And segment 0 shows the frame at its energy peak (1.2 s), segment 1 (no energy inside) its middle
    colour = track_color_bgr(0)
    assert _legs_centre_x(cv2.imread(str(paths[0])), colour) == pytest.approx((0.2 + 0.02 * 12) * 160, abs=2)
    assert _legs_centre_x(cv2.imread(str(paths[1])), colour) == pytest.approx((0.2 + 0.02 * 24) * 160, abs=2)


def test_thumbnails_without_energy_use_the_middle(black_video, tmp_path):
    info = probe(black_video)
    paths = render_thumbnails(
        black_video, [_segment(3, 0.2, 1.0, [0])], tmp_path, info=info, frames=_moving_frames(range(30)),
        max_width_px=160,
    )  # fmt: skip
    assert paths == [tmp_path / "segment_003.jpg"]
    assert _legs_centre_x(cv2.imread(str(paths[0])), track_color_bgr(0)) == pytest.approx(
        (0.2 + 0.02 * 6) * 160, abs=2
    )


def test_no_segments_no_thumbnails(black_video, tmp_path):
    assert render_thumbnails(black_video, [], tmp_path, info=probe(black_video), frames=[]) == []
