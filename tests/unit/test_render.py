"""Pictures: skeletons land where the poses are, in their track's colour, only for visible
landmarks; the overlay has one frame per analysed frame; thumbnails show the segment's peak;
the timeline is a PNG that shows every track (or that nobody was found)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from posereel.errors import ToolError
from posereel.render import (
    POSE_CONNECTIONS,
    VideoWriter,
    draw_persons,
    render_overlay,
    render_thumbnails,
    render_timeline,
    track_color_bgr,
    track_color_rgb,
)
from posereel.schemas import EnergySeries, FramePoses, PersonPose, Segment
from posereel.video import probe

ANALYSIS_FPS = 10.0

# A standing stick figure: (dx, dy) of each BlazePose landmark from the hip centre, in body heights.
_FIGURE = {
    0: (0.0, -0.62), 1: (-0.02, -0.64), 2: (-0.03, -0.64), 3: (-0.04, -0.64), 4: (0.02, -0.64),
    5: (0.03, -0.64), 6: (0.04, -0.64), 7: (-0.06, -0.62), 8: (0.06, -0.62), 9: (-0.02, -0.58),
    10: (0.02, -0.58), 11: (-0.12, -0.45), 12: (0.12, -0.45), 13: (-0.2, -0.25), 14: (0.2, -0.25),
    15: (-0.24, -0.05), 16: (0.24, -0.05), 17: (-0.25, -0.02), 18: (0.25, -0.02), 19: (-0.24, -0.01),
    20: (0.24, -0.01), 21: (-0.22, -0.03), 22: (0.22, -0.03), 23: (-0.08, 0.0), 24: (0.08, 0.0),
    25: (-0.09, 0.2), 26: (0.09, 0.2), 27: (-0.1, 0.34), 28: (0.1, 0.34), 29: (-0.11, 0.36),
    30: (0.11, 0.36), 31: (-0.06, 0.37), 32: (0.06, 0.37),
}  # fmt: skip


def person(
    track_id: int | None,
    *,
    cx: float,
    cy: float = 0.6,
    height: float = 0.6,
    aspect: float = 4 / 3,
    moved: dict[int, tuple[float, float, float]] | None = None,
) -> PersonPose:
    """A stick figure with its hips at (cx, cy), normalised; ``moved`` overrides landmarks as
    (x, y, visibility)."""
    landmarks = []
    for i in range(33):
        dx, dy = _FIGURE[i]
        x, y, vis = cx + dx * height / aspect, cy + dy * height, 0.99
        if moved and i in moved:
            x, y, vis = moved[i]
        landmarks.append((x, y, 0.0, vis))
    xs = [lm[0] for lm in landmarks if lm[3] >= 0.5]
    ys = [lm[1] for lm in landmarks if lm[3] >= 0.5]
    return PersonPose(
        track_id=track_id, score=0.9, box=(min(xs), min(ys), max(xs), max(ys)), landmarks=landmarks
    )


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


def test_overlay_has_one_frame_per_analysed_frame(black_video, tmp_path):
    # Given poses for grid frames 5..24 at 10 fps, with nobody found at 10..12
    info = probe(black_video)
    frames = [f for f in _moving_frames(range(5, 25)) if f.index not in (10, 11, 12)]

    # When the overlay is rendered at most 128 px high
    out = render_overlay(
        black_video, frames, tmp_path / "overlay.mp4", info=info, fps=ANALYSIS_FPS, max_height_px=128,
        primary_track_id=0,
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
