"""What a job's owner may read of it: the project's own error codes and plain words, never the
internals (file paths, memory addresses, S3 locations, ARNs, account ids, Step Functions error
names). The stored record keeps the full detail for the operators (the logs and the table)."""

from __future__ import annotations

import functools
import re

from posereel.errors import PoseReelError
from posereel.jobs import REEL_TIMED_OUT, JobError, Stage
from posereel.pipeline.expiry import UPLOAD_EXPIRED
from posereel.pipeline.finalize import ENDED_BADLY

FAILED_CODE = "INTERNAL"
ANALYSIS_FAILED_CODE = "ANALYSIS_FAILED"

# (pattern, replacement), applied in order.
_INTERNALS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\[[^\]\n]*@ 0x[0-9a-fA-F]+\]\s*"), ""),  # ffmpeg's "[mov,mp4,... @ 0x55d0...]"
    (re.compile(r"\bs3://\S+"), "the stored file"),
    (re.compile(r"\barn:aws[\w-]*:\S+"), "a cloud resource"),
    (re.compile(r"\bhttps?://\S+"), "a service"),
    (re.compile(r"(?<![\w.])(?:/[\w.@+=,-]+){2,}/?"), "a file"),  # absolute paths of 2+ parts
    (re.compile(r"\b0x[0-9a-fA-F]{4,}\b"), "an address"),
    (re.compile(r"\b[a-z0-9][a-z0-9.-]{1,60}-\d{12}\b"), "a bucket"),  # our bucket names end in the account
    (re.compile(r"\b\d{12}\b"), "an account"),
)


@functools.cache
def _own_codes() -> frozenset[str]:
    codes = {UPLOAD_EXPIRED, FAILED_CODE, ANALYSIS_FAILED_CODE, REEL_TIMED_OUT}
    codes |= {f"EXECUTION_{status}" for status in ENDED_BADLY}
    pending = [PoseReelError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return frozenset(codes)


def plain(text: str) -> str:
    """``text`` without the internals above."""
    for pattern, replacement in _INTERNALS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def public_error(error: JobError) -> JobError:
    """The error as its owner sees it: one of the project's codes and a message in plain words.
    A code that is not ours (a Step Functions or Python error name from a crash) becomes
    ANALYSIS_FAILED (at ANALYZE) or INTERNAL, with words that say what to do."""
    if error.code in _own_codes():
        return error.model_copy(update={"message": plain(error.message)})
    stage = (error.stage or "").lower() or "a"
    if error.stage == Stage.ANALYZE.value:
        code, message = ANALYSIS_FAILED_CODE, "the analysis failed on every worker it was tried on"
    else:
        code, message = FAILED_CODE, f"an internal error stopped the job at the {stage} stage"
    return JobError(
        code=code, message=f"{message}; it is logged for the operators, try again later", stage=error.stage
    )
