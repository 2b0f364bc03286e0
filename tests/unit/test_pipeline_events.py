"""The pipeline's event models: S3 events of both shapes, workflow payloads, status changes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from posereel.pipeline.events import (
    ExecutionStatusEvent,
    PlanResult,
    S3ObjectRef,
    ValidateEvent,
    parse_s3_event,
)

JOB = "0123456789abcdef0123456789abcdef"


def eventbridge(bucket: str, key: str, size: int | None = 10) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key}
    if size is not None:
        obj["size"] = size
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
    }


def notification(*objects: tuple[str, str, int]) -> dict[str, Any]:
    return {
        "Records": [
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": b}, "object": {"key": k, "size": n}}}
            for b, k, n in objects
        ]
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            eventbridge("up", f"uploads/{JOB}/clip.mp4", 42),
            [S3ObjectRef(bucket="up", key=f"uploads/{JOB}/clip.mp4", size_bytes=42)],
            id="eventbridge",
        ),
        pytest.param(
            eventbridge("up", f"uploads%2F{JOB}%2Fmy+clip.mp4", None),
            [S3ObjectRef(bucket="up", key=f"uploads/{JOB}/my clip.mp4", size_bytes=None)],
            id="eventbridge-encoded-no-size",
        ),
        pytest.param(
            notification(("up", f"uploads%2F{JOB}%2Fa.mp4", 1), ("up", "uploads/x/b%C3%A9.mp4", 2)),
            [
                S3ObjectRef(bucket="up", key=f"uploads/{JOB}/a.mp4", size_bytes=1),
                S3ObjectRef(bucket="up", key="uploads/x/bé.mp4", size_bytes=2),
            ],
            id="notification-two-records",
        ),
    ],
)
def test_s3_events_of_both_shapes_give_decoded_objects(
    event: dict[str, Any], expected: list[S3ObjectRef]
) -> None:
    # When
    objects = parse_s3_event(event)
    # Then
    assert objects == expected


@pytest.mark.parametrize(
    "event",
    [{}, {"detail": {"status": "RUNNING"}}, {"Records": [{"eventSource": "aws:sqs"}]}],
    ids=["empty", "not-s3-detail", "record-without-s3"],
)
def test_other_events_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_s3_event(event)


def test_stage_events_ignore_extra_state_but_need_their_fields() -> None:
    # Given a state that carries more than validate reads
    state = {"job_id": JOB, "source": {"bucket": "b", "key": "k"}, "video": {"any": 1}}
    # When / Then
    assert ValidateEvent.model_validate(state).source.key == "k"
    with pytest.raises(ValidationError):
        ValidateEvent.model_validate({"job_id": JOB})


def test_results_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        PlanResult.model_validate({"plan_key": "k", "chunks": [], "extra": 1})


def test_execution_status_change_is_parsed() -> None:
    event = {
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "executionArn": f"arn:aws:states:us-east-1:1:execution:sm:{JOB}",
            "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:sm",
            "name": JOB,
            "status": "TIMED_OUT",
            "startDate": 1,
            "stopDate": 1767225600000,
            "input": "{}",
            "output": None,
        },
    }
    parsed = ExecutionStatusEvent.model_validate(event)
    assert (parsed.detail.name, parsed.detail.status, parsed.detail.error) == (JOB, "TIMED_OUT", None)
