"""The public API's operations, with no HTTP in them (functions/posereel_functions/api.py maps
routes and errors onto these).

- ``create_uploads``: a job per announced file (AWAITING_UPLOAD) and a way to upload it: a
  presigned form POST limited to the declared size, or, above a threshold, an S3 multipart upload
  with a presigned PUT per part, finished by ``complete_upload``. The object landing in the
  uploads bucket starts the pipeline (see start.py).
- ``list_jobs``, ``get_job``: the caller's jobs, reconciled with their executions (finalize.py).
- ``job_results``: presigned links to a finished job's files, its segments (with where each one
  starts in the reel) and a light motion-energy series for a timeline.
- ``delete_job``: stop the execution, delete every object of the job, then its record.

Jobs belong to an owner (the API key's or the token's identity); another owner's job is
reported as missing, never as forbidden, so job ids cannot be probed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, field_validator

from posereel.costs import CostEstimate, estimate
from posereel.errors import (
    ConflictError,
    InvalidFieldError,
    ObjectNotFoundError,
    TooLargeError,
)
from posereel.export import reel_starts
from posereel.jobs import (
    AWAITING,
    Delivery,
    JobError,
    JobRecord,
    JobStatus,
    SourceObject,
    Stage,
    Webhook,
    is_job_id,
    iso_utc,
    new_job_id,
    parse_time,
    upload_key,
    utc_now,
)
from posereel.metrics import JitterLevel, jitter_level
from posereel.outputs import RESULT_FILES, RESULT_NAME, THUMBNAILS_DIR, content_type, download_name
from posereel.pipeline.deletion import delete_job_objects
from posereel.pipeline.files import source_key
from posereel.pipeline.finalize import reconcile_job
from posereel.pipeline.ports import JobStorePort, MediaStorePort, ObjectInfo, UploadedPart, WorkflowPort
from posereel.pipeline.public import public_error
from posereel.pipeline.start import expires_at
from posereel.schemas import AnalysisResult, Segment
from posereel.settings import CostBasis, JobOptions, PipelineSettings
from posereel.usage import StageUse
from posereel.video import VIDEO_CONTENT_TYPES
from posereel.webhooks import MAX_URL_CHARS, SIGNATURE_HEADER, url_problem

log = logging.getLogger(__name__)

# A large file's part URLs must outlive a slow upload: sized for 500 kB/s, at most 6 hours (the
# signing credentials of a Lambda function do not last much longer).
SLOW_UPLOAD_BYTES_PER_S = 500_000
MAX_UPLOAD_EXPIRES_IN_S = 6 * 3600
MAX_FILES_PER_REQUEST = 10
MAX_PARTS = 10_000  # S3's limit per multipart upload
MAX_OBJECT_BYTES = 5 * 2**40  # S3's largest object (5 TiB)
TIMELINE_MAX_POINTS = 1000


# --- request and response bodies --------------------------------------------------------------


def _json_integer(value: object) -> object:
    """JSON's integers only: 12 and 12.0 (JSON Schema's integer), never "12" or true."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("a JSON number is required")
    return value


# An integer field of a request body (pydantic alone would take "12", or refuse 12.0).
JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class _Body(BaseModel):
    """A request body: no unknown fields, and no coercion ("12" is no number, 1 no string)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotifyRequest(_Body):
    """Where to POST when the job ends (SUCCEEDED, FAILED or REJECTED)."""

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="an https URL on a public host; it receives {job_id, status, stage, error?, "
        "reel_duration_s?, results_url, job_url, finished_at} as JSON",
    )
    secret: str = Field(
        min_length=16,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description=f"signs each body: {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the raw body>; "
        "never shown again",
    )


class UploadFile(_Body):
    filename: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the file's name, without control characters",
    )
    size_bytes: JsonInt = Field(
        gt=0, le=MAX_OBJECT_BYTES, description="the file's exact size; the upload may not exceed it"
    )
    content_type: str = Field(
        json_schema_extra={"enum": list[JsonValue](sorted(VIDEO_CONTENT_TYPES))},
        max_length=127,
        description="a video type; the form requires exactly this one",
    )

    options: JobOptions | None = Field(None, description="choices for the analysis and the first reel")
    notify: NotifyRequest | None = Field(None, description="a webhook told when the job ends")

    @field_validator("content_type")
    @classmethod
    def _a_video_type(cls, value: str) -> str:
        if value not in VIDEO_CONTENT_TYPES:
            raise ValueError(f"not a video type this service takes: {', '.join(sorted(VIDEO_CONTENT_TYPES))}")
        return value


class CreateUploadsRequest(_Body):
    """POST /uploads body: the files the caller is about to upload."""

    files: list[UploadFile] = Field(min_length=1, max_length=MAX_FILES_PER_REQUEST)


class UploadForm(BaseModel):
    """POST multipart/form-data to ``url``: every field first, the file last (named ``file``)."""

    url: str
    fields: dict[str, str]


class UploadPart(BaseModel):
    part_number: int
    url: str


class MultipartUpload(BaseModel):
    """PUT bytes [(n-1)*part_size_bytes, n*part_size_bytes) of the file to part n's url, keep each
    answer's ETag header, then POST them to /uploads/{job_id}/complete."""

    upload_id: str
    part_size_bytes: int
    parts: list[UploadPart]


class PartView(BaseModel):
    part_number: int
    size_bytes: int
    etag: str


class UploadProgress(BaseModel):
    """Where a multipart upload stands, for a client that lost track (a reload, a crash): the
    parts S3 already holds (keep their ETags for /complete) and fresh links for the others,
    valid as long as the upload itself."""

    upload_id: str
    part_size_bytes: int
    part_count: int
    expires_in_s: int
    uploaded: list[PartView]
    parts: list[UploadPart] = Field(description="links for the parts S3 does not hold yet")


class UploadTicket(BaseModel):
    """One announced file: its job, and exactly one of ``post`` and ``multipart``."""

    job_id: str
    filename: str
    expires_in_s: int
    post: UploadForm | None = None
    multipart: MultipartUpload | None = None


class CreateUploadsResponse(BaseModel):
    uploads: list[UploadTicket]


class CompletedPart(_Body):
    part_number: JsonInt = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="the ETag S3 answered for the part (visible ASCII, quotes included)",
    )


class CompleteUploadRequest(_Body):
    """POST /uploads/{job_id}/complete body: every part's number and the ETag S3 answered."""

    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS)


class SourceView(BaseModel):
    """The uploaded file as its owner named it (never where it is stored)."""

    name: str
    size_bytes: int | None
    content_type: str | None


class NotifyView(BaseModel):
    """The job's webhook (never its secret) and how each POST went."""

    url: str
    deliveries: list[Delivery] = Field(description="the latest POSTs, oldest first")


class ResultView(BaseModel):
    segments: int
    reel_duration_s: float
    primary_track_id: int | None
    video_duration_s: float | None = Field(description="the analysed video's length")


class JobView(BaseModel):
    """A job as its owner sees it: the project's own codes and plain words, no internals."""

    job_id: str
    status: JobStatus
    stage: Stage
    percent: float = Field(description="0-100, from the stage and, while analysing, chunks done")
    chunks_total: int
    chunks_done: int
    devices: dict[str, str] = Field(description="chunk index -> gpu/cpu")
    created_at: str
    updated_at: str
    finished_at: str | None
    stage_seconds: dict[str, float] = Field(description="how long each stage took (the running one: so far)")
    source: SourceView | None
    options: JobOptions | None = Field(description="what the owner chose at upload; null: the defaults")
    error: JobError | None
    result: ResultView | None
    notify: NotifyView | None = Field(description="the webhook given at upload; null: none")
    usage: dict[str, StageUse] = Field(
        description="what each stage used so far (SCAN, VALIDATE, PLAN, ANALYZE_GPU, ANALYZE_CPU, MERGE, "
        "COMPILE; SCAN_JOB, MERGE_JOB, COMPILE_JOB: those stages run as container jobs, for long "
        "uploads; REELS: every re-cut), summed over its runs"
    )
    cost: CostEstimate | None = Field(
        description="an estimate of what the job has cost so far, from the environment's price table "
        "(compute, workflow transitions and S3 requests; not storage or transfer); null before any stage ran"
    )

    @classmethod
    def of(cls, record: JobRecord, *, costs: CostBasis) -> Self:
        view = {
            **record.model_dump(include=set(cls.model_fields) - {"notify", "cost"}),
            "notify": None,
            "cost": job_cost(record, costs),
        }
        if record.error is not None:
            view["error"] = public_error(record.error).model_dump()
        if record.notify is not None:
            view["notify"] = {"url": record.notify.url, "deliveries": record.deliveries}
        return cls.model_validate(view)


def job_cost(record: JobRecord, costs: CostBasis) -> CostEstimate | None:
    """The estimate of what ``record``'s job has cost so far (posereel.costs)."""
    if not record.usage:
        return None
    return estimate(
        record.usage,
        costs,
        chunks=record.chunks_total,
        cpu_chunks=sum(1 for device in record.devices.values() if device == "cpu"),
        video_duration_s=record.result.video_duration_s if record.result else None,
    )


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class ResultFile(BaseModel):
    url: str = Field(
        description="answers as an attachment (Content-Disposition), saved under the video's name"
    )
    name: str
    content_type: str
    size_bytes: int


class Thumbnail(BaseModel):
    segment_index: int
    url: str


class SegmentView(Segment):
    reel_start_s: float | None = Field(description="where the segment's start plays in reel.mp4")


class TimelineTrack(BaseModel):
    track_id: int
    primary: bool
    t0_s: float
    dt_s: float
    energy: list[float | None] = Field(description="body lengths per second; null where the track is absent")


class Timeline(BaseModel):
    start_s: float
    end_s: float
    tracks: list[TimelineTrack]


class PersonView(BaseModel):
    """One tracked person in plain numbers, for people who look rather than read."""

    track_id: int
    primary: bool = Field(description="the main subject: seen longest and moving most")
    first_s: float
    last_s: float
    on_screen_pct: float = Field(description="share of the analysed time the person is seen")
    gaps: int = Field(description="times the person is lost between first and last sighting")
    longest_gap_s: float
    moved_body_lengths: float = Field(description="how far the hips travelled, in the person's own heights")
    jitter: float = Field(description="frame-to-frame shake of the landmarks, in body lengths")
    jitter_level: JitterLevel = Field(
        description="low: steady; medium: some shake; high: small, blurred or half-hidden, or very sudden"
    )


class JobResults(BaseModel):
    """A finished job's files as presigned links, its segments, its people and a light timeline."""

    job_id: str
    expires_in_s: int
    reel_duration_s: float
    primary_track_id: int | None
    files: dict[str, ResultFile] = Field(
        description="reel, overlay, timeline, tracks, segments, metrics, result, segments_csv, "
        "segments_edl, cut (reel.json), clips (clips.zip): those that exist; bundle: all of them "
        "in one zip (results.zip)"
    )
    source: ResultFile | None = Field(
        None,
        description="the video as analysed (the copy the malware scan checked), for playing the "
        "skeletons of tracks.json over it; null once it is gone",
    )
    thumbnails: list[Thumbnail]
    segments: list[SegmentView]
    people: list[PersonView] = Field(description="every tracked person, the main subject first")
    timeline: Timeline


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error answer."""

    code: str = Field(description="FORBIDDEN, NOT_FOUND, INVALID_REQUEST, TOO_LARGE, NOT_READY, ...")
    message: str
    fields: list[FieldProblem] | None = Field(None, description="422 only: the fields at fault")


class Health(BaseModel):
    status: str
    version: str


# --- operations -------------------------------------------------------------------------------


def create_uploads(
    request: CreateUploadsRequest,
    *,
    owner: str,
    api_url: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> CreateUploadsResponse:
    """A job and an upload per file. Every file is checked before any job is made, so a refused
    request leaves nothing behind. ``api_url``: where this API was called (the webhooks' links)."""
    for index, file in enumerate(request.files):
        if file.size_bytes > settings.max_upload_bytes:
            raise TooLargeError(
                f"files.{index}: {file.filename} is {file.size_bytes / 1e6:.1f} MB; "
                f"at most {settings.max_upload_bytes / 1e6:.0f} MB is accepted"
            )
        if file.notify is not None:
            problem = url_problem(file.notify.url, loopback=settings.webhook_loopback)
            if problem:
                raise InvalidFieldError(f"files.{index}.notify.url", f"notify.url: {problem}")
    tickets = [
        _create_upload(file, owner=owner, api_url=api_url, settings=settings, jobs=jobs, media=media)
        for file in request.files
    ]
    return CreateUploadsResponse(uploads=tickets)


def part_size(size_bytes: int, settings: PipelineSettings) -> int:
    """The configured part size, grown where the file would need more than S3's 10,000 parts."""
    return max(settings.multipart_part_bytes, math.ceil(size_bytes / MAX_PARTS))


def upload_expiry_s(size_bytes: int, settings: PipelineSettings) -> int:
    """How long an upload's form or part URLs work: the configured time, longer for big files
    (at SLOW_UPLOAD_BYTES_PER_S, up to MAX_UPLOAD_EXPIRES_IN_S)."""
    if size_bytes <= settings.multipart_threshold_bytes:
        return settings.upload_link_expiry_s
    slow = min(MAX_UPLOAD_EXPIRES_IN_S, math.ceil(size_bytes / SLOW_UPLOAD_BYTES_PER_S))
    return max(settings.upload_link_expiry_s, slow)


def _create_upload(
    file: UploadFile,
    *,
    owner: str,
    api_url: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> UploadTicket:
    job_id = new_job_id()
    bucket, key = settings.uploads_bucket, upload_key(job_id, file.filename)
    multipart = file.size_bytes > settings.multipart_threshold_bytes
    upload_id = media.create_multipart(bucket, key, content_type=file.content_type) if multipart else None
    expires_in_s = upload_expiry_s(file.size_bytes, settings)
    created = datetime.now(UTC)
    now = iso_utc(created)
    record = JobRecord(
        job_id=job_id,
        owner=owner,
        status=JobStatus.AWAITING_UPLOAD,
        stage=Stage.UPLOAD,
        created_at=now,
        updated_at=now,
        source=SourceObject(
            bucket=bucket,
            key=key,
            name=file.filename,
            size_bytes=file.size_bytes,
            content_type=file.content_type,
        ),
        options=file.options,
        notify=Webhook(
            url=file.notify.url,
            secret=file.notify.secret,
            results_url=f"{api_url.rstrip('/')}/jobs/{job_id}/results",
        )
        if file.notify
        else None,
        upload_id=upload_id,
        expires_at=expires_at(settings),
        awaiting=AWAITING,
        upload_deadline=iso_utc(created + timedelta(seconds=expires_in_s + settings.upload_grace_s)),
    )
    if not jobs.create_if_absent(record):
        raise RuntimeError(f"a fresh job id {job_id} exists already")  # uuid4: never in practice
    ticket = UploadTicket(job_id=job_id, filename=file.filename, expires_in_s=expires_in_s)
    if upload_id is None:
        post = media.presigned_post(
            bucket, key, size_bytes=file.size_bytes, content_type=file.content_type, expires_in_s=expires_in_s
        )
        return ticket.model_copy(update={"post": UploadForm(url=post.url, fields=post.fields)})
    size = part_size(file.size_bytes, settings)
    count = math.ceil(file.size_bytes / size)
    urls = media.presigned_part_urls(bucket, key, upload_id=upload_id, parts=count, expires_in_s=expires_in_s)
    parts = [UploadPart(part_number=n, url=url) for n, url in enumerate(urls, start=1)]
    upload = MultipartUpload(upload_id=upload_id, part_size_bytes=size, parts=parts)
    return ticket.model_copy(update={"multipart": upload})


def _pending_multipart(record: JobRecord) -> tuple[SourceObject, str]:
    """The upload object and multipart upload id of a job that waits for its parts
    (ConflictError for any other)."""
    source = record.source
    if record.status != JobStatus.AWAITING_UPLOAD or record.upload_id is None or source is None:
        raise ConflictError(
            f"job {record.job_id} is not waiting for a multipart upload (it is {record.status.value})"
        )
    return source, record.upload_id


def _held_parts(
    media: MediaStorePort, source: SourceObject, upload_id: str, *, job_id: str
) -> list[UploadedPart]:
    """The parts S3 holds (ConflictError when the upload expired or was dropped)."""
    try:
        return media.list_parts(source.bucket, source.key, upload_id=upload_id)
    except ObjectNotFoundError as exc:
        raise ConflictError(
            f"the upload of job {job_id} has expired or was dropped; announce it again"
        ) from exc


def upload_progress(
    job_id: str,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> UploadProgress | None:
    """The parts of a multipart upload that S3 holds, and links for the rest (until the upload's
    own deadline); None when the caller has no such job."""
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    source, upload_id = _pending_multipart(record)
    left_s = 0
    if record.upload_deadline is not None:
        left_s = int((parse_time(record.upload_deadline) - datetime.now(UTC)).total_seconds())
        left_s -= settings.upload_grace_s
    if left_s <= 0:
        raise ConflictError(
            f"the upload of job {job_id} has expired; announce it again", code="UPLOAD_EXPIRED"
        )
    held = _held_parts(media, source, upload_id, job_id=job_id)
    size = part_size(source.size_bytes or 0, settings)
    count = max(1, math.ceil((source.size_bytes or 0) / size))
    urls = media.presigned_part_urls(
        source.bucket, source.key, upload_id=upload_id, parts=count, expires_in_s=left_s
    )
    have = {p.part_number for p in held}
    return UploadProgress(
        upload_id=upload_id,
        part_size_bytes=size,
        part_count=count,
        expires_in_s=left_s,
        uploaded=[PartView(part_number=p.part_number, size_bytes=p.size_bytes, etag=p.etag) for p in held],
        parts=[UploadPart(part_number=n, url=url) for n, url in enumerate(urls, start=1) if n not in have],
    )


def complete_upload(
    job_id: str,
    request: CompleteUploadRequest,
    *,
    caller: str,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> JobRecord | None:
    """Join a multipart upload's parts into the object (which starts the pipeline). None when
    the caller has no such job. Parts adding up to more than the declared size are refused and
    the upload dropped, as the form POST's size condition does for small files."""
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    source, upload_id = _pending_multipart(record)
    numbers = [part.part_number for part in request.parts]
    if numbers != sorted(set(numbers)):
        raise InvalidFieldError("parts", "parts must be listed once each, in ascending part_number order")
    uploaded = _held_parts(media, source, upload_id, job_id=job_id)
    total = sum(part.size_bytes for part in uploaded if part.part_number in set(numbers))
    declared = source.size_bytes or 0
    if total > declared:
        media.abort_multipart(source.bucket, source.key, upload_id=upload_id)
        raise TooLargeError(f"the parts add up to {total} bytes, more than the {declared} announced")
    try:
        media.complete_multipart(
            source.bucket,
            source.key,
            upload_id=upload_id,
            parts=[(part.part_number, part.etag) for part in request.parts],
        )
    except ValueError as exc:
        raise InvalidFieldError("parts", f"S3 refused the parts: {exc}") from exc
    return jobs.get(job_id) or record


def list_jobs(
    *,
    caller: str,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
    jobs: JobStorePort,
    costs: CostBasis,
) -> JobPage:
    try:
        records, next_cursor = jobs.list_page(
            caller, status=status.value if status else None, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise InvalidFieldError("cursor", f"cursor: {exc}") from exc
    views = [JobView.of(r, costs=costs) for r in records if r.deleted_at is None]
    return JobPage(jobs=views, next_cursor=next_cursor)


def get_job(job_id: str, *, caller: str, jobs: JobStorePort, workflow: WorkflowPort) -> JobRecord | None:
    """The caller's job, reconciled with its execution; None when the caller has no such job."""
    record = own_job(job_id, caller, jobs)
    return reconcile_job(record, jobs=jobs, workflow=workflow) if record is not None else None


def job_results(
    job_id: str,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> JobResults | None:
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    if record.status != JobStatus.SUCCEEDED or record.result is None:
        raise ConflictError(
            f"job {job_id} has no results yet (it is {record.status.value})", code="NOT_READY"
        )
    bucket, prefix = settings.results_bucket, record.result.prefix
    expiry = settings.results_link_expiry_s
    stored = {obj.key[len(prefix) :]: obj for obj in media.list_objects(bucket, prefix)}
    analysis = media.read_model(bucket, prefix + RESULT_NAME, AnalysisResult)
    files = file_links(record, RESULT_FILES, stored=stored, prefix=prefix, settings=settings, media=media)
    thumbnails = [
        Thumbnail(
            segment_index=int(name.rsplit("_", 1)[-1].split(".")[0]),
            url=_link(record, prefix + name, settings=settings, media=media),
        )
        for name in sorted(stored)
        if name.startswith(f"{THUMBNAILS_DIR}/segment_") and name.endswith(".jpg")
    ]
    return JobResults(
        job_id=job_id,
        expires_in_s=expiry,
        reel_duration_s=record.result.reel_duration_s,
        primary_track_id=analysis.primary_track_id,
        files=files,
        source=analysed_video(record, settings=settings, media=media),
        thumbnails=thumbnails,
        segments=segments_in_reel(analysis),
        people=people(analysis),
        timeline=timeline(analysis),
    )


def analysed_video(
    record: JobRecord, *, settings: PipelineSettings, media: MediaStorePort
) -> ResultFile | None:
    """A link to the copy of the upload that scan checked and every stage read (saved under the
    name its owner gave it); None once it is gone."""
    copies = media.list_objects(settings.results_bucket, source_key(record.job_id, ""))
    if not copies:
        return None
    copy = copies[0]
    name = record.source.name if record.source else copy.key.rsplit("/", 1)[-1]
    return ResultFile(
        url=media.presigned_get(
            settings.results_bucket,
            copy.key,
            expires_in_s=settings.results_link_expiry_s,
            download_as=name,
        ),
        name=name,
        content_type=copy.content_type
        or (record.source.content_type if record.source else None)
        or content_type(name),
        size_bytes=copy.size_bytes,
    )


def file_links(
    record: JobRecord,
    names: Mapping[str, str],
    *,
    stored: Mapping[str, ObjectInfo],
    prefix: str,
    settings: PipelineSettings,
    media: MediaStorePort,
    reel_id: int = 0,
) -> dict[str, ResultFile]:
    """The files of ``names`` (kind -> file name under ``prefix``) that are ``stored`` (file name
    -> object), each with a presigned link that downloads it under the video's name (and a
    re-cut's number: "dance-reel-2.mp4")."""
    return {
        kind: ResultFile(
            url=_link(record, prefix + name, settings=settings, media=media, reel_id=reel_id),
            name=name,
            content_type=content_type(name),
            size_bytes=stored[name].size_bytes,
        )
        for kind, name in names.items()
        if name in stored
    }


def _link(
    record: JobRecord, key: str, *, settings: PipelineSettings, media: MediaStorePort, reel_id: int = 0
) -> str:
    name = key.rsplit("/", 1)[-1]
    if reel_id:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem}-{reel_id}{dot}{ext}" if dot else f"{name}-{reel_id}"
    saved_as = download_name(record.source.name if record.source else "video", name)
    return media.presigned_get(
        settings.results_bucket, key, expires_in_s=settings.results_link_expiry_s, download_as=saved_as
    )


def people(analysis: AnalysisResult) -> list[PersonView]:
    """Every tracked person's metrics, the main subject first, then by id."""
    summaries = {t.track_id: t for t in analysis.tracks}
    views = [
        PersonView(
            track_id=m.track_id,
            primary=m.track_id == analysis.primary_track_id,
            first_s=summaries[m.track_id].first_s,
            last_s=summaries[m.track_id].last_s,
            on_screen_pct=round(m.coverage_pct, 1),
            gaps=m.gaps,
            longest_gap_s=round(m.longest_gap_s, 2),
            moved_body_lengths=round(m.distance_body_lengths, 1),
            jitter=round(m.jitter, 4),
            jitter_level=jitter_level(m.jitter),
        )
        for m in analysis.metrics
        if m.track_id in summaries
    ]
    return sorted(views, key=lambda v: (not v.primary, v.track_id))


def segments_in_reel(analysis: AnalysisResult) -> list[SegmentView]:
    """Each segment with where its start plays in the reel (None: the reel does not show it)."""
    starts = reel_starts(analysis.reel_windows, analysis.segments)
    return [
        SegmentView(**segment.model_dump(), reel_start_s=starts.get(segment.index))
        for segment in analysis.segments
    ]


def timeline(analysis: AnalysisResult, *, max_points: int = TIMELINE_MAX_POINTS) -> Timeline:
    """Every track's energy on a regular grid of at most ``max_points`` (max of each bin, so short
    bursts stay visible); null where the track is absent for the whole bin."""
    start, end = analysis.range_s
    tracks = []
    for series in analysis.energy:
        if not series.t_s:
            continue
        step = max(1, math.ceil(len(series.t_s) / max_points))
        values: list[float | None] = []
        for i in range(0, len(series.energy), step):
            present = [v for v in series.energy[i : i + step] if v is not None and math.isfinite(v)]
            values.append(round(max(present), 4) if present else None)
        dt = (series.t_s[1] - series.t_s[0]) * step if len(series.t_s) > 1 else 0.0
        tracks.append(
            TimelineTrack(
                track_id=series.track_id,
                primary=series.track_id == analysis.primary_track_id,
                t0_s=round(series.t_s[0], 4),
                dt_s=round(dt, 6),
                energy=values,
            )
        )
    return Timeline(start_s=start, end_s=end, tracks=tracks)


def delete_job(
    job_id: str,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    workflow: WorkflowPort,
) -> bool:
    """Mark the job deleted, stop its execution, delete its upload, intermediate files and
    results, then its record (last, so that a failed delete can be repeated). False when the
    caller has no such job. A stage still running when this returns finds the mark (or the plan
    gone) after its writes and removes what it wrote (posereel.pipeline.deletion). A quarantined
    (infected) upload stays in quarantine: the scanner's evidence is not the owner's to delete."""
    record = own_job(job_id, caller, jobs, include_deleted=True)
    if record is None:
        return False
    jobs.mark_deleted(job_id, at=utc_now())
    if not record.status.terminal:
        arn = record.execution_arn or workflow.execution_arn(job_id)
        execution = workflow.describe(arn)
        if execution is not None and execution.status == "RUNNING":
            workflow.stop(arn, cause=f"job {job_id} was deleted by its owner")
    source = record.source
    if record.upload_id is not None and source is not None:
        media.abort_multipart(source.bucket, source.key, upload_id=record.upload_id)
    deleted = delete_job_objects(job_id, settings=settings, media=media)
    jobs.delete(job_id)
    log.info("deleted job %s and %d objects", job_id, deleted)
    return True


def own_job(
    job_id: str, caller: str, jobs: JobStorePort, *, include_deleted: bool = False
) -> JobRecord | None:
    """The caller's job; one being deleted only when ``include_deleted`` (a repeated DELETE)."""
    if not is_job_id(job_id):
        return None
    record = jobs.get(job_id)
    if record is None or record.owner != caller:
        return None
    return record if include_deleted or record.deleted_at is None else None
