"""End the jobs whose upload never came, so that no job waits for ever.

An announced upload may never arrive: the client gave up, S3 refused the POST (too large, a
wrong type), the form expired, or a multipart upload's completion was refused. Such a job stays
AWAITING_UPLOAD with nothing to move it on. ``expire_uploads`` runs with the watchdog (every few
minutes) and takes every waiting job whose deadline has passed (its upload link's expiry plus
``settings.upload_grace_s``, from the sparse index ``resources.AWAITING_UPLOAD_INDEX``):

- when its file is in uploads/ after all (the upload notification was lost), the job starts, as
  the start function would have started it;
- otherwise its unfinished multipart upload is dropped, anything under its uploads/ prefix is
  deleted, and it ends REJECTED with code UPLOAD_EXPIRED, which tells the owner what to do; the
  notify function announces it, as finalize has every other end announced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from posereel.jobs import JobError, JobRecord, Stage, iso_utc, upload_prefix, utc_now
from posereel.pipeline.events import NotifyEvent, S3ObjectRef
from posereel.pipeline.ports import FunctionsPort, JobStorePort, MediaStorePort, WorkflowPort
from posereel.pipeline.start import StartOutcome, start_job
from posereel.settings import PipelineSettings

log = logging.getLogger(__name__)

UPLOAD_EXPIRED = "UPLOAD_EXPIRED"
SWEEP_LIMIT = 100  # jobs handled per run; the next run takes the rest


class ExpiryResult(BaseModel):
    expired: list[str]
    started: list[str]  # their file had arrived, the notification had not


def expired_error() -> JobError:
    return JobError(
        code=UPLOAD_EXPIRED,
        message="no file arrived before the upload link expired; announce the upload again",
        stage=Stage.UPLOAD.value,
    )


def expire_uploads(
    *,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    workflow: WorkflowPort,
    functions: FunctionsPort,
    now: datetime,
    clock: Callable[[], str] = utc_now,
) -> ExpiryResult:
    expired: list[str] = []
    started: list[str] = []
    for record in jobs.awaiting_past(iso_utc(now), limit=SWEEP_LIMIT):
        arrived = _arrived(record, media)
        if arrived is not None:
            outcome, _ = start_job(
                arrived, settings=settings, jobs=jobs, workflow=workflow, media=media, clock=clock
            )
            if outcome is StartOutcome.STARTED:
                log.warning("job %s: its upload had arrived unannounced; started", record.job_id)
                started.append(record.job_id)
            continue
        source = record.source
        if record.upload_id is not None and source is not None:
            media.abort_multipart(source.bucket, source.key, upload_id=record.upload_id)
        media.delete_prefix(settings.uploads_bucket, upload_prefix(record.job_id))
        if jobs.mark_expired(record.job_id, expired_error(), finished_at=clock()):
            log.info("job %s: no upload before %s; rejected", record.job_id, record.upload_deadline)
            expired.append(record.job_id)
            functions.invoke_async(
                settings.notify_function, NotifyEvent(job_id=record.job_id).model_dump(mode="json")
            )
    return ExpiryResult(expired=expired, started=started)


def _arrived(record: JobRecord, media: MediaStorePort) -> S3ObjectRef | None:
    source = record.source
    if source is None:
        return None
    head = media.head(source.bucket, source.key)
    if head is None:
        return None
    return S3ObjectRef(bucket=source.bucket, key=source.key, size_bytes=head.size_bytes)
