"""video.probe and video.sample_frames on real footage and on small files made here with ffmpeg."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from posereel.errors import NotAVideoError, ToolError, UnreadableVideoError
from posereel.video import SampledFrame, frame_size, grid_indices, probe, sample_frames

# --- helpers --------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _encode_numbered(path: Path, *, count: int, rate: str, width: int = 320, height: int = 240) -> None:
    """A lossless video whose frame k shows k in binary as 8 black/white vertical bands."""
    size = f"{width}x{height}"
    raw_input = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", size, "-framerate", rate, "-i", "-"]
    lossless = ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-g", "48"]
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", *raw_input, *lossless, str(path)], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    band = width // 8
    for k in range(count):
        img = np.zeros((height, width), np.uint8)
        for bit in range(8):
            if (k >> bit) & 1:
                img[:, bit * band : (bit + 1) * band] = 255
        proc.stdin.write(img.tobytes())
    proc.stdin.close()
    assert proc.wait() == 0


def _frame_number(rgb: np.ndarray) -> int:
    gray = rgb.mean(axis=2)
    band = rgb.shape[1] // 8
    return sum(1 << bit for bit in range(8) if gray[:, bit * band + 2 : (bit + 1) * band - 2].mean() > 128)


def _ffmpeg_children() -> list[int]:
    """Live (not zombie) ffmpeg processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if comm == "ffmpeg" and int(ppid) == os.getpid() and state != "Z":
            found.append(int(entry.name))
    return found


_AT_10_FPS_240P = {"target_fps": 10, "max_height_px": 240}


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 frames at 23.976 fps (10.01 s), frame k showing k."""
    path = tmp_path_factory.mktemp("numbered") / "numbered_23976.mp4"
    _encode_numbered(path, count=240, rate="24000/1001")
    return path


@pytest.fixture(scope="module")
def taiji(clip) -> Path:
    return clip("hybrik_taiji")


# --- probe ----------------------------------------------------------------------------------

MANIFEST = [
    # name, width, height, fps, duration (MANIFEST.md)
    ("hybrik_taiji", 1280, 720, 23.976, 17.2),
    ("sports2d_walk_in_out", 1280, 720, 30, 13.4),
    ("sports2d_fitness_lateral_raise", 1280, 720, 29.97, 18.0),
    ("musepose_dance", 1080, 1920, 24, 12.0),
    ("mmaction2_basketball", 426, 240, 29.97, 10.0),
    ("pets2009_vtest_crowd_walking", 480, 360, 10, 30.2),
    ("sports2d_park_walk", 1768, 994, 30, 7.7),
]


@pytest.mark.media
@pytest.mark.parametrize(("name", "width", "height", "fps", "duration_s"), MANIFEST)
def test_probe_real_clips_match_manifest(clip, name, width, height, fps, duration_s):
    # Given a shared clip, When probed, Then the numbers match the manifest.
    path = clip(name)
    info = probe(path)
    assert (info.width, info.height) == (width, height)
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration_s == pytest.approx(duration_s, abs=0.06)
    assert info.name == path.name
    assert info.codec == "h264"
    assert info.has_audio is False
    assert info.rotation_deg == 0
    assert info.size_bytes == path.stat().st_size
    assert info.format_name is not None and "mp4" in info.format_name
    assert info.frame_count == pytest.approx(info.duration_s * info.fps, abs=2)


def test_probe_text_file_named_mp4_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(NotAVideoError) as err:
        probe(path)
    assert err.value.code == "NOT_A_VIDEO"


@pytest.mark.media
@pytest.mark.parametrize("keep", [0.3, 0.9], ids=["first-30pct", "first-90pct"])
def test_probe_truncated_clip_is_unreadable(taiji, tmp_path, keep):
    # Given the first part of a real MP4 (its index is at the front, so ffprobe alone is happy)
    data = taiji.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    # Then probe rejects it as damaged, not as "not a video"
    with pytest.raises(UnreadableVideoError, match="truncated") as err:
        probe(path)
    assert err.value.code == "UNREADABLE"


@pytest.mark.media
def test_probe_mp4_cut_inside_its_header_is_unreadable(taiji, tmp_path):
    path = tmp_path / "header_only.mp4"
    path.write_bytes(taiji.read_bytes()[:3000])
    with pytest.raises(UnreadableVideoError, match="damaged"):
        probe(path)


@pytest.mark.media
def test_probe_still_image_is_not_a_video(media_dir):
    with pytest.raises(NotAVideoError, match="still image"):
        probe(media_dir / "astronaut.png")


def test_probe_audio_only_is_not_a_video(tmp_path):
    path = tmp_path / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", str(path))
    with pytest.raises(NotAVideoError, match="audio only"):
        probe(path)


@pytest.mark.media
def test_probe_audio_with_cover_art_is_not_a_video(media_dir, tmp_path):
    # An MP3 with an embedded picture has a "video" stream that is only cover art.
    path = tmp_path / "song.mp3"
    _ffmpeg(
        "-f", "lavfi", "-i", "sine=duration=2", "-i", str(media_dir / "astronaut.png"),
        "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic",
        str(path),
    )  # fmt: skip
    with pytest.raises(NotAVideoError, match="audio only"):
        probe(path)


@pytest.mark.media
def test_probe_uses_the_video_streams_duration_in_matroska(clip, tmp_path):
    # Given a Matroska file with 2 s of video and 4 s of audio
    path = tmp_path / "with_audio.mkv"
    _ffmpeg(
        "-t", "2", "-i", str(clip("mmaction2_basketball")), "-f", "lavfi", "-i", "sine=duration=4",
        "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path),
    )  # fmt: skip
    # When probed, Then the duration is the video's (from the stream's DURATION tag)
    info = probe(path)
    assert info.has_audio is True
    assert info.format_name == "matroska,webm"
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.frame_count is None  # Matroska does not say


@pytest.mark.media
def test_probe_and_sample_apply_rotation(clip, tmp_path):
    # Given a landscape clip tagged to be shown rotated by 90 degrees
    path = tmp_path / "rotated.mp4"
    source = clip("mmaction2_basketball")
    _ffmpeg("-i", str(source), "-t", "2", "-c", "copy", "-metadata:s:v", "rotate=90", str(path))
    # When probed and sampled, Then sizes are as displayed (portrait) and frames are portrait
    info = probe(path)
    assert (info.width, info.height, info.rotation_deg) == (240, 426, 90)
    frames = list(sample_frames(path, info=info, start_s=0, end_s=1, target_fps=2, max_height_px=480))
    assert [f.rgb.shape for f in frames] == [(426, 240, 3)] * 2


def test_probe_without_ffprobe_is_a_tool_error(numbered):
    with pytest.raises(ToolError, match="not found"):
        probe(numbered, ffprobe="/nonexistent/ffprobe")


# --- grid and sizes -------------------------------------------------------------------------


@pytest.mark.media
@pytest.mark.parametrize(
    ("name", "max_height_px", "expected"),
    [
        ("hybrik_taiji", 480, (854, 480)),
        ("musepose_dance", 480, (270, 480)),
        ("mmaction2_basketball", 480, (426, 240)),  # never upscaled
        ("sports2d_park_walk", 360, (640, 360)),
    ],
)
def test_frame_size_keeps_aspect_and_is_even(clip, name, max_height_px, expected):
    assert frame_size(probe(clip(name)), max_height_px=max_height_px) == expected


# --- sample_frames --------------------------------------------------------------------------


def _expected_source_frames(
    indices: range, *, target_fps: float, src_fps: Fraction, frames: int
) -> list[set[int]]:
    """For each grid time t the source frame on screen at t: the last with timestamp <= t. A frame
    that starts within 1 ms after t is also accepted (timestamps are rounded to the time base)."""
    result = []
    for i in indices:
        t = Fraction(i) / Fraction(target_fps).limit_denominator(1001)
        exact = min(math.floor(t * src_fps), frames - 1)
        late = min(math.floor((t + Fraction(1, 1000)) * src_fps), frames - 1)
        result.append({exact, late})
    return result


@pytest.mark.parametrize(
    ("target_fps", "start_s", "end_s"),
    [
        (10, 0.0, 5.0),
        (10, 1.3, 6.3),
        (10, 9.0, 99.0),  # up to the end of the video
        (7.5, 2.0, 99.0),
        (3, 0.0, 99.0),
        (24, 4.0, 6.0),  # close to the source rate
        (30, 0.1, 1.0),  # faster than the source: frames repeat
    ],
)
def test_sample_frames_are_on_the_global_grid(numbered, target_fps, start_s, end_s):
    # Given a video whose frames show their own number
    info = probe(numbered)
    start_s = round(start_s * target_fps) / target_fps
    # When sampled
    frames = list(
        sample_frames(
            numbered, info=info, start_s=start_s, end_s=end_s, target_fps=target_fps, max_height_px=120
        )
    )
    # Then exactly the grid indices come out, each with the source frame on screen at its time
    indices = grid_indices(start_s, end_s, target_fps=target_fps, duration_s=info.duration_s)
    assert [f.index for f in frames] == list(indices)
    assert [f.t_s for f in frames] == pytest.approx([i / target_fps for i in indices])
    expected = _expected_source_frames(
        indices, target_fps=target_fps, src_fps=Fraction(24000, 1001), frames=240
    )
    got = [_frame_number(f.rgb) for f in frames]
    wrong = [(i, g, e) for i, g, e in zip(indices, got, expected, strict=True) if g not in e]
    assert not wrong, f"(grid index, got frame, expected) {wrong[:5]}"


@pytest.mark.media
def test_five_seconds_at_10_fps_is_50_frames(taiji):
    info = probe(taiji)
    frames = list(sample_frames(taiji, info=info, start_s=2.0, end_s=7.0, target_fps=10, max_height_px=480))
    assert len(frames) == 50
    assert frames[0].index == 20 and frames[-1].index == 69
    assert all(isinstance(f, SampledFrame) for f in frames)
    assert frames[0].rgb.shape == (480, 854, 3) and frames[0].rgb.dtype == np.uint8
    assert frames[0].t_s == pytest.approx(2.0)


@pytest.mark.media
def test_range_to_the_end_of_the_video_gives_floor(taiji):
    info = probe(taiji)  # 17.183833 s
    frames = list(sample_frames(taiji, info=info, start_s=15.0, end_s=1e9, target_fps=10, max_height_px=240))
    assert [f.index for f in frames] == list(range(150, 172))  # 17.1 s is the last grid time


@pytest.mark.media
def test_overlapping_ranges_give_identical_frames(taiji):
    # Chunks overlap; the frames they share must be the same pixels for stitching to work.
    info = probe(taiji)
    a = {f.index: f.rgb for f in sample_frames(taiji, info=info, start_s=0, end_s=6, **_AT_10_FPS_240P)}
    b = {f.index: f.rgb for f in sample_frames(taiji, info=info, start_s=4, end_s=9, **_AT_10_FPS_240P)}
    shared = sorted(a.keys() & b.keys())
    assert shared == list(range(40, 60))
    assert all(np.array_equal(a[i], b[i]) for i in shared)


def test_frames_are_rgb_not_bgr(tmp_path):
    path = tmp_path / "red.mp4"
    red = "color=c=red:s=64x48:r=10:d=1"
    _ffmpeg("-f", "lavfi", "-i", red, "-pix_fmt", "yuv444p", "-c:v", "libx264", str(path))
    info = probe(path)
    frame = next(iter(sample_frames(path, info=info, start_s=0, end_s=1, target_fps=5, max_height_px=480)))
    r, g, b = frame.rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 40 and b < 40


def test_closing_early_stops_ffmpeg_and_the_reader(numbered):
    info = probe(numbered)
    stream = sample_frames(numbered, info=info, start_s=0, end_s=10, target_fps=24, max_height_px=240)
    taken = [next(stream) for _ in range(3)]
    assert [f.index for f in taken] == [0, 1, 2]
    assert _ffmpeg_children(), "ffmpeg should be running while frames are pending"
    stream.close()
    assert _ffmpeg_children() == []
    assert not [t for t in threading.enumerate() if t.name == "posereel-frame-reader"]


def test_empty_range_starts_nothing(numbered):
    info = probe(numbered)
    assert list(sample_frames(numbered, info=info, start_s=20, end_s=30, **_AT_10_FPS_240P)) == []


def test_missing_ffmpeg_is_a_tool_error(numbered):
    info = probe(numbered)
    with pytest.raises(ToolError, match="ffmpeg not found"):
        next(sample_frames(numbered, info=info, start_s=0, end_s=1, **_AT_10_FPS_240P, ffmpeg="/no/ffmpeg"))


@pytest.mark.media
def test_decoding_a_truncated_file_raises(taiji, tmp_path):
    # Given the probe of the whole clip but only the first 30 % of its bytes
    info = probe(taiji)
    path = tmp_path / "cut.mp4"
    shutil.copyfile(taiji, path)
    with path.open("r+b") as f:
        f.truncate(int(taiji.stat().st_size * 0.3))
    # When frames beyond the cut are asked for, Then the error says so
    with pytest.raises(UnreadableVideoError, match="no frame"):
        list(sample_frames(path, info=info, start_s=10, end_s=12, target_fps=10, max_height_px=240))
