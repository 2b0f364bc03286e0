"""validate: containers are told by their bytes, limits by the probe; cheap checks come first."""

from __future__ import annotations

import pytest

from posereel.errors import (
    EmptyFileError,
    InputError,
    NotAVideoError,
    ResolutionTooHighError,
    TooLargeError,
    TooLongError,
    VideoNotFoundError,
)
from posereel.pipeline.events import SourceRef, ValidateEvent
from posereel.pipeline.files import source_key
from posereel.pipeline.validate import check_limits, validate_upload
from posereel.schemas import VideoInfo
from posereel.video import sniff_container
from tests.builders import RESULTS, pipeline_settings
from tests.fakes import FakeMediaStore

JOB = "0123456789abcdef0123456789abcdef"
KEY = source_key(JOB, "clip.mp4")  # the copy scan accepted


def ts_packets(step: int, offset: int, count: int) -> bytes:
    packet = bytearray(step)
    packet[offset] = 0x47
    return bytes(packet) * count


@pytest.mark.parametrize(
    ("head", "family"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "iso-bmff"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "iso-bmff"),
        (b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x00\x00", "iso-bmff"),
        (b"\x00\x00\x01\x00moov" + bytes(8), "quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "matroska"),
        (b"RIFF\x00\x10\x00\x00AVI LIST", "avi"),
        (ts_packets(188, 0, 5), "mpeg-ts"),
        (ts_packets(192, 4, 5), "mpeg-ts"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "flv"),
        (b"OggS\x00\x02" + bytes(20), "ogg"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", "mpeg-ps"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9", "asf"),
        (b"hello, I am a text file renamed to .mp4\n" * 30, None),
        (b"G" + b"ordinary text that starts with a G " * 40, None),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), None),
        (b"ID3\x04\x00" + bytes(64), None),
        (b"\x00\x00\x00\x04free", None),  # a box size below 8 is no box
        (b"", None),
    ],
)
def test_containers_are_told_by_their_first_bytes(head: bytes, family: str | None) -> None:
    assert sniff_container(head) == family


def info(**overrides: object) -> VideoInfo:
    values: dict[str, object] = {
        "name": "clip.mp4",
        "duration_s": 10.0,
        "fps": 30.0,
        "width": 1280,
        "height": 720,
        "codec": "h264",
        "has_audio": False,
        "size_bytes": 1000,
    }
    return VideoInfo.model_validate(values | overrides)


@pytest.mark.parametrize(
    ("video", "limits", "error"),
    [
        (info(), {}, None),
        (info(duration_s=61.0), {"max_duration_s": 60}, TooLongError),
        (info(size_bytes=2001), {"max_upload_bytes": 2000}, TooLargeError),
        (
            info(width=4000, height=3000),
            {"max_width_px": 3840, "max_height_px": 3840},
            ResolutionTooHighError,
        ),
        (
            info(width=1080, height=1920),
            {"max_width_px": 1920, "max_height_px": 1080},
            ResolutionTooHighError,
        ),
        (info(width=3840, height=2160), {"max_width_px": 3840, "max_height_px": 2160}, None),
    ],
)
def test_limits(video: VideoInfo, limits: dict[str, object], error: type[InputError] | None) -> None:
    settings = pipeline_settings(**limits)
    if error is None:
        check_limits(video, settings)
    else:
        with pytest.raises(error) as raised:
            check_limits(video, settings)
        assert raised.value.code == error.code


EVENT = ValidateEvent(job_id=JOB, source=SourceRef(bucket=RESULTS, key=KEY))
MP4_HEAD = b"\x00\x00\x00\x20ftypisom" + bytes(200)


@pytest.mark.parametrize(
    ("stored", "limits", "error", "code"),
    [
        (None, {}, VideoNotFoundError, "NOT_FOUND"),
        (b"", {}, EmptyFileError, "EMPTY_FILE"),
        (b"just some text\n" * 20, {}, NotAVideoError, "NOT_A_VIDEO"),
        (MP4_HEAD, {"max_upload_bytes": 100}, TooLargeError, "TOO_LARGE"),
    ],
    ids=["missing", "empty", "text", "too-large"],
)
def test_cheap_rejections_happen_before_any_download_and_delete_the_file(
    stored: bytes | None, limits: dict[str, int], error: type[InputError], code: str
) -> None:
    # Given
    media = FakeMediaStore()
    if stored is not None:
        media.put(RESULTS, KEY, stored)
    # When
    with pytest.raises(error) as raised:
        validate_upload(EVENT, settings=pipeline_settings(**limits), media=media)
    # Then
    assert raised.value.code == code
    assert media.downloads == []
    assert media.keys(RESULTS) == []
    assert raised.value.message.endswith("the file was deleted") == (stored is not None)
    assert "s3://" not in raised.value.message and RESULTS not in raised.value.message
