"""expiry: a job whose upload never came ends REJECTED (UPLOAD_EXPIRED) once its deadline passed,
with its unfinished multipart upload dropped; one whose file came without its notification is
started; nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from posereel.jobs import AWAITING, JobRecord, JobStatus, SourceObject, iso_utc
from posereel.pipeline.events import S3ObjectRef
from posereel.pipeline.expiry import UPLOAD_EXPIRED, expire_uploads
from posereel.pipeline.start import start_jobs
from tests.builders import UPLOADS, pipeline_settings
from tests.fakes import FakeFunctions, FakeJobStore, FakeMediaStore, FakeWorkflow

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SETTINGS = pipeline_settings()


def waiting(job_id: str, *, deadline: datetime, upload_id: str | None = None) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        owner="user-1",
        status=JobStatus.AWAITING_UPLOAD,
        source=SourceObject(bucket=UPLOADS, key=f"uploads/{job_id}/clip.mp4", name="clip.mp4", size_bytes=10),
        upload_id=upload_id,
        awaiting=AWAITING,
        upload_deadline=iso_utc(deadline),
    )


def sweep(jobs: FakeJobStore, media: FakeMediaStore, workflow: FakeWorkflow | None = None):  # type: ignore[no-untyped-def]
    return expire_uploads(
        settings=SETTINGS,
        jobs=jobs,
        media=media,
        workflow=workflow or FakeWorkflow(),
        functions=FakeFunctions(),
        now=NOW,
        clock=lambda: "t",
    )


def test_a_job_past_its_deadline_is_rejected_and_its_multipart_upload_dropped() -> None:
    # Given
    media = FakeMediaStore()
    upload_id = media.create_multipart(UPLOADS, "uploads/job-past-0001/clip.mp4", content_type="video/mp4")
    jobs = FakeJobStore(waiting("job-past-0001", deadline=NOW - timedelta(seconds=1), upload_id=upload_id))
    # When
    result = sweep(jobs, media)
    # Then
    assert result.expired == ["job-past-0001"] and result.started == []
    record = jobs.records["job-past-0001"]
    assert record.status == JobStatus.REJECTED and record.finished_at == "t"
    assert record.error is not None and record.error.code == UPLOAD_EXPIRED
    assert (record.awaiting, record.upload_deadline) == (None, None), "it leaves the sparse index"
    assert media.aborted == [upload_id]


def test_a_job_before_its_deadline_waits_on() -> None:
    jobs = FakeJobStore(waiting("job-soon-0001", deadline=NOW + timedelta(seconds=1)))
    assert sweep(jobs, FakeMediaStore()).expired == []
    assert jobs.records["job-soon-0001"].status == JobStatus.AWAITING_UPLOAD


def test_a_file_that_came_without_its_notification_starts_its_job() -> None:
    media, workflow = FakeMediaStore(), FakeWorkflow()
    media.put(UPLOADS, "uploads/job-lost-0001/clip.mp4", b"a video")
    jobs = FakeJobStore(waiting("job-lost-0001", deadline=NOW - timedelta(minutes=5)))
    result = sweep(jobs, media, workflow)
    assert result.started == ["job-lost-0001"] and result.expired == []
    assert jobs.records["job-lost-0001"].status == JobStatus.QUEUED
    assert "job-lost-0001" in workflow.inputs


def test_a_queued_job_leaves_the_awaiting_index() -> None:
    jobs = FakeJobStore(waiting("job-came-0001", deadline=NOW - timedelta(minutes=5)))
    obj = S3ObjectRef(bucket=UPLOADS, key="uploads/job-came-0001/clip.mp4", size_bytes=10)
    start_jobs([obj], settings=SETTINGS, jobs=jobs, workflow=FakeWorkflow(), media=FakeMediaStore())
    assert jobs.awaiting_past(iso_utc(NOW)) == []
