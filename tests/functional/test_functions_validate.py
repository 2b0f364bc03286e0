"""validate handler on moto S3 with real ffprobe: every kind of bad upload gets its own code,
as an error named exactly InputError (what the workflow catches); a real clip passes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from posereel_functions import validate
from tests.builders import (
    LambdaContext,
    audio_only,
    boundary_error,
    pattern_video,
    stage_event,
    truncated,
    upload_key,
)
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(monkeypatch) as stack:
        yield stack


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, clip: Callable[[str], Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("validate-media")
    text = root / "notes.mp4"
    text.write_text("Shopping list\n- eggs\n- a real video\n" * 20)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "empty": empty,
        "text": text,
        "truncated": truncated(clip("mmaction2_basketball"), root / "cut.mp4", 0.3),
        "audio": audio_only(root / "tone.m4a"),
        "pattern": pattern_video(root / "pattern.mp4", 3.0),
        "clip": clip("mmaction2_basketball"),
    }


@pytest.mark.parametrize(
    ("name", "settings", "code"),
    [
        ("empty", {}, "EMPTY_FILE"),
        ("text", {}, "NOT_A_VIDEO"),
        ("truncated", {}, "UNREADABLE"),
        ("audio", {}, "NO_VIDEO_STREAM"),
        ("pattern", {"max_duration_s": 2}, "TOO_LONG"),
        ("pattern", {"max_upload_bytes": 1000}, "TOO_LARGE"),
        ("pattern", {"max_width_px": 100}, "RESOLUTION_TOO_HIGH"),
    ],
)
def test_bad_uploads_are_rejected_with_their_code(
    aws: PipelineAws, media: dict[str, Path], name: str, settings: dict[str, int], code: str
) -> None:
    # Given
    aws.configure(**settings)
    key = upload_key(name=media[name].name)
    aws.put_upload(media[name], key)
    # When
    with pytest.raises(Exception) as caught:
        validate.handler(stage_event(key=key), LambdaContext())
    # Then
    kind, payload = boundary_error(caught)
    assert (kind, payload["code"]) == ("InputError", code)
    assert payload["message"]


def test_a_missing_upload_is_rejected_as_not_found(aws: PipelineAws) -> None:
    with pytest.raises(Exception) as caught:
        validate.handler(stage_event(), LambdaContext())
    assert boundary_error(caught)[1]["code"] == "NOT_FOUND"


def test_a_real_clip_passes_with_its_summary(aws: PipelineAws, media: dict[str, Path]) -> None:
    # Given
    size = aws.put_upload(media["clip"], upload_key())
    # When
    result = validate.handler(stage_event(), LambdaContext())
    # Then
    video = result["video"]
    assert (video["width"], video["height"], video["codec"], video["size_bytes"]) == (426, 240, "h264", size)
    assert video["duration_s"] == pytest.approx(10.0, abs=0.1)
    assert video["fps"] == pytest.approx(29.97, abs=0.01)
