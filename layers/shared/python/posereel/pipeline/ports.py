"""What the pipeline's services need from AWS, as interfaces (``typing.Protocol``), and the small
value types that cross them. ``posereel.aws`` implements them with boto3; tests with fakes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from posereel.jobs import Delivery, JobError, JobRecord, JobResult, JobStatus, ReelRecord, SourceObject
from posereel.usage import StageUse
from posereel.video import VideoSource
from posereel.webhooks import Answer

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD request says about a stored object."""

    bucket: str
    key: str
    size_bytes: int
    content_type: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """A browser form upload: POST multipart/form-data to ``url`` with ``fields`` first, then the file."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """One part of an S3 multipart upload, as ListParts reports it."""

    part_number: int
    size_bytes: int
    etag: str


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """One workflow execution as Step Functions describes it. ``status`` is RUNNING, SUCCEEDED,
    FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE; ``stopped_at`` an ISO time once it ended."""

    arn: str
    status: str
    error: str | None = None
    cause: str | None = None
    stopped_at: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """A Batch chunk job that has not started (``status`` is Batch's job status). ``created_at``:
    when it was submitted, timezone-aware; None when Batch does not say."""

    job_id: str
    status: str
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class MetricDatum:
    """One CloudWatch data point. ``unit``: a CloudWatch unit ("Seconds", "Count")."""

    name: str
    value: float
    unit: str
    dimensions: Mapping[str, str]
    timestamp: datetime


class JobStorePort(Protocol):
    """The jobs table. Every write is conditional on the item existing (an update never creates
    a half item); the ones returning bool say whether their condition held."""

    def create_if_absent(self, record: JobRecord) -> bool: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def mark_queued(self, job_id: str, *, source: SourceObject) -> bool:
        """AWAITING_UPLOAD -> QUEUED with the uploaded object; False when the job was not awaiting."""
        ...

    def awaiting_past(self, deadline: str, *, limit: int = 100) -> list[JobRecord]:
        """Jobs still AWAITING_UPLOAD whose upload deadline is at or before ``deadline`` (an ISO
        time), at most ``limit`` of them."""
        ...

    def mark_expired(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        """AWAITING_UPLOAD -> REJECTED with the error; False when the job was not awaiting."""
        ...

    def set_execution_arn(self, job_id: str, execution_arn: str) -> bool:
        """Record the job's workflow execution; False when another execution is recorded."""
        ...

    def set_chunks_total(self, job_id: str, chunks_total: int) -> None: ...

    def set_result(self, job_id: str, result: JobResult) -> None: ...

    def add_usage(self, job_id: str, key: str, use: StageUse, *, replace: bool = False) -> bool:
        """Add ``use`` to the job's usage[key] (``replace``: store it as it is); False: no such job."""
        ...

    def mark_failed(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        """Status FAILED with the error, unless the job already ended; False when it had."""
        ...

    def list_page(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """The owner's jobs, newest first, with ``status`` only when given; at most ``limit`` of
        them, and an opaque cursor for the next page (None at the end). A cursor that is not one
        of this owner's raises ValueError."""
        ...

    def mark_deleted(self, job_id: str, *, at: str) -> bool:
        """Record that the owner deleted the job (posereel.pipeline.deletion); False when gone."""
        ...

    def next_reel_id(self, job_id: str, *, limit: int) -> int | None:
        """Give out the job's next reel id (1, 2, ...), only while it is SUCCEEDED, not being
        deleted, and has made fewer than ``limit`` re-cuts; None otherwise."""
        ...

    def put_reel(self, job_id: str, reel: ReelRecord) -> bool:
        """Write reel ``reel.reel_id``'s entry whole; False when the job is gone."""
        ...

    def update_reel(self, job_id: str, reel_id: int, fields: Mapping[str, Any]) -> bool:
        """SET fields of an existing reel entry (and its updated_at), unless the reel already
        ended; False when it had, or when it or its job is gone."""
        ...

    def remove_reel(self, job_id: str, reel_id: int) -> bool:
        """Drop a reel's entry; False when there was none."""
        ...

    def record_notification(
        self,
        job_id: str,
        *,
        announced: Sequence[JobStatus] | None = None,
        deliveries: Sequence[Delivery] | None = None,
    ) -> bool:
        """Write the statuses put on the event bus and/or the webhook deliveries, each whole;
        False when the job is gone."""
        ...

    def delete(self, job_id: str) -> None:
        """Remove the record (nothing happens when there is none)."""
        ...


class MediaStorePort(Protocol):
    """Objects in S3. Missing objects raise posereel.errors.ObjectNotFoundError (``head`` returns None)."""

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def read_bytes(self, bucket: str, key: str, *, length: int | None = None) -> bytes:
        """The object's bytes, or only its first ``length`` bytes."""
        ...

    def download(self, bucket: str, key: str, dest: Path) -> Path: ...

    def read_range(self, bucket: str, key: str, *, start: int, length: int) -> Iterator[bytes]:
        """The bytes [start, start + length) of the object, in pieces as they arrive (never all
        of it in memory)."""
        ...

    def open_video(self, bucket: str, key: str, *, name: str) -> VideoSource:
        """The object as a video that ffprobe and ffmpeg read where it is (in S3: a presigned
        link they read by range requests, so a stage reads the parts it needs and never
        downloads the whole). ObjectNotFoundError when it is gone."""
        ...

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None: ...

    def put_bytes(self, data: bytes, bucket: str, key: str, *, content_type: str) -> None: ...

    def read_model(self, bucket: str, key: str, model_type: type[ModelT]) -> ModelT: ...

    def write_model(self, model: BaseModel, bucket: str, key: str) -> None: ...

    def presigned_post(
        self, bucket: str, key: str, *, size_bytes: int, content_type: str, expires_in_s: int
    ) -> PresignedPost: ...

    def presigned_get(
        self, bucket: str, key: str, *, expires_in_s: int, download_as: str | None = None
    ) -> str:
        """A GET link; with ``download_as`` S3 answers it as an attachment of that name (a
        browser saves it rather than showing it in the page's place)."""
        ...

    def copy(self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, if_match: str | None) -> None:
        """Server-side copy. ``if_match``: the ETag the source must still have (TransientError
        when it changed since, so that a stage copies exactly the object it checked)."""
        ...

    def move(
        self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, tags: Mapping[str, str]
    ) -> None:
        """Copy to dest with exactly these tags, then delete the original."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove one object (nothing happens when it is gone)."""
        ...

    def get_tags(self, bucket: str, key: str) -> dict[str, str]: ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]: ...

    def delete_prefix(self, bucket: str, prefix: str) -> int: ...

    # Multipart uploads of large browser files: the browser PUTs each part to a presigned URL.

    def create_multipart(self, bucket: str, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its upload id."""
        ...

    def presigned_part_urls(
        self, bucket: str, key: str, *, upload_id: str, parts: int, expires_in_s: int
    ) -> list[str]:
        """A presigned PUT URL for each part number 1..parts."""
        ...

    def list_parts(self, bucket: str, key: str, *, upload_id: str) -> list[UploadedPart]:
        """The parts uploaded so far; raises ObjectNotFoundError when the upload is unknown."""
        ...

    def complete_multipart(
        self, bucket: str, key: str, *, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Join the parts (part number, ETag) into the object; ValueError when S3 refuses them."""
        ...

    def abort_multipart(self, bucket: str, key: str, *, upload_id: str) -> None:
        """Drop an unfinished upload and its parts (nothing happens when it is gone)."""
        ...


class WorkflowPort(Protocol):
    """The pipeline's state machine. Executions are named by the job id."""

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        """Start (or find the already started) execution ``name``; returns its ARN."""
        ...

    def describe(self, execution_arn: str) -> ExecutionInfo | None: ...

    def execution_arn(self, name: str) -> str: ...

    def stop(self, execution_arn: str, *, cause: str) -> None:
        """Stop a running execution (nothing happens when it ended or does not exist)."""
        ...


class FunctionsPort(Protocol):
    """Other Lambda functions of the pipeline."""

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        """Hand ``payload`` to ``function_name`` and return at once (an event invocation: Lambda
        queues it, retries a failed run, and sends what still fails to the dead-letter queue)."""
        ...


class EventsPort(Protocol):
    """The environment's EventBridge bus."""

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Put one event (source ``resources.EVENT_SOURCE``); raises TransientError when the bus
        did not take it."""
        ...


class WebhookPort(Protocol):
    """POSTs to the owners' webhook URLs."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> Answer:
        """The receiver's answer; raises posereel.webhooks.DeliveryFailed when there is none (the
        URL or its addresses are refused, no connection, a timeout)."""
        ...


class WorkerQueuesPort(Protocol):
    """The chunk workers' Batch job queues."""

    def unstarted(self, queue: str) -> list[WorkerJob]:
        """Jobs of ``queue`` that have not started running: at least every one that waits for
        capacity (an adapter may leave out states that never do)."""
        ...


class MetricsPort(Protocol):
    """Custom metrics (CloudWatch), in the namespace the adapter was made for."""

    def publish(self, data: Sequence[MetricDatum]) -> None: ...
