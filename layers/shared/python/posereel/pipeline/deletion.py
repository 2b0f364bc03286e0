"""Deleting a job so that nothing of it is left behind, however late a stage finishes.

A stage may outlive its execution: DELETE stops the workflow, but a Lambda invocation or a Batch
job already running goes on and writes its files after the delete listed the job's objects.
So the delete and the writers follow one order:

1. the delete marks the record (``deleted_at``), then removes work/{job}/plan.json, then every
   object of the job, and the record last;
2. a writer checks, after its writes, that the job is still wanted: scan, plan and compile by
   the record (present and not marked), merge and the chunk worker by the plan. When it is not,
   the writer removes what it wrote.

Either the check ran before the mark (or the plan's removal), and then the delete's listing,
which comes after, sees what was written; or it ran after, and the writer removes its own
writes (each writer its own, so none needs access beyond what it writes). S3 and the table's
reads are strongly consistent, so no third case exists. The scanner's evidence in quarantine is
not the owner's to delete and stays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from posereel.errors import JobDeletedError
from posereel.jobs import results_prefix, upload_prefix, work_prefix
from posereel.pipeline.files import plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.settings import PipelineSettings

log = logging.getLogger(__name__)


def delete_job_objects(job_id: str, *, settings: PipelineSettings, media: MediaStorePort) -> int:
    """Delete the job's upload, work files and results, the plan first; returns how many."""
    media.delete(settings.results_bucket, plan_key(job_id))
    return (
        media.delete_prefix(settings.uploads_bucket, upload_prefix(job_id))
        + media.delete_prefix(settings.results_bucket, work_prefix(job_id))
        + media.delete_prefix(settings.results_bucket, results_prefix(job_id))
    )


def job_wanted(job_id: str, *, jobs: JobStorePort) -> bool:
    record = jobs.get(job_id)
    return record is not None and record.deleted_at is None


def plan_present(job_id: str, *, bucket: str, media: MediaStorePort) -> bool:
    """For the stages without table access: the delete removes the plan before anything else."""
    return media.head(bucket, plan_key(job_id)) is not None


def raise_if_deleted(
    job_id: str,
    *,
    wanted: bool,
    media: MediaStorePort,
    bucket: str,
    keys: Sequence[str] = (),
    prefix: str | None = None,
    stage: str,
) -> None:
    """Call after a stage's writes (``keys``, or everything under ``prefix``, in ``bucket``) with
    the answer of job_wanted or plan_present, asked after them. When the job is no longer wanted,
    remove those writes (the delete's listing may have missed them; all else it saw) and raise
    JobDeletedError."""
    if wanted:
        return
    for key in keys:
        media.delete(bucket, key)
    removed = len(keys) + (media.delete_prefix(bucket, prefix) if prefix is not None else 0)
    log.warning("job %s was deleted while %s ran: removed the %d objects it wrote", job_id, stage, removed)
    raise JobDeletedError(f"job {job_id} was deleted while {stage} ran")
