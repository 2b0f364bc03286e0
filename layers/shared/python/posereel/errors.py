"""PoseReel's errors. Class names matter: the workflow's Retry/Catch match on them.

InputError and its children mean the input can never succeed (never retried); TransientError
means trying again may help.
"""

from __future__ import annotations


class PoseReelError(Exception):
    """Base of every error PoseReel raises on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InputError(PoseReelError):
    """The input is unusable as given; retrying cannot help."""

    code = "INVALID_INPUT"


class VideoNotFoundError(InputError):
    code = "NOT_FOUND"


class NotAVideoError(InputError):
    code = "NOT_A_VIDEO"


class UnreadableVideoError(InputError):
    code = "UNREADABLE"


class ModelError(PoseReelError):
    """A pose model is missing or does not match its published checksum."""

    code = "MODEL"


class TransientError(PoseReelError):
    """A failure that may pass on a retry (network, throttling, a busy device)."""

    code = "TRANSIENT"


class ToolError(PoseReelError):
    """An external tool (ffmpeg, ffprobe) failed unexpectedly."""

    code = "TOOL"
