"""The handler boundary: Step Functions matches error names exactly, so rejections leave a
handler as class InputError (JSON message), transient failures as TransientError, the rest as is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from posereel.errors import MalwareError, NotAVideoError, ToolError, TransientError
from posereel.observability import lambda_boundary


@dataclass
class Context:
    function_name: str = "posereel-test-validate"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:posereel-test-validate"
    aws_request_id: str = "req-1"


class Throttled(TransientError):
    code = "THROTTLED"


def raising(exc: Exception) -> Any:
    @lambda_boundary
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("raised", "name", "code"),
    [
        (NotAVideoError("notes.mp4 is not a video"), "InputError", "NOT_A_VIDEO"),
        (MalwareError("clip.mp4 is infected (Eicar)"), "InputError", "MALWARE"),
        (Throttled("slow down"), "TransientError", "THROTTLED"),
        (TransientError("try again"), "TransientError", "TRANSIENT"),
    ],
)
def test_pipeline_errors_leave_with_the_name_the_workflow_matches(
    raised: Exception, name: str, code: str
) -> None:
    with pytest.raises(Exception) as caught:
        raising(raised)({"job_id": "j"}, Context())
    assert type(caught.value).__name__ == name
    assert json.loads(str(caught.value)) == {"code": code, "message": str(raised)}


@pytest.mark.parametrize("raised", [ToolError("ffprobe hung"), KeyError("x")])
def test_other_errors_propagate_unchanged(raised: Exception) -> None:
    with pytest.raises(type(raised)) as caught:
        raising(raised)({}, Context())
    assert caught.value is raised


def test_results_pass_through() -> None:
    @lambda_boundary
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"echo": event["x"]}

    assert handler({"x": 1}, Context()) == {"echo": 1}
