"""start handler on moto: an upload (by EventBridge or S3 notification) starts one execution named
by its job id, however often the event is delivered."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from posereel.jobs import JobStatus
from posereel_functions import api, start
from tests.builders import (
    JOB,
    UPLOADS,
    LambdaContext,
    api_request,
    object_created,
    s3_notification,
    upload_key,
)
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(monkeypatch) as stack:
        yield stack


SHAPES: list[Callable[[str, int], dict[str, Any]]] = [object_created, s3_notification]


@pytest.mark.parametrize("shape", SHAPES, ids=["eventbridge", "notification"])
def test_an_upload_starts_one_execution_even_when_delivered_twice(
    aws: PipelineAws, shape: Callable[[str, int], dict[str, Any]]
) -> None:
    # Given an object nobody announced
    key = upload_key(name="my clip.mp4")
    size = aws.put_upload(b"\x00\x00\x00\x20ftypisom", key)
    event = shape(key, size)
    # When the event arrives twice
    first = start.handler(event, LambdaContext())
    record_after_first = aws.job()
    second = start.handler(event, LambdaContext())
    # Then one execution, named by the job id, with the workflow's input
    assert first["started"] == [JOB] and second == {"started": [], "already_started": [JOB], "ignored": []}
    executions = aws.executions()
    assert [e["name"] for e in executions] == [JOB]
    described = aws.client("stepfunctions").describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {
        "job_id": JOB,
        "source": {"bucket": UPLOADS, "key": key},
        "placement": {"scan": "lambda"},
    }
    # and the record, queued for an anonymous owner, unchanged by the second delivery
    record = aws.job()
    assert record is not None and record == record_after_first
    assert (record.status, record.owner, record.execution_arn) == (
        JobStatus.QUEUED,
        "anonymous",
        executions[0]["executionArn"],
    )


def test_an_announced_upload_is_queued_for_its_owner(aws: PipelineAws) -> None:
    # Given the client announced the upload through the API
    body = {"filename": "dance.mp4", "size_bytes": 16, "content_type": "video/mp4"}
    event = api_request("POST", "/uploads", {"files": [body]}, claims={"sub": "user-7"})
    created = api.handler(event, LambdaContext())
    job_id = json.loads(created["body"])["uploads"][0]["job_id"]
    key = upload_key(job_id, "dance.mp4")
    # When the upload lands
    result = start.handler(object_created(key, aws.put_upload(b"x" * 16, key)), LambdaContext())
    # Then
    record = aws.job(job_id)
    assert result["started"] == [job_id]
    assert record is not None and (record.status, record.owner) == (JobStatus.QUEUED, "user-7")
    assert record.source is not None and record.source.content_type == "video/mp4"


def test_objects_outside_uploads_are_ignored(aws: PipelineAws) -> None:
    result = start.handler(object_created("uploads/readme.txt", 3), LambdaContext())
    assert result["ignored"] == ["uploads/readme.txt"] and aws.executions() == []
