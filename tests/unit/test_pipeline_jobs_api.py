"""api and finalize services: announcing uploads, reading jobs, and reconciling jobs whose
workflow execution ended without writing a terminal status."""

from __future__ import annotations

import pytest

from posereel.errors import TooLargeError
from posereel.jobs import JobRecord, JobStatus, Stage
from posereel.pipeline.api import CreateUploadRequest, create_upload, get_job
from posereel.pipeline.events import ExecutionStatusChange, ExecutionStatusEvent
from posereel.pipeline.finalize import finalize_execution, reconcile_job
from tests.unit.pipeline_fakes import FakeJobStore, FakeMediaStore, FakeWorkflow, pipeline_settings

JOB = "0123456789abcdef0123456789abcdef"


def test_announcing_an_upload_creates_an_awaiting_job_and_a_form_for_its_key() -> None:
    # Given
    jobs, media = FakeJobStore(), FakeMediaStore()
    request = CreateUploadRequest(filename="My Dance (1).mp4", size_bytes=5_000, content_type="video/mp4")
    # When
    created = create_upload(request, owner="user-1", settings=pipeline_settings(), jobs=jobs, media=media)
    # Then
    record = jobs.records[created.job_id]
    assert (record.status, record.stage, record.owner) == (JobStatus.AWAITING_UPLOAD, Stage.UPLOAD, "user-1")
    assert record.source is not None
    assert record.source.key == f"uploads/{created.job_id}/My_Dance_1_.mp4"
    assert (record.source.name, record.source.size_bytes) == ("My Dance (1).mp4", 5_000)
    assert created.upload.fields["key"] == record.source.key
    assert created.expires_in_s > 0 and record.expires_at is not None


def test_announcing_a_file_over_the_limit_is_refused() -> None:
    request = CreateUploadRequest(filename="big.mp4", size_bytes=2_001, content_type="video/mp4")
    jobs = FakeJobStore()
    with pytest.raises(TooLargeError):
        create_upload(
            request,
            owner="u",
            settings=pipeline_settings(max_upload_bytes=2_000),
            jobs=jobs,
            media=FakeMediaStore(),
        )
    assert jobs.records == {}


def running(**extra: object) -> JobRecord:
    return JobRecord.model_validate(
        {"job_id": JOB, "status": JobStatus.RUNNING, "stage": Stage.ANALYZE, **extra}
    )


@pytest.mark.parametrize(
    ("record", "execution", "status", "code"),
    [
        (running(), "FAILED", JobStatus.FAILED, "EXECUTION_FAILED"),
        (running(), "TIMED_OUT", JobStatus.FAILED, "EXECUTION_TIMED_OUT"),
        (running(), "ABORTED", JobStatus.FAILED, "EXECUTION_ABORTED"),
        (
            running(status=JobStatus.QUEUED, stage=Stage.UPLOAD),
            "ABORTED",
            JobStatus.FAILED,
            "EXECUTION_ABORTED",
        ),
        (running(), "RUNNING", JobStatus.RUNNING, None),
        (running(), "SUCCEEDED", JobStatus.RUNNING, None),
        (running(), None, JobStatus.RUNNING, None),
        (running(status=JobStatus.REJECTED), "FAILED", JobStatus.REJECTED, None),
        (running(status=JobStatus.AWAITING_UPLOAD), "ABORTED", JobStatus.AWAITING_UPLOAD, None),
    ],
)
def test_reconcile_fails_only_unfinished_jobs_whose_execution_ended_badly(
    record: JobRecord, execution: str | None, status: JobStatus, code: str | None
) -> None:
    # Given
    jobs, workflow = FakeJobStore(record), FakeWorkflow()
    if execution is not None:
        workflow.start(JOB, {})
        workflow.end(JOB, execution, error="States.Timeout" if execution == "TIMED_OUT" else None)
    # When
    after = reconcile_job(record, jobs=jobs, workflow=workflow)
    # Then
    assert after.status == status
    assert (after.error.code if after.error else None) == code
    if code is not None:
        assert after.error is not None and after.error.stage == record.stage.value
        assert after.finished_at == "2026-01-01T00:00:00.000Z"


def test_get_job_is_reconciled_and_private_to_its_owner() -> None:
    jobs, workflow = FakeJobStore(running(owner="user-1")), FakeWorkflow()
    workflow.start(JOB, {})
    workflow.end(JOB, "TIMED_OUT")
    assert get_job(JOB, caller="user-2", jobs=jobs, workflow=workflow) is None
    mine = get_job(JOB, caller="user-1", jobs=jobs, workflow=workflow)
    assert mine is not None and mine.status == JobStatus.FAILED
    assert get_job("../etc", caller=None, jobs=jobs, workflow=workflow) is None


def status_event(name: str, status: str, cause: str | None = None) -> ExecutionStatusEvent:
    detail = ExecutionStatusChange(
        executionArn=f"arn:aws:states:us-east-1:1:execution:sm:{name}",
        stateMachineArn="arn:aws:states:us-east-1:1:stateMachine:sm",
        name=name,
        status=status,
        error="States.Runtime" if cause else None,
        cause=cause,
        stopDate=1767225600000,
    )
    return ExecutionStatusEvent.model_validate(
        {"detail-type": "Step Functions Execution Status Change", "detail": detail.model_dump(by_alias=True)}
    )


def test_finalize_fails_the_job_of_a_failed_execution_with_a_readable_message() -> None:
    jobs = FakeJobStore(running())
    cause = "An error occurred while executing the state 'MarkRunning'. The JSONPath '$.x' could not be found"
    result = finalize_execution(status_event(JOB, "FAILED", cause), jobs=jobs, workflow=FakeWorkflow())
    assert (result.job_id, result.status, result.changed) == (JOB, "FAILED", True)
    error = jobs.records[JOB].error
    assert error is not None and error.code == "EXECUTION_FAILED"
    assert "States.Runtime" in error.message and "MarkRunning" in error.message
    assert jobs.records[JOB].finished_at == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("name", "known"), [("not a job id", False), (JOB, False)], ids=["foreign-execution", "unknown-job"]
)
def test_finalize_ignores_executions_without_a_job(name: str, known: bool) -> None:
    result = finalize_execution(status_event(name, "ABORTED"), jobs=FakeJobStore(), workflow=FakeWorkflow())
    assert result.changed is False and result.status is None
