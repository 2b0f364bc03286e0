"""The reel: cuts are frame-accurate, the reel lasts the sum of its windows, plays cleanly, keeps
audio only when the source has it, and is a web-ready MP4 (H.264 yuv420p, moov before mdat)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posereel.errors import ToolError
from posereel.reel import compile_reel, export_clips
from posereel.schemas import ReelWindow
from posereel.settings import ReelSettings
from posereel.video import join_parts, probe

FPS = 25
SETTINGS = ReelSettings(preset="ultrafast", crf=23)
# Frame n of the ``numbered`` video is flat grey with luma 16 + 2n (drawn in yuv420p: no range conversion).
NUMBERED_LUMA = "geq=lum='16+2*N':cb=128:cr=128"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _windows(*spans: tuple[float, float]) -> list[ReelWindow]:
    return [ReelWindow(start_s=a, end_s=b, segment_indices=[i]) for i, (a, b) in enumerate(spans)]


def _streams(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def _decode_errors(path: Path) -> str:
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return proc.stderr.strip()


def _top_level_boxes(path: Path) -> list[str]:
    """Names of the MP4's top-level boxes, in file order."""
    names, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        name = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        names.append(name)
        pos += size
    return names


def _frame_numbers(path: Path) -> list[int]:
    """Source frame numbers shown by a reel cut from the ``numbered`` video (grey level 16 + 2n)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    luma = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 64 * 64 * 3 // 2)[:, : 64 * 64]  # the Y plane
    return [round((float(y.mean()) - 16) / 2) for y in luma]


@pytest.fixture(scope="module")
def testsrc_av(tmp_path_factory) -> Path:
    """10 s of testsrc2, 640x360 at 25 fps, with a 440 Hz tone."""
    path = tmp_path_factory.mktemp("reel") / "testsrc_av.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}:duration=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def testsrc_silent(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reel") / "testsrc_silent.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}:duration=10",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def numbered(tmp_path_factory) -> Path:
    """4 s, 25 fps, 64x64: frame n is flat grey 16 + 2n (so a decoded frame tells its number), with audio.
    Keyframes only every 40 frames, so cuts have to decode from an earlier keyframe."""
    path = tmp_path_factory.mktemp("reel") / "numbered.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"color=c=black:s=64x64:r={FPS}:d=4,format=yuv420p,{NUMBERED_LUMA}",
        "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=4",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "40", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


WINDOW_SETS = [
    pytest.param([(2.0, 4.0)], id="one window on frame edges"),
    pytest.param([(0.0, 0.52), (1.23, 2.0), (3.3, 6.71), (8.0, 10.0)], id="four windows off the frame grid"),
    pytest.param([(7.5, 9.0), (1.0, 2.5)], id="out of time order"),
    pytest.param([(0.0, 10.0)], id="the whole video"),
]


@pytest.mark.parametrize("spans", WINDOW_SETS)
@pytest.mark.parametrize("with_audio", [True, False], ids=["audio", "silent"])
def test_reel_lasts_the_sum_of_its_windows(testsrc_av, testsrc_silent, tmp_path, spans, with_audio):
    # Given a 10 s source with or without audio and some windows
    source = testsrc_av if with_audio else testsrc_silent
    info = probe(source)
    windows = _windows(*spans)

    # When the reel is compiled
    out = compile_reel(source, windows, tmp_path / "reel.mp4", info=info, settings=SETTINGS)

    # Then it lasts the sum of the windows within one frame per cut, and says so
    assert out is not None
    expected_s = sum(w.duration_s for w in windows)
    tolerance_s = len(windows) / FPS
    meta = _streams(out.path)
    assert float(meta["format"]["duration"]) == pytest.approx(expected_s, abs=tolerance_s)
    assert out.duration_s == pytest.approx(expected_s, abs=tolerance_s)
    video = [s for s in meta["streams"] if s["codec_type"] == "video"]
    audio = [s for s in meta["streams"] if s["codec_type"] == "audio"]
    assert int(video[0]["nb_frames"]) == round(out.duration_s * FPS)
    # And it is H.264 yuv420p, with AAC audio exactly when the source has audio
    assert (video[0]["codec_name"], video[0]["pix_fmt"]) == ("h264", "yuv420p")
    assert [s["codec_name"] for s in audio] == (["aac"] if with_audio else [])
    if with_audio:
        # audio as long as the picture: no drift accumulates over the cuts
        assert float(audio[0]["duration"]) == pytest.approx(float(video[0]["duration"]), abs=1 / FPS)
    # And it plays cleanly and starts playing before it has fully downloaded
    assert _decode_errors(out.path) == ""
    boxes = _top_level_boxes(out.path)
    assert boxes.index("moov") < boxes.index("mdat")


@pytest.mark.parametrize(
    ("per_pass", "processes"),
    [(16, 1), (2, 1), (16, 3)],
    ids=["one pass", "passes of two windows", "three passes side by side, windows split between them"],
)
def test_cuts_are_frame_accurate(numbered, tmp_path, per_pass, processes):
    # Given a video whose frames carry their own number, and windows off the frame grid
    info = probe(numbered)
    windows = _windows((0.3, 0.61), (1.01, 1.5), (2.02, 2.1), (1.6, 1.8), (3.5, 4.0))

    # When the reel (1.6 s) is compiled in one pass, in several, or in three of about 0.5 s at once
    out = compile_reel(
        numbered, windows, tmp_path / "reel.mp4", info=info, settings=SETTINGS, max_windows_per_pass=per_pass,
        processes=processes, min_pass_s=0.5,
    )  # fmt: skip

    # Then each window contributes exactly the source frames round(start*fps) .. round(end*fps) - 1
    assert out is not None
    expected = [n for w in windows for n in range(round(w.start_s * FPS), round(w.end_s * FPS))]
    assert _frame_numbers(out.path) == expected
    assert out.duration_s == pytest.approx(len(expected) / FPS)
    assert [(w.start_s, w.end_s) for w in out.windows] == [
        (round(w.start_s * FPS) / FPS, round(w.end_s * FPS) / FPS) for w in windows
    ]
    # And the audio keeps pace with the picture across every cut
    meta = _streams(out.path)
    durations = {s["codec_type"]: float(s["duration"]) for s in meta["streams"]}
    assert durations["audio"] == pytest.approx(durations["video"], abs=1 / FPS)
    assert _decode_errors(out.path) == ""


@pytest.mark.parametrize("per_pass", [16, 1], ids=["one pass", "a pass per window"])
def test_audio_that_stops_early_is_filled_with_silence(tmp_path, per_pass):
    # Given a 4 s video whose sound stops at 2 s, and windows before, across and after that point
    source = tmp_path / "short_audio.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=64x64:rate={FPS}:duration=4",
        "-f", "lavfi", "-i", "sine=duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(source),
    )  # fmt: skip
    windows = _windows((0.5, 1.5), (1.8, 2.6), (3.0, 3.8))

    out = compile_reel(
        source,
        windows,
        tmp_path / "reel.mp4",
        info=probe(source),
        settings=SETTINGS,
        max_windows_per_pass=per_pass,
    )

    # Then the sound track lasts as long as the picture (silence where the source had none)
    assert out is not None
    durations = {s["codec_type"]: float(s["duration"]) for s in _streams(out.path)["streams"]}
    assert durations["video"] == pytest.approx(out.duration_s, abs=0.5 / FPS)
    assert out.duration_s == pytest.approx(2.6, abs=len(windows) / FPS)
    assert durations["audio"] == pytest.approx(durations["video"], abs=1 / FPS)
    assert _decode_errors(out.path) == ""


def test_clips_are_the_reels_cuts_frame_for_frame(numbered, tmp_path):
    # Given a reel of three windows, out of time order, cut from a video whose frames carry their number
    info = probe(numbered)
    windows = _windows((0.3, 0.61), (2.02, 2.5), (1.0, 1.6))
    reel = compile_reel(numbered, windows, tmp_path / "reel.mp4", info=info, settings=SETTINGS)
    assert reel is not None

    # When its clips are exported
    zipped = export_clips(reel, tmp_path / "clips.zip", info=info, settings=SETTINGS)

    # Then the zip holds one MP4 per window, in reel order, named after where each is in the source
    with zipfile.ZipFile(zipped) as archive:
        names = archive.namelist()
        assert names == [
            "clip-01_0m00.3s-0m00.6s.mp4",
            "clip-02_0m02.0s-0m02.5s.mp4",
            "clip-03_0m01.0s-0m01.6s.mp4",
        ]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        archive.extractall(tmp_path / "clips")
    # And each holds exactly its window's source frames, with its sound, and plays cleanly
    for name, window in zip(names, reel.windows, strict=True):
        clip = tmp_path / "clips" / name
        assert _frame_numbers(clip) == list(range(round(window.start_s * FPS), round(window.end_s * FPS)))
        durations = {s["codec_type"]: float(s["duration"]) for s in _streams(clip)["streams"]}
        assert durations["audio"] == pytest.approx(durations["video"], abs=1.5 / FPS)
        assert _decode_errors(clip) == ""
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_windows_means_no_reel(testsrc_av, tmp_path):
    out = compile_reel(testsrc_av, [], tmp_path / "reel.mp4", info=probe(testsrc_av), settings=SETTINGS)
    assert out is None
    assert list(tmp_path.iterdir()) == []


def test_windows_past_the_end_are_clipped_or_dropped(testsrc_av, tmp_path):
    # Given one window running past the end and one wholly after it
    info = probe(testsrc_av)
    windows = _windows((9.0, 12.0), (11.0, 13.0))

    out = compile_reel(testsrc_av, windows, tmp_path / "reel.mp4", info=info, settings=SETTINGS)

    # Then the reel holds the last second only
    assert out is not None
    assert [(w.start_s, w.end_s) for w in out.windows] == [(9.0, 10.0)]
    assert float(_streams(out.path)["format"]["duration"]) == pytest.approx(1.0, abs=1 / FPS)

    # And windows that hold no frame at all give no reel
    assert (
        compile_reel(testsrc_av, _windows((11.0, 13.0)), tmp_path / "none.mp4", info=info, settings=SETTINGS)
        is None
    )


def test_backwards_window_is_rejected(testsrc_av, tmp_path):
    with pytest.raises(ValueError, match="ends before it starts"):
        compile_reel(
            testsrc_av, _windows((5.0, 4.0)), tmp_path / "reel.mp4", info=probe(testsrc_av), settings=SETTINGS
        )


def test_ffmpeg_failure_is_a_tool_error_and_leaves_no_file(testsrc_av, tmp_path):
    bad = ReelSettings.model_construct(preset="no-such-preset")  # skips validation: ffmpeg must fail
    with pytest.raises(ToolError, match="ffmpeg failed"):
        compile_reel(
            testsrc_av, _windows((1.0, 2.0)), tmp_path / "reel.mp4", info=probe(testsrc_av), settings=bad
        )
    assert list(tmp_path.iterdir()) == []


def test_missing_ffmpeg_is_a_tool_error(testsrc_av, tmp_path):
    with pytest.raises(ToolError, match="not found"):
        compile_reel(
            testsrc_av, _windows((1.0, 2.0)), tmp_path / "reel.mp4", info=probe(testsrc_av),
            settings=SETTINGS, ffmpeg="/nonexistent/ffmpeg",
        )  # fmt: skip


@pytest.mark.media
def test_reel_from_real_footage_without_audio(clip, tmp_path):
    # Given the taiji clip (1280x720, 23.976 fps, no audio, keyframes 10 s apart)
    source = clip("hybrik_taiji")
    info = probe(source)
    assert not info.has_audio
    windows = _windows((0.5, 1.5), (4.1, 5.0), (12.0, 13.2), (16.5, 17.18))

    out = compile_reel(source, windows, tmp_path / "reel.mp4", info=info, settings=SETTINGS)

    # Then the reel lasts the sum of the windows, has no audio, plays cleanly, moov first
    assert out is not None
    meta = _streams(out.path)
    assert float(meta["format"]["duration"]) == pytest.approx(
        sum(w.duration_s for w in windows), abs=len(windows) / info.fps
    )
    assert [s["codec_type"] for s in meta["streams"]] == ["video"]
    assert (meta["streams"][0]["pix_fmt"], meta["streams"][0]["width"]) == ("yuv420p", 1280)
    assert _decode_errors(out.path) == ""
    boxes = _top_level_boxes(out.path)
    assert boxes.index("moov") < boxes.index("mdat")


def test_parts_are_joined_without_encoding_again_and_a_missing_one_is_named(tmp_path: Path) -> None:
    parts = [tmp_path / f"part{n}.mp4" for n in range(2)]
    for n, part in enumerate(parts):
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x96:rate=10:duration={n + 1}",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", str(part))  # fmt: skip
    joined = tmp_path / "joined.mp4"
    join_parts(parts, joined, what="the test's parts")
    assert probe(joined).frame_count == 30
    streams = _streams(joined)["streams"]
    assert [s["codec_type"] for s in streams] == ["video"] and streams[0]["codec_name"] == "h264"
    # A part that is gone, or that the demuxer cannot read, fails the join: ffmpeg alone would
    # end with the parts before it and exit status 0.
    parts[1].write_bytes(b"not an mp4")
    with pytest.raises(ToolError, match="ffmpeg could not join the test's parts"):
        join_parts(parts, tmp_path / "again.mp4", what="the test's parts")
    parts[1].unlink()
    with pytest.raises(ToolError, match=r"could not join the test's parts: part1\.mp4 missing"):
        join_parts(parts, tmp_path / "again.mp4", what="the test's parts")
