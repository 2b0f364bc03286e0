"""Validate an upload: is it a video we can and may analyse?

Runs after scan, on the copy scan accepted (the scanned bytes, out of the clients' reach): no
parser reads an unscanned file. Cheapest checks first, each rejection an InputError subclass
with its own code: EMPTY_FILE and TOO_LARGE (from the size alone; scan checks them first),
NOT_A_VIDEO (the first bytes, never the name: video.sniff_container), then ffprobe on the
file where it is (reading its index by range requests, never downloading it): NO_VIDEO_STREAM,
UNREADABLE, TOO_LONG, RESOLUTION_TOO_HIGH. A rejected file is
deleted at once and the message says so. Safe to run any number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

from posereel.errors import (
    EmptyFileError,
    InputError,
    NotAVideoError,
    NoVideoStreamError,
    ObjectNotFoundError,
    ResolutionTooHighError,
    TooLargeError,
    TooLongError,
    VideoNotFoundError,
)
from posereel.pipeline.events import SourceRef, ValidateEvent, ValidateResult, VideoSummary
from posereel.pipeline.ports import MediaStorePort
from posereel.schemas import VideoInfo
from posereel.settings import PipelineSettings
from posereel.video import SNIFF_BYTES, VideoSource, probe, sniff_container

log = logging.getLogger(__name__)

DELETED_NOTE = "the file was deleted"


@contextmanager
def discard_when_rejected(media: MediaStorePort, source: SourceRef) -> Iterator[None]:
    """A rejection (InputError) raised inside deletes ``source`` and says so in its message:
    a file that will never be analysed is not kept. A missing file is only reported."""
    try:
        yield
    except VideoNotFoundError:
        raise
    except InputError as exc:
        media.delete(source.bucket, source.key)
        log.info("deleted the rejected s3://%s/%s (%s)", source.bucket, source.key, exc.code)
        raise exc.amended(DELETED_NOTE) from exc


def check_size(name: str, size_bytes: int, settings: PipelineSettings) -> None:
    if size_bytes == 0:
        raise EmptyFileError(f"{name} is empty (0 bytes)")
    if size_bytes > settings.max_upload_bytes:
        raise TooLargeError(_too_large(name, size_bytes, settings))


def check_limits(info: VideoInfo, settings: PipelineSettings) -> None:
    """Raise the rejection for a probed video outside the configured limits."""
    if info.duration_s > settings.max_duration_s:
        raise TooLongError(
            f"{info.name} lasts {info.duration_s:.1f} s; at most {settings.max_duration_s:.0f} s is accepted"
        )
    if info.size_bytes is not None and info.size_bytes > settings.max_upload_bytes:
        raise TooLargeError(_too_large(info.name, info.size_bytes, settings))
    if info.width > settings.max_width_px or info.height > settings.max_height_px:
        raise ResolutionTooHighError(
            f"{info.name} is {info.width}x{info.height}; at most "
            f"{settings.max_width_px}x{settings.max_height_px} is accepted"
        )


def probe_upload(path: VideoSource, *, ffprobe: str) -> VideoInfo:
    """ffprobe a file whose first bytes are a video container's. probe's NotAVideoError then
    means the container holds no usable video stream (audio only, or a single picture)."""
    try:
        return probe(path, ffprobe=ffprobe)
    except NotAVideoError as exc:
        raise NoVideoStreamError(exc.message) from exc


def validate_upload(
    event: ValidateEvent, *, settings: PipelineSettings, media: MediaStorePort
) -> ValidateResult:
    """Check the accepted copy of the upload (``event.source``); returns its video summary or
    deletes it and raises the rejection."""
    bucket, key = event.source.bucket, event.source.key
    name = PurePosixPath(key).name or "video"
    head = media.head(bucket, key)
    if head is None:
        raise VideoNotFoundError(f"the upload {name} is gone")
    with discard_when_rejected(media, event.source):
        check_size(name, head.size_bytes, settings)
        first = media.read_bytes(bucket, key, length=SNIFF_BYTES)
        if sniff_container(first) is None:
            raise NotAVideoError(
                f"{name} is not a video file (its content is no MP4, MOV, MKV/WebM, AVI, MPEG-TS, "
                "MPEG-PS, FLV, Ogg or WMV)"
            )
        try:
            video = media.open_video(bucket, key, name=name)
        except ObjectNotFoundError as exc:
            raise VideoNotFoundError(f"the upload {name} is gone") from exc
        info = probe_upload(video, ffprobe=settings.runtime.ffprobe)
        check_limits(info, settings)
    return ValidateResult(video=VideoSummary.of(info))


def _too_large(name: str, size_bytes: int, settings: PipelineSettings) -> str:
    return (
        f"{name} is {size_bytes / 1e6:.1f} MB; at most {settings.max_upload_bytes / 1e6:.0f} MB is accepted"
    )
