"""`posereel analyze` as a user runs it: clear errors for bad input, a clear result for no movement."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from posereel_local.cli import main


@pytest.fixture
def model_env(monkeypatch, models_dir):
    monkeypatch.setenv("POSEREEL_MODEL_DIR", str(models_dir))


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: d / "missing.mp4", "NOT_FOUND"),
        (lambda d: _write(d / "empty.mp4", b""), "NOT_A_VIDEO"),
        (lambda d: _write(d / "notes.mp4", b"these are my notes, not a video\n" * 20), "NOT_A_VIDEO"),
    ],
    ids=["missing", "zero-bytes", "text-renamed-mp4"],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, model_env, make, code):
    path = make(tmp_path)
    rc = main(["analyze", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"[{code}]" in err and str(path.name) in err
    assert not (tmp_path / "out" / "result.json").exists()


def test_still_image_is_not_a_video(tmp_path, capsys, model_env, media_dir):
    rc = main(["analyze", str(media_dir / "astronaut.png"), "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2
    assert "[NOT_A_VIDEO]" in capsys.readouterr().err


def test_video_without_people_gives_no_segments_not_a_crash(tmp_path, capsys, model_env):
    # Given a 3 s test pattern with no person in it
    video = tmp_path / "pattern.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    # When it is analysed
    rc = main(["analyze", str(video), "--out", str(tmp_path / "out"), "--quiet"])
    # Then it succeeds, says so, and writes a result with no segments and no reel
    assert rc == 0
    assert "No segments" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["segments"] == [] and result["reel_windows"] == []
    assert not (tmp_path / "out" / "reel.mp4").exists()
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
