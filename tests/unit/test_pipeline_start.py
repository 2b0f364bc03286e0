"""start: every upload gets exactly one execution, however often its event is delivered."""

from __future__ import annotations

import pytest

from posereel.jobs import JobRecord, JobStatus, SourceObject
from posereel.pipeline.events import S3ObjectRef
from posereel.pipeline.start import start_jobs
from tests.builders import UPLOADS, pipeline_settings
from tests.fakes import FakeJobStore, FakeMediaStore, FakeWorkflow

JOB = "0123456789abcdef0123456789abcdef"
KEY = f"uploads/{JOB}/clip.mp4"
UPLOAD = S3ObjectRef(bucket=UPLOADS, key=KEY, size_bytes=1234)
SETTINGS = pipeline_settings()


def announced(status: JobStatus = JobStatus.AWAITING_UPLOAD, **extra: object) -> JobRecord:
    source = SourceObject(
        bucket=UPLOADS, key=KEY, name="My Clip.mp4", size_bytes=1234, content_type="video/mp4"
    )
    return JobRecord.model_validate(
        {"job_id": JOB, "owner": "user-1", "status": status, "source": source, **extra}
    )


def test_an_unannounced_upload_gets_an_anonymous_queued_job_and_one_execution() -> None:
    # Given
    jobs, workflow = FakeJobStore(), FakeWorkflow()
    # When
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    # Then
    assert result.started == [JOB]
    record = jobs.records[JOB]
    assert (record.status, record.owner) == (JobStatus.QUEUED, "anonymous")
    assert record.source is not None and (record.source.key, record.source.size_bytes) == (KEY, 1234)
    assert record.execution_arn == workflow.execution_arn(JOB)
    assert record.expires_at is not None
    assert workflow.inputs[JOB] == {
        "job_id": JOB,
        "source": {"bucket": UPLOADS, "key": KEY},
        "placement": {"scan": "lambda"},  # 1234 bytes: the scan's Lambda
    }


def test_an_announced_upload_moves_to_queued_keeping_what_the_client_said() -> None:
    jobs, workflow = FakeJobStore(announced()), FakeWorkflow()
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    record = jobs.records[JOB]
    assert result.started == [JOB]
    assert (record.status, record.owner) == (JobStatus.QUEUED, "user-1")
    assert record.source is not None
    assert (record.source.name, record.source.content_type) == ("My Clip.mp4", "video/mp4")


@pytest.mark.parametrize("first_state", ["unannounced", "announced"])
def test_a_second_delivery_starts_nothing_and_changes_nothing(first_state: str) -> None:
    # Given one delivery handled
    jobs = FakeJobStore() if first_state == "unannounced" else FakeJobStore(announced())
    workflow = FakeWorkflow()
    start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    before, writes, starts = jobs.records[JOB], jobs.writes, workflow.start_calls
    # When the same event comes again
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    # Then
    assert (result.started, result.already_started) == ([], [JOB])
    assert jobs.records[JOB] == before and jobs.writes == writes
    assert workflow.start_calls == starts and len(workflow.executions) == 1


@pytest.mark.parametrize(
    "status", [JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED]
)
def test_an_upload_of_a_job_under_way_or_done_starts_nothing(status: JobStatus) -> None:
    jobs, workflow = FakeJobStore(announced(status, execution_arn="arn:x")), FakeWorkflow()
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    assert result.already_started == [JOB] and workflow.start_calls == 0


def test_a_queued_job_whose_start_was_interrupted_is_started() -> None:
    # Given a delivery that queued the job and died before starting the execution
    jobs, workflow = FakeJobStore(announced(JobStatus.QUEUED)), FakeWorkflow()
    # When the event is delivered again
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    # Then
    assert result.started == [JOB] and jobs.records[JOB].execution_arn == workflow.execution_arn(JOB)


class StaleReads(FakeJobStore):
    """Reads a snapshot taken before a racing delivery recorded its execution."""

    def __init__(self, stale: JobRecord, current: JobRecord) -> None:
        super().__init__(current)
        self.stale = stale

    def get(self, job_id: str) -> JobRecord | None:
        return self.stale


def test_a_racing_delivery_starts_no_second_execution() -> None:
    # Given another delivery started the execution and recorded it after our read
    workflow = FakeWorkflow()
    arn = workflow.start(JOB, {"job_id": JOB})
    current = announced(JobStatus.QUEUED, execution_arn=arn)
    jobs = StaleReads(stale=announced(JobStatus.QUEUED), current=current)
    # When
    result = start_jobs([UPLOAD], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    # Then no second execution, and the record still names the one there is
    assert result.started + result.already_started == [JOB]
    assert len(workflow.executions) == 1 and jobs.records[JOB].execution_arn == arn


@pytest.mark.parametrize(
    "obj",
    [
        S3ObjectRef(bucket=UPLOADS, key="uploads/clip.mp4"),
        S3ObjectRef(bucket=UPLOADS, key="elsewhere/x/clip.mp4"),
        S3ObjectRef(bucket=UPLOADS, key="uploads/NOT_AN_ID/clip.mp4"),
        S3ObjectRef(bucket=UPLOADS, key=f"uploads/{JOB}/"),
        S3ObjectRef(bucket="someone-elses", key=KEY),
    ],
    ids=["no-job-folder", "other-prefix", "bad-job-id", "folder-marker", "other-bucket"],
)
def test_objects_that_are_no_jobs_upload_are_ignored(obj: S3ObjectRef) -> None:
    jobs, workflow = FakeJobStore(), FakeWorkflow()
    result = start_jobs([obj], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    assert result.ignored == [obj.key] and jobs.records == {} and workflow.start_calls == 0


def test_a_second_file_under_an_announced_job_is_ignored() -> None:
    jobs, workflow = FakeJobStore(announced()), FakeWorkflow()
    other = S3ObjectRef(bucket=UPLOADS, key=f"uploads/{JOB}/other.mp4")
    result = start_jobs([other], settings=SETTINGS, jobs=jobs, workflow=workflow, media=FakeMediaStore())
    assert result.ignored == [other.key] and jobs.records[JOB].status == JobStatus.AWAITING_UPLOAD
