"""Start the pipeline for uploaded objects (S3 "Object Created", by EventBridge or notification).

For each object under uploads/{job_id}/: make sure the job has a QUEUED record (create it for an
upload the API did not announce, owner "anonymous"; move AWAITING_UPLOAD to QUEUED), then start
the workflow execution named by the job id and record its ARN. Events are delivered at least
once: a repeated event finds the execution recorded and does nothing; one that races the first
is stopped by the conditional writes and by Step Functions refusing a second execution of a name.
An object posted for a job whose upload the scan stage took already (a form used twice), for a
job that ended, or under another name than the job's, is deleted: nothing will analyse it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath

from posereel.errors import TransientError
from posereel.jobs import JobRecord, JobStatus, SourceObject, job_id_from_key, utc_now
from posereel.pipeline.events import S3ObjectRef, SourceRef, StartResult, WorkflowInput
from posereel.pipeline.files import source_key
from posereel.pipeline.placement import scan_placement
from posereel.pipeline.ports import JobStorePort, MediaStorePort, WorkflowPort
from posereel.settings import PipelineSettings

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


class StartOutcome(StrEnum):
    STARTED = "started"
    ALREADY_STARTED = "already_started"
    IGNORED = "ignored"


def expires_at(settings: PipelineSettings, *, now: datetime | None = None) -> int:
    """The TTL (epoch seconds) of a job created now."""
    return int(((now or datetime.now(UTC)) + timedelta(days=settings.job_ttl_days)).timestamp())


def start_jobs(
    objects: Sequence[S3ObjectRef],
    *,
    settings: PipelineSettings,
    jobs: JobStorePort,
    workflow: WorkflowPort,
    media: MediaStorePort,
    clock: Callable[[], str] = utc_now,
) -> StartResult:
    started: list[str] = []
    already: list[str] = []
    ignored: list[str] = []
    for obj in objects:
        outcome, job_id = start_job(
            obj, settings=settings, jobs=jobs, workflow=workflow, media=media, clock=clock
        )
        if outcome is StartOutcome.STARTED:
            started.append(job_id or "")
        elif outcome is StartOutcome.ALREADY_STARTED:
            already.append(job_id or "")
        else:
            ignored.append(obj.key)
    return StartResult(started=started, already_started=already, ignored=ignored)


def start_job(
    obj: S3ObjectRef,
    *,
    settings: PipelineSettings,
    jobs: JobStorePort,
    workflow: WorkflowPort,
    media: MediaStorePort,
    clock: Callable[[], str] = utc_now,
) -> tuple[StartOutcome, str | None]:
    job_id = job_id_from_key(obj.key)
    if job_id is None or obj.bucket != settings.uploads_bucket:
        log.info("ignoring s3://%s/%s: not an upload of a job", obj.bucket, obj.key)
        return StartOutcome.IGNORED, None
    source = SourceObject(
        bucket=obj.bucket, key=obj.key, name=PurePosixPath(obj.key).name, size_bytes=obj.size_bytes
    )
    record = jobs.get(job_id)
    if record is None:
        now = clock()
        fresh = JobRecord(
            job_id=job_id,
            owner=ANONYMOUS,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            source=source,
            expires_at=expires_at(settings),
        )
        # Another delivery (or the API) may have created it since our read: then use theirs.
        record = fresh if jobs.create_if_absent(fresh) else jobs.get(job_id)
    if record is None:
        raise TransientError(f"job {job_id} was created and is gone again; retry")
    if record.source is not None and record.source.key != obj.key:
        log.warning("deleting s3://%s/%s: job %s expects %s", obj.bucket, obj.key, job_id, record.source.key)
        media.delete(obj.bucket, obj.key)
        return StartOutcome.IGNORED, job_id
    if record.status == JobStatus.AWAITING_UPLOAD:
        announced = record.source
        queued = source.model_copy(
            update={"name": announced.name, "content_type": announced.content_type} if announced else {}
        )
        if jobs.mark_queued(job_id, source=queued):
            record = record.model_copy(update={"status": JobStatus.QUEUED, "source": queued})
        else:
            record = jobs.get(job_id) or record
    if record.status != JobStatus.QUEUED or record.execution_arn is not None:
        log.info("job %s is %s with execution %s already", job_id, record.status.value, record.execution_arn)
        if record.status.terminal or _accepted(job_id, obj, settings=settings, media=media):
            # Posted again after scan took the upload (or after the job ended): never analysed.
            log.warning("deleting s3://%s/%s: job %s took its upload already", obj.bucket, obj.key, job_id)
            media.delete(obj.bucket, obj.key)
        return StartOutcome.ALREADY_STARTED, job_id

    payload = WorkflowInput(
        job_id=job_id,
        source=SourceRef(bucket=obj.bucket, key=obj.key),
        placement=scan_placement(obj.size_bytes, settings),
    )
    arn = workflow.start(job_id, payload.model_dump(mode="json"))
    if jobs.set_execution_arn(job_id, arn):
        log.info("started job %s: %s", job_id, arn)
        return StartOutcome.STARTED, job_id
    log.info("job %s was started by another delivery", job_id)
    return StartOutcome.ALREADY_STARTED, job_id


def _accepted(job_id: str, obj: S3ObjectRef, *, settings: PipelineSettings, media: MediaStorePort) -> bool:
    """Has the scan stage copied this job's upload out of uploads/ already?"""
    name = PurePosixPath(obj.key).name or "video"
    return media.head(settings.results_bucket, source_key(job_id, name)) is not None
