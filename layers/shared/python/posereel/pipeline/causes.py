"""Readable job errors from what Step Functions hands over.

A Catch gives an Error name and a Cause: for a Lambda task, the JSON of the Lambda error
({"errorMessage", "errorType", "stackTrace"}, whose message is our {"code", "message"} for the
errors the handler boundary maps); for a Batch task, the JSON of the job description. People
should read neither.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from posereel.jobs import JobError

MAX_ERROR_MESSAGE_CHARS = 1000


def job_error(code: str | None, message: str | None, stage: str | None) -> JobError | None:
    """The record's error from its stored attributes; a Step Functions Cause in the message is
    reduced to what a person can read (and a stage's own error code, when it carries one)."""
    if code is None and message is None:
        return None
    inner_code, readable = readable_cause(message)
    return JobError(code=inner_code or code or "INTERNAL", message=readable or code or "failed", stage=stage)


def readable_cause(cause: str | None) -> tuple[str | None, str]:
    """(error code if the cause names one, readable message) of a Step Functions Cause.

    Understands a Lambda error ({"errorMessage", "errorType", ...}, whose message may itself be
    our {"code", "message"}), our {"code", "message"} as is, and a Batch job description (status
    reason, container exit code and reason). Anything else is returned as it is, shortened."""
    if not cause:
        return None, ""
    parsed = _json_object(cause)
    if parsed is None:
        return None, _shorten(cause)
    if "errorMessage" in parsed:
        inner = _json_object(str(parsed["errorMessage"]))
        if inner is not None and "message" in inner:
            return _str_or_none(inner.get("code")), _shorten(str(inner["message"]))
        kind = parsed.get("errorType")
        text = str(parsed["errorMessage"])
        return None, _shorten(f"{kind}: {text}" if kind else text)
    if "message" in parsed and "code" in parsed:
        return _str_or_none(parsed["code"]), _shorten(str(parsed["message"]))
    batch = _batch_summary(parsed)
    if batch:
        return None, _shorten(batch)
    return None, _shorten(cause)


def _batch_summary(job: Mapping[str, Any]) -> str | None:
    def pick(source: Mapping[str, Any], name: str) -> Any:
        # Step Functions passes DescribeJobs in PascalCase; the Batch API itself uses camelCase.
        return source.get(name[0].upper() + name[1:], source.get(name))

    status, reason = pick(job, "status"), pick(job, "statusReason")
    container = pick(job, "container") or {}
    if not (status or reason or container):
        return None
    parts = [
        f"Batch job {pick(job, 'jobName') or pick(job, 'jobId') or ''} {status or 'ended'}".replace("  ", " ")
    ]
    if reason:
        parts.append(str(reason))
    if isinstance(container, Mapping):
        exit_code, why = pick(container, "exitCode"), pick(container, "reason")
        if exit_code is not None:
            parts.append(f"exit code {exit_code}")
        if why:
            parts.append(str(why))
    return ": ".join(parts[:1]) + ("; " + "; ".join(parts[1:]) if len(parts) > 1 else "")


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_MESSAGE_CHARS else text[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
