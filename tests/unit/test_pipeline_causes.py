"""Job errors people can read, from Step Functions Causes, and the jobs table item mapping."""

from __future__ import annotations

import json

import pytest

from posereel.aws.jobstore import item_from_record, record_from_item
from posereel.jobs import JobError, JobRecord, JobResult, JobStatus, SourceObject, Stage
from posereel.pipeline.causes import MAX_ERROR_MESSAGE_CHARS, job_error, readable_cause

LAMBDA_INPUT_ERROR = json.dumps(
    {
        "errorMessage": json.dumps({"code": "NOT_A_VIDEO", "message": "notes.mp4 is not a video file"}),
        "errorType": "InputError",
        "stackTrace": ["  File ..."],
    }
)
LAMBDA_CRASH = json.dumps({"errorMessage": "division by zero", "errorType": "ZeroDivisionError"})
BATCH_PASCAL = json.dumps(
    {
        "JobName": "chunk-3",
        "Status": "FAILED",
        "StatusReason": "Essential container in task exited",
        "Container": {"ExitCode": 137, "Reason": "OutOfMemoryError: Container killed due to memory usage"},
        "Attempts": [{}],
    }
)
BATCH_CAMEL = json.dumps({"jobId": "j-1", "status": "FAILED", "container": {"exitCode": 1}})


@pytest.mark.parametrize(
    ("cause", "code", "words"),
    [
        (LAMBDA_INPUT_ERROR, "NOT_A_VIDEO", ["notes.mp4 is not a video file"]),
        (LAMBDA_CRASH, None, ["ZeroDivisionError", "division by zero"]),
        (json.dumps({"code": "MALWARE", "message": "infected"}), "MALWARE", ["infected"]),
        (BATCH_PASCAL, None, ["chunk-3", "FAILED", "exit code 137", "OutOfMemoryError"]),
        (BATCH_CAMEL, None, ["j-1", "FAILED", "exit code 1"]),
        ("States.Timeout after 900 s", None, ["States.Timeout after 900 s"]),
        ("[1, 2]", None, ["[1, 2]"]),
        (None, None, []),
    ],
    ids=[
        "lambda-input-error",
        "lambda-crash",
        "our-payload",
        "batch-pascal",
        "batch-camel",
        "text",
        "json-list",
        "none",
    ],
)
def test_causes_become_readable(cause: str | None, code: str | None, words: list[str]) -> None:
    found_code, message = readable_cause(cause)
    assert found_code == code
    for word in words:
        assert word in message
    assert "stackTrace" not in message and "{" not in message


def test_long_causes_are_shortened() -> None:
    _, message = readable_cause("x" * 5000)
    assert len(message) == MAX_ERROR_MESSAGE_CHARS


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ((None, None, None), None),
        (
            ("InputError", LAMBDA_INPUT_ERROR, "VALIDATE"),
            JobError(code="NOT_A_VIDEO", message="notes.mp4 is not a video file", stage="VALIDATE"),
        ),
        (
            ("States.TaskFailed", BATCH_CAMEL, "ANALYZE"),
            JobError(code="States.TaskFailed", message="Batch job j-1 FAILED; exit code 1", stage="ANALYZE"),
        ),
        (
            ("EXECUTION_TIMED_OUT", None, None),
            JobError(code="EXECUTION_TIMED_OUT", message="EXECUTION_TIMED_OUT"),
        ),
    ],
)
def test_the_record_error_is_built_from_the_flat_attributes(
    stored: tuple[str | None, str | None, str | None], expected: JobError | None
) -> None:
    assert job_error(*stored) == expected


def test_records_survive_the_item_mapping() -> None:
    # Given a record with every kind of field
    record = JobRecord(
        job_id="0123456789abcdef0123456789abcdef",
        owner="user-1",
        status=JobStatus.SUCCEEDED,
        stage=Stage.DONE,
        source=SourceObject(bucket="b", key="k", name="n.mp4", size_bytes=10, content_type="video/mp4"),
        execution_arn="arn:x",
        chunks_total=3,
        chunks_done=3,
        devices={"0": "gpu", "1": "cpu"},
        stage_started={"VALIDATE": "2026-01-01T00:00:00.000Z", "SCAN": "2026-01-01T00:00:01.500Z"},
        finished_at="2026-01-01T00:00:09.000Z",
        error=JobError(code="X", message="y", stage="SCAN"),
        result=JobResult(prefix="results/j/", segments=2, reel_duration_s=12.345, primary_track_id=0),
        expires_at=1800000000,
    )
    # When
    item = item_from_record(record)
    # Then the item is flat where the workflow writes, and numbers are DynamoDB numbers
    assert item["error_code"] == {"S": "X"} and "error" not in item and "percent" not in item
    assert item["chunks_total"] == {"N": "3"} and item["result"]["M"]["reel_duration_s"] == {"N": "12.345"}
    assert record_from_item(item) == record


def test_a_fresh_record_keeps_empty_maps_for_the_workflow_to_fill() -> None:
    item = item_from_record(JobRecord(job_id="0123456789abcdef", status=JobStatus.QUEUED))
    assert item["devices"] == {"M": {}} and item["stage_started"] == {"M": {}}
    assert "error_code" not in item and "result" not in item
