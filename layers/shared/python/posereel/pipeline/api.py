"""The web API's operations: announce an upload, read a job.

``create_upload`` makes a job (AWAITING_UPLOAD) and a presigned form POST for its upload key;
the object landing in the uploads bucket starts the pipeline (see start.py). ``get_job`` returns
the record reconciled with its workflow execution (see finalize.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from posereel.errors import TooLargeError
from posereel.jobs import (
    JobRecord,
    JobStatus,
    SourceObject,
    Stage,
    is_job_id,
    new_job_id,
    upload_key,
    utc_now,
)
from posereel.pipeline.finalize import reconcile_job
from posereel.pipeline.ports import JobStorePort, MediaStorePort, WorkflowPort
from posereel.pipeline.start import expires_at
from posereel.settings import PipelineSettings

UPLOAD_EXPIRES_IN_S = 15 * 60


class CreateUploadRequest(BaseModel):
    """POST /uploads body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: str = Field(min_length=1, max_length=255)
    size_bytes: int = Field(gt=0, description="the file's exact size; the upload may not exceed it")
    content_type: str = Field(pattern=r"^video/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$", max_length=127)


class UploadForm(BaseModel):
    url: str
    fields: dict[str, str]


class CreateUploadResponse(BaseModel):
    """POST /uploads response (201): POST the file as multipart/form-data to upload.url, with
    upload.fields first and the file last, within expires_in_s."""

    job_id: str
    upload: UploadForm
    expires_in_s: int


def create_upload(
    request: CreateUploadRequest,
    *,
    owner: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    expires_in_s: int = UPLOAD_EXPIRES_IN_S,
) -> CreateUploadResponse:
    if request.size_bytes > settings.max_upload_bytes:
        raise TooLargeError(
            f"{request.filename} is {request.size_bytes / 1e6:.1f} MB; "
            f"at most {settings.max_upload_bytes / 1e6:.0f} MB is accepted"
        )
    job_id = new_job_id()
    key = upload_key(job_id, request.filename)
    now = utc_now()
    record = JobRecord(
        job_id=job_id,
        owner=owner,
        status=JobStatus.AWAITING_UPLOAD,
        stage=Stage.UPLOAD,
        created_at=now,
        updated_at=now,
        source=SourceObject(
            bucket=settings.uploads_bucket,
            key=key,
            name=request.filename,
            size_bytes=request.size_bytes,
            content_type=request.content_type,
        ),
        expires_at=expires_at(settings),
    )
    if not jobs.create_if_absent(record):
        raise RuntimeError(f"a fresh job id {job_id} exists already")  # uuid4: never in practice
    post = media.presigned_post(
        settings.uploads_bucket,
        key,
        size_bytes=request.size_bytes,
        content_type=request.content_type,
        expires_in_s=expires_in_s,
    )
    return CreateUploadResponse(
        job_id=job_id, upload=UploadForm(url=post.url, fields=post.fields), expires_in_s=expires_in_s
    )


def get_job(
    job_id: str, *, caller: str | None, jobs: JobStorePort, workflow: WorkflowPort
) -> JobRecord | None:
    """The job, reconciled with its execution; None when there is none or it is someone else's
    (``caller`` None: an unauthenticated API, where the unguessable job id is the secret)."""
    if not is_job_id(job_id):
        return None
    record = jobs.get(job_id)
    if record is None or (caller is not None and record.owner != caller):
        return None
    return reconcile_job(record, jobs=jobs, workflow=workflow)
