"""In-memory fakes of the pipeline's ports (posereel.pipeline.ports), for unit tests of services.

They keep the semantics the services rely on (conditional writes, idempotent starts, missing
objects raising ObjectNotFoundError) and record what was done, so tests can assert on it."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from posereel.errors import ObjectNotFoundError, TransientError
from posereel.jobs import (
    Delivery,
    JobError,
    JobRecord,
    JobResult,
    JobStatus,
    ReelRecord,
    SourceObject,
    utc_now,
)
from posereel.pipeline.ports import (
    ExecutionInfo,
    MetricDatum,
    ObjectInfo,
    PresignedPost,
    UploadedPart,
    WorkerJob,
)
from posereel.pipeline.scan import ScanVerdict
from posereel.usage import StageUse
from posereel.webhooks import Answer
from tests.builders import SETTINGS

ModelT = TypeVar("ModelT", bound=BaseModel)


class FakeJobStore:
    def __init__(self, *records: JobRecord) -> None:
        self.records: dict[str, JobRecord] = {r.job_id: r for r in records}
        self.writes = 0

    def _set(self, job_id: str, **update: Any) -> bool:
        if job_id not in self.records:
            return False
        self.records[job_id] = self.records[job_id].model_copy(update=update)
        self.writes += 1
        return True

    def create_if_absent(self, record: JobRecord) -> bool:
        if record.job_id in self.records:
            return False
        self.records[record.job_id] = record
        self.writes += 1
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def mark_queued(self, job_id: str, *, source: SourceObject) -> bool:
        record = self.records.get(job_id)
        if record is None or record.status != JobStatus.AWAITING_UPLOAD:
            return False
        return self._set(job_id, status=JobStatus.QUEUED, source=source, awaiting=None, upload_deadline=None)

    def awaiting_past(self, deadline: str, *, limit: int = 100) -> list[JobRecord]:
        waiting = [
            r
            for r in self.records.values()
            if r.awaiting and r.upload_deadline and r.upload_deadline <= deadline
        ]
        return sorted(waiting, key=lambda r: r.upload_deadline or "")[:limit]

    def mark_expired(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        record = self.records.get(job_id)
        if record is None or record.status != JobStatus.AWAITING_UPLOAD:
            return False
        return self._set(
            job_id,
            status=JobStatus.REJECTED,
            error=error,
            finished_at=finished_at,
            awaiting=None,
            upload_deadline=None,
        )

    def set_execution_arn(self, job_id: str, execution_arn: str) -> bool:
        record = self.records.get(job_id)
        if record is None or record.execution_arn not in (None, execution_arn):
            return False
        return self._set(job_id, execution_arn=execution_arn)

    def set_chunks_total(self, job_id: str, chunks_total: int) -> None:
        if not self._set(job_id, chunks_total=chunks_total):
            raise ObjectNotFoundError(f"no job {job_id}")

    def set_result(self, job_id: str, result: JobResult) -> None:
        if not self._set(job_id, result=result):
            raise ObjectNotFoundError(f"no job {job_id}")

    def add_usage(self, job_id: str, key: str, use: StageUse, *, replace: bool = False) -> bool:
        record = self.records.get(job_id)
        if record is None:
            return False
        old = record.usage.get(key)
        new = use if replace or old is None else old.plus(use)
        return self._set(job_id, usage={**record.usage, key: new})

    def mark_failed(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        record = self.records.get(job_id)
        if record is None or record.status.terminal:
            return False
        return self._set(job_id, status=JobStatus.FAILED, error=error, finished_at=finished_at)

    def list_page(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """Newest first; the cursor (opaque to callers) names the owner and the last job given."""
        mine = sorted(
            (r for r in self.records.values() if r.owner == owner and status in (None, r.status.value)),
            key=lambda r: (r.created_at, r.job_id),
            reverse=True,
        )
        if cursor is not None:
            after = _decode_cursor(cursor, owner)
            mine = [r for r in mine if (r.created_at, r.job_id) < after]
        page = mine[:limit]
        more = len(mine) > limit
        return page, _encode_cursor(owner, page[-1]) if more else None

    def mark_deleted(self, job_id: str, *, at: str) -> bool:
        return self._set(job_id, deleted_at=at)

    def next_reel_id(self, job_id: str, *, limit: int) -> int | None:
        record = self.records.get(job_id)
        if (
            record is None
            or record.status != JobStatus.SUCCEEDED
            or record.deleted_at
            or record.reels_made >= limit
        ):
            return None
        self._set(job_id, reels_made=record.reels_made + 1)
        return record.reels_made + 1

    def put_reel(self, job_id: str, reel: ReelRecord) -> bool:
        record = self.records.get(job_id)
        return record is not None and self._set(job_id, reels={**record.reels, str(reel.reel_id): reel})

    def update_reel(self, job_id: str, reel_id: int, fields: Mapping[str, Any]) -> bool:
        record = self.records.get(job_id)
        reel = record.reels.get(str(reel_id)) if record is not None else None
        if record is None or reel is None or reel.status.terminal:
            return False
        changed = ReelRecord.model_validate({**reel.model_dump(), **fields, "updated_at": utc_now()})
        return self._set(job_id, reels={**record.reels, str(reel_id): changed})

    def remove_reel(self, job_id: str, reel_id: int) -> bool:
        record = self.records.get(job_id)
        if record is None or str(reel_id) not in record.reels:
            return False
        return self._set(job_id, reels={k: v for k, v in record.reels.items() if k != str(reel_id)})

    def record_notification(
        self,
        job_id: str,
        *,
        announced: Sequence[JobStatus] | None = None,
        deliveries: Sequence[Delivery] | None = None,
    ) -> bool:
        update: dict[str, Any] = {}
        if announced is not None:
            update["announced"] = list(announced)
        if deliveries is not None:
            update["deliveries"] = list(deliveries)
        return self._set(job_id, **update)

    def delete(self, job_id: str) -> None:
        self.records.pop(job_id, None)


def _encode_cursor(owner: str, last: JobRecord) -> str:
    plain = json.dumps([owner, last.created_at, last.job_id])
    return base64.urlsafe_b64encode(plain.encode()).decode()


def _decode_cursor(cursor: str, owner: str) -> tuple[str, str]:
    try:
        cursor_owner, created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor this store gave out") from exc
    if cursor_owner != owner:
        raise ValueError("a cursor of another owner")
    return created_at, job_id


@dataclass
class StoredObject:
    data: bytes
    content_type: str = "binary/octet-stream"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class PendingUpload:
    """An unfinished multipart upload: part number -> bytes."""

    bucket: str
    key: str
    content_type: str
    parts: dict[int, bytes] = field(default_factory=dict)


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class FakeMediaStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.downloads: list[tuple[str, str]] = []
        self.uploads: dict[str, PendingUpload] = {}
        self.aborted: list[str] = []
        self.writes: list[str] = []  # keys written by write_model
        self._upload_ids = itertools.count(1)
        self._videos: Path | None = None
        self._opened = itertools.count(1)

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "video/mp4") -> None:
        self.objects[(bucket, key)] = StoredObject(data, content_type)

    def _get(self, bucket: str, key: str) -> StoredObject:
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist") from None

    def keys(self, bucket: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        obj = self.objects.get((bucket, key))
        if obj is None:
            return None
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=len(obj.data),
            content_type=obj.content_type,
            etag=_etag(obj.data),
        )

    def read_bytes(self, bucket: str, key: str, *, length: int | None = None) -> bytes:
        data = self._get(bucket, key).data
        return data[:length] if length else data

    def download(self, bucket: str, key: str, dest: Path) -> Path:
        data = self._get(bucket, key).data
        self.downloads.append((bucket, key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def read_range(self, bucket: str, key: str, *, start: int, length: int) -> Iterator[bytes]:
        data = self._get(bucket, key).data[start : start + length]
        self.downloads.append((bucket, key))
        for at in range(0, len(data), 1024):
            yield data[at : at + 1024]

    def open_video(self, bucket: str, key: str, *, name: str) -> Path:
        """A local copy (the fake has no HTTP server to read from), counted as a read."""
        if self._videos is None:
            self._videos = Path(tempfile.mkdtemp(prefix="fake-media-"))
            weakref.finalize(self, shutil.rmtree, self._videos, True)
        return self.download(bucket, key, self._videos / str(next(self._opened)) / name)

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None:
        self.put(bucket, key, Path(path).read_bytes(), content_type)

    def put_bytes(self, data: bytes, bucket: str, key: str, *, content_type: str) -> None:
        self.put(bucket, key, data, content_type)

    def read_model(self, bucket: str, key: str, model_type: type[ModelT]) -> ModelT:
        return model_type.model_validate_json(self._get(bucket, key).data)

    def write_model(self, model: BaseModel, bucket: str, key: str) -> None:
        self.writes.append(key)
        self.put(bucket, key, model.model_dump_json().encode(), "application/json")

    def presigned_post(
        self, bucket: str, key: str, *, size_bytes: int, content_type: str, expires_in_s: int
    ) -> PresignedPost:
        return PresignedPost(
            url=f"https://{bucket}.example/",
            fields={"key": key, "Content-Type": content_type, "max": str(size_bytes)},
        )

    def presigned_get(
        self, bucket: str, key: str, *, expires_in_s: int, download_as: str | None = None
    ) -> str:
        url = f"https://{bucket}.example/{key}"
        return url if download_as is None else f"{url}?download-as={quote(download_as)}"

    def copy(self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, if_match: str | None) -> None:
        obj = self._get(bucket, key)
        if if_match is not None and if_match != _etag(obj.data):
            raise TransientError(f"s3://{bucket}/{key} changed while it was copied")
        self.objects[(dest_bucket, dest_key)] = StoredObject(obj.data, obj.content_type)

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def move(
        self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, tags: Mapping[str, str]
    ) -> None:
        obj = self._get(bucket, key)
        self.objects[(dest_bucket, dest_key)] = StoredObject(obj.data, obj.content_type, dict(tags))
        del self.objects[(bucket, key)]

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        return dict(self._get(bucket, key).tags)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [k for k in self.keys(bucket) if k.startswith(prefix)]

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        return [info for key in self.list_keys(bucket, prefix) if (info := self.head(bucket, key))]

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        keys = self.list_keys(bucket, prefix)
        for key in keys:
            del self.objects[(bucket, key)]
        return len(keys)

    def create_multipart(self, bucket: str, key: str, *, content_type: str) -> str:
        upload_id = f"upload-{next(self._upload_ids)}"
        self.uploads[upload_id] = PendingUpload(bucket, key, content_type)
        return upload_id

    def presigned_part_urls(
        self, bucket: str, key: str, *, upload_id: str, parts: int, expires_in_s: int
    ) -> list[str]:
        return [
            f"https://{bucket}.example/{key}?uploadId={upload_id}&partNumber={n}" for n in range(1, parts + 1)
        ]

    def upload_part(self, upload_id: str, part_number: int, data: bytes) -> str:
        """What the browser's PUT to a part URL does; returns the ETag S3 answers."""
        self._pending(upload_id).parts[part_number] = data
        return _etag(data)

    def list_parts(self, bucket: str, key: str, *, upload_id: str) -> list[UploadedPart]:
        parts = self._pending(upload_id).parts
        return [UploadedPart(n, len(parts[n]), _etag(parts[n])) for n in sorted(parts)]

    def complete_multipart(
        self, bucket: str, key: str, *, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        pending = self._pending(upload_id)
        for number, etag in parts:
            if number not in pending.parts or _etag(pending.parts[number]) != etag:
                raise ValueError(f"part {number} was not uploaded with ETag {etag}")
        data = b"".join(pending.parts[number] for number, _ in parts)
        self.put(pending.bucket, pending.key, data, pending.content_type)
        del self.uploads[upload_id]

    def abort_multipart(self, bucket: str, key: str, *, upload_id: str) -> None:
        self.aborted.append(upload_id)
        self.uploads.pop(upload_id, None)

    def _pending(self, upload_id: str) -> PendingUpload:
        try:
            return self.uploads[upload_id]
        except KeyError:
            raise ObjectNotFoundError(f"no multipart upload {upload_id}") from None


class FakeWorkflow:
    STATE_MACHINE = SETTINGS.state_machine_arn

    def __init__(self) -> None:
        self.executions: dict[str, ExecutionInfo] = {}
        self.inputs: dict[str, Mapping[str, Any]] = {}
        self.start_calls = 0
        self.stopped: list[str] = []

    def execution_arn(self, name: str) -> str:
        return self.STATE_MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        self.start_calls += 1
        arn = self.execution_arn(name)
        if name not in self.executions:
            self.executions[name] = ExecutionInfo(arn=arn, status="RUNNING")
            self.inputs[name] = dict(payload)
        return arn

    def end(self, name: str, status: str, *, error: str | None = None, cause: str | None = None) -> None:
        self.executions[name] = ExecutionInfo(
            arn=self.execution_arn(name),
            status=status,
            error=error,
            cause=cause,
            stopped_at="2026-01-01T00:00:00.000Z",
        )

    def describe(self, execution_arn: str) -> ExecutionInfo | None:
        return next((e for e in self.executions.values() if e.arn == execution_arn), None)

    def stop(self, execution_arn: str, *, cause: str) -> None:
        self.stopped.append(execution_arn)
        for name, execution in self.executions.items():
            if execution.arn == execution_arn and execution.status == "RUNNING":
                self.end(name, "ABORTED", cause=cause)


class FakeEvents:
    """The event bus: what was put, in order; ``fail`` makes the next puts raise."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = 0

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            raise TransientError("the bus did not take the event")
        self.events.append((detail_type, dict(detail)))


class FakeWebhooks:
    """A webhook receiver: answers ``statuses`` in turn (then the last one again); an entry that
    is an exception is raised instead. Keeps every request."""

    def __init__(self, *statuses: int | Exception) -> None:
        self.statuses = list(statuses) or [200]
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> Answer:
        self.requests.append((url, body, dict(headers)))
        outcome = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(outcome, Exception):
            raise outcome
        return Answer(status=outcome)


class FakeFunctions:
    """Event invocations, kept in order; ``fail`` makes the next one raise TransientError."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        if self.fail:
            raise TransientError("Lambda is throttling")
        self.events.append((function_name, dict(payload)))


class FakeScanner:
    engine = "FakeAV 1.0"

    def __init__(self, infected: Mapping[bytes, str] | None = None) -> None:
        self.infected = dict(infected or {})
        self.scanned: list[str] = []

    def scan(self, data: Iterable[bytes], *, name: str) -> ScanVerdict:
        self.scanned.append(name)
        signature = self.infected.get(b"".join(data))
        return ScanVerdict(clean=signature is None, signature=signature)


class FakeWorkerQueues:
    """Queue -> the jobs it holds, in any state (the service decides which ones wait)."""

    def __init__(self, jobs: Mapping[str, Sequence[WorkerJob]] | None = None) -> None:
        self.jobs = {queue: list(held) for queue, held in (jobs or {}).items()}
        self.asked: list[str] = []

    def unstarted(self, queue: str) -> list[WorkerJob]:
        self.asked.append(queue)
        return list(self.jobs.get(queue, []))


class FakeMetrics:
    def __init__(self) -> None:
        self.calls: list[list[MetricDatum]] = []

    def publish(self, data: Sequence[MetricDatum]) -> None:
        self.calls.append(list(data))

    def value(self, name: str, **dimensions: str) -> float:
        """The one published value of metric ``name`` with exactly these dimensions."""
        (found,) = [
            d.value
            for call in self.calls
            for d in call
            if d.name == name and dict(d.dimensions) == dimensions
        ]
        return found
