"""api handler (API Gateway REST proxy events) on moto, and finalize: uploads are announced with
a size-limited presigned POST; jobs are read back reconciled with their executions."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from posereel.jobs import JobRecord, JobStatus, Stage
from posereel_functions import api, finalize, job_store
from tests.functional.events import (
    JOB,
    UPLOADS,
    LambdaContext,
    PipelineAws,
    api_request,
    execution_status_change,
    pipeline_aws,
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(monkeypatch, max_upload_bytes=10_000_000) as stack:
        yield stack


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.handler(event, LambdaContext())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def test_post_uploads_returns_a_presigned_post_limited_to_the_declared_size(aws: PipelineAws) -> None:
    # When
    status, body = call(
        api_request(
            "POST",
            "/uploads",
            {"filename": "Dance 1.mov", "size_bytes": 123_456, "content_type": "video/quicktime"},
        )
    )
    # Then
    assert status == 201
    job_id, upload = body["job_id"], body["upload"]
    key = f"uploads/{job_id}/Dance_1.mov"
    assert upload["fields"]["key"] == key and upload["fields"]["Content-Type"] == "video/quicktime"
    assert body["expires_in_s"] > 0
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 123_456] in conditions
    assert ["starts-with", "$Content-Type", "video/"] in conditions
    assert {"key": key} in conditions and {"bucket": UPLOADS} in conditions
    assert upload["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    # and the job waits for its upload
    record = aws.job(job_id)
    assert record is not None and (record.status, record.owner) == (JobStatus.AWAITING_UPLOAD, "anonymous")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filename": "a.mp4", "size_bytes": 0, "content_type": "video/mp4"}, "size_bytes"),
        ({"filename": "a.mp4", "size_bytes": 10, "content_type": "image/png"}, "content_type"),
        ({"filename": "", "size_bytes": 10, "content_type": "video/mp4"}, "filename"),
        ({"size_bytes": 10, "content_type": "video/mp4"}, "filename"),
        ({"filename": "a.mp4", "size_bytes": "ten", "content_type": "video/mp4"}, "size_bytes"),
        ({"filename": "a.mp4", "size_bytes": 10, "content_type": "video/mp4", "owner": "me"}, "owner"),
    ],
    ids=["zero-size", "not-video", "empty-name", "no-name", "size-not-int", "unknown-field"],
)
def test_bad_bodies_get_422_naming_the_field(aws: PipelineAws, body: dict[str, Any], field: str) -> None:
    status, payload = call(api_request("POST", "/uploads", body))
    assert status == 422 and payload["code"] == "INVALID_REQUEST"
    assert field in [f["field"] for f in payload["fields"]] and field in payload["message"]


def test_a_body_that_is_no_json_gets_422(aws: PipelineAws) -> None:
    status, payload = call(api_request("POST", "/uploads", "{not json"))
    assert status == 422 and payload["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain"], ids=["form", "text"]
)
def test_a_json_body_not_labelled_json_gets_415_naming_the_fix(
    aws: PipelineAws, content_type: str | None
) -> None:
    # Given a good body sent the way `curl -d` sends it (labelled form-urlencoded), or unlabelled
    event = api_request(
        "POST", "/uploads", {"filename": "a.mp4", "size_bytes": 1000, "content_type": "video/mp4"}
    )
    event["headers"] = {"Content-Type": content_type}
    # Then the caller is told to send JSON, not that every field is missing
    status, payload = call(event)
    assert (status, payload["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in payload["message"]


def test_a_json_body_without_a_content_type_is_read_as_json(aws: PipelineAws) -> None:
    event = api_request(
        "POST", "/uploads", {"filename": "a.mp4", "size_bytes": 1000, "content_type": "video/mp4"}
    )
    event["headers"] = {}
    status, _ = call(event)
    assert status == 201


def test_an_upload_over_the_limit_gets_413(aws: PipelineAws) -> None:
    status, payload = call(
        api_request(
            "POST", "/uploads", {"filename": "a.mp4", "size_bytes": 10_000_001, "content_type": "video/mp4"}
        )
    )
    assert (status, payload["code"]) == (413, "TOO_LARGE")


@pytest.mark.parametrize("job_id", [JOB, "..", "not-a-job-id-because-UPPER"])
def test_unknown_jobs_get_404_json(aws: PipelineAws, job_id: str) -> None:
    status, payload = call(api_request("GET", f"/jobs/{job_id}"))
    assert (status, payload["code"]) == (404, "NOT_FOUND") and payload["message"]


def test_unknown_routes_get_404_json(aws: PipelineAws) -> None:
    status, payload = call(api_request("GET", "/nothing/here"))
    assert (status, payload["code"]) == (404, "NOT_FOUND")


def running_job(aws: PipelineAws, *, started: bool = True) -> str:
    """A RUNNING job (analysis under way) with a real execution in moto; returns its ARN."""
    arn = ""
    if started:
        arn = aws.client("stepfunctions").start_execution(stateMachineArn=aws.state_machine_arn, name=JOB)[
            "executionArn"
        ]
    record = JobRecord(
        job_id=JOB,
        owner="anonymous",
        status=JobStatus.RUNNING,
        stage=Stage.ANALYZE,
        execution_arn=arn or None,
        chunks_total=4,
        chunks_done=1,
        stage_started={"VALIDATE": "2026-01-01T00:00:00.000Z", "ANALYZE": "2026-01-01T00:00:10.000Z"},
    )
    assert job_store().create_if_absent(record)
    return arn


def test_get_job_returns_the_record_with_progress(aws: PipelineAws) -> None:
    running_job(aws)
    status, body = call(api_request("GET", f"/jobs/{JOB}"))
    assert status == 200
    assert (body["job_id"], body["status"], body["stage"]) == (JOB, "RUNNING", "ANALYZE")
    assert body["percent"] == 28.8  # validate+scan+plan (10) and 1 of 4 chunks of analyze (75), to 0.1
    assert body["stage_seconds"] == {"VALIDATE": 10.0}


def test_get_job_fails_a_running_job_whose_execution_was_aborted(aws: PipelineAws) -> None:
    # Given a job marked RUNNING whose execution is gone (stopped by an operator)
    arn = running_job(aws)
    aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stuck")
    # When a client polls it
    status, body = call(api_request("GET", f"/jobs/{JOB}"))
    # Then it is FAILED for good, saying why, instead of running forever
    assert status == 200 and body["status"] == "FAILED"
    assert body["error"]["code"] == "EXECUTION_ABORTED" and body["error"]["stage"] == "ANALYZE"
    assert body["finished_at"]
    stored = aws.job()
    assert stored is not None and stored.status == JobStatus.FAILED


def test_finalize_fails_the_job_of_a_timed_out_execution(aws: PipelineAws) -> None:
    running_job(aws, started=False)
    event = execution_status_change(JOB, "TIMED_OUT", state_machine_arn=aws.state_machine_arn)
    result = finalize.handler(event, LambdaContext())
    assert result == {"job_id": JOB, "status": "FAILED", "changed": True}
    record = aws.job()
    assert record is not None and record.error is not None and record.error.code == "EXECUTION_TIMED_OUT"
    # A second delivery changes nothing
    assert finalize.handler(event, LambdaContext())["changed"] is False
