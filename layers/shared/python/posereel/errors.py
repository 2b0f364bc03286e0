"""PoseReel's errors, all of them. Class names matter: the workflow's Retry/Catch match on them
(``posereel.observability.lambda_boundary``), and the API maps classes to HTTP statuses in one table
(``posereel_functions.api.STATUS_OF``).

InputError and its children mean the input can never succeed (never retried); TransientError
means trying again may help.
"""

from __future__ import annotations

import copy


class PoseReelError(Exception):
    """Base of every error PoseReel raises on purpose."""

    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def amended(self, text: str) -> PoseReelError:
        """The same error (class, code, fields) with ``text`` added to its message."""
        clone = copy.copy(self)
        clone.message = f"{self.message}; {text}"
        clone.args = (clone.message,)
        return clone


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


# Rejections of an upload by the pipeline's validate and scan stages; each code reaches the client.


class EmptyFileError(InputError):
    code = "EMPTY_FILE"


class NoVideoStreamError(InputError):
    """A media container without a usable video stream (audio only, or a single picture)."""

    code = "NO_VIDEO_STREAM"


class TooLongError(InputError):
    code = "TOO_LONG"


class TooLargeError(InputError):
    code = "TOO_LARGE"


class ResolutionTooHighError(InputError):
    code = "RESOLUTION_TOO_HIGH"


class MalwareError(InputError):
    """The virus scanner matched a signature; the message names it."""

    code = "MALWARE"


class ObjectNotFoundError(PoseReelError):
    """A stored object (S3) or record that should exist does not. Not an input error by itself:
    the stage that expected it decides (a missing upload is one, a missing plan is a bug)."""

    code = "OBJECT_NOT_FOUND"


class JobDeletedError(PoseReelError):
    """The owner deleted the job while a stage ran; the stage removed what it had written."""

    code = "DELETED"


class ChunkMergeError(PoseReelError):
    """Chunk results that do not fit together: a fault of the pipeline, never of the upload."""

    code = "CHUNK_MERGE"


class GpuUnavailableError(PoseReelError):
    """A GPU chunk job on a machine where MediaPipe's GPU delegate does not start."""

    code = "GPU_UNAVAILABLE"


# Refusals of API requests (posereel.pipeline.api, posereel_functions.api).


class ForbiddenError(PoseReelError):
    """A request without a valid API key or token (403)."""

    code = "FORBIDDEN"


class JobNotFoundError(PoseReelError):
    """No such job, or another owner's (404; the two are not told apart)."""

    code = "NOT_FOUND"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")


class ConflictError(PoseReelError):
    """The job is not in a state that allows the request (409)."""

    code = "CONFLICT"


class InvalidFieldError(InputError):
    """One named field of a request is wrong (422, like a body that fails validation)."""

    code = "INVALID_REQUEST"

    def __init__(self, field: str, message: str, *, problem: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem
