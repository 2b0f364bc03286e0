"""The job record: what a client polls while its video goes through the pipeline.

Plain data and rules, no AWS. The workflow writes most fields with ``dynamodb:updateItem`` states
(stage starts, chunk progress, terminal status); handlers write the rest through the job store.
Percent and per-stage durations are derived from what is stored, never stored themselves.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from posereel.outputs import reel_dir
from posereel.schemas import SCHEMA_VERSION
from posereel.settings import JobOptions, ReelRequest
from posereel.usage import StageUse


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED)


class Stage(StrEnum):
    UPLOAD = "UPLOAD"
    SCAN = "SCAN"
    VALIDATE = "VALIDATE"
    PLAN = "PLAN"
    ANALYZE = "ANALYZE"
    MERGE = "MERGE"
    COMPILE = "COMPILE"
    DONE = "DONE"


# Share of the whole job each stage represents, for the progress bar (sums to 100).
STAGE_WEIGHTS: dict[Stage, float] = {
    Stage.UPLOAD: 0,
    Stage.SCAN: 4,
    Stage.VALIDATE: 3,
    Stage.PLAN: 3,
    Stage.ANALYZE: 75,
    Stage.MERGE: 5,
    Stage.COMPILE: 10,
    Stage.DONE: 0,
}
STAGE_ORDER = list(STAGE_WEIGHTS)

_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{7,63}$")


AWAITING = "upload"  # the value of ``awaiting`` on every waiting record


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID.match(value))


def utc_now() -> str:
    return iso_utc(datetime.now(UTC))


def iso_utc(value: datetime) -> str:
    """One spelling for every time of a record: UTC, milliseconds, ``Z``."""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class JobError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str
    message: str
    stage: str | None = None


class SourceObject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: str
    key: str
    name: str
    size_bytes: int | None = None
    content_type: str | None = None


class JobResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prefix: str
    segments: int
    reel_duration_s: float
    primary_track_id: int | None = None
    video_duration_s: float | None = None


class ReelStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (ReelStatus.SUCCEEDED, ReelStatus.FAILED)


# A reel whose run never ended by its deadline (its function timed out on every attempt, or its
# event was lost) reads FAILED with this code; the record keeps what was last written.
REEL_TIMED_OUT = "REEL_TIMED_OUT"


class ReelRecord(BaseModel):
    """One re-cut of a job (``POST /jobs/{id}/reels``), kept in its job's record under
    ``reels.N``; reel 0, the first reel, is the job's own result and has no entry."""

    model_config = ConfigDict(extra="ignore")

    reel_id: int = Field(ge=1)
    status: ReelStatus
    request: ReelRequest
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    deadline: str = Field(description="ISO time after which a reel that has not ended has failed")
    finished_at: str | None = None
    error: JobError | None = None
    duration_s: float | None = None
    segments: int | None = None

    def seen_at(self, now: datetime) -> ReelRecord:
        """The reel as it stands at ``now``: past its deadline without an end, it has failed."""
        if self.status.terminal or now <= parse_time(self.deadline):
            return self
        return self.model_copy(
            update={
                "status": ReelStatus.FAILED,
                "finished_at": self.deadline,
                "error": JobError(
                    code=REEL_TIMED_OUT, message="the re-cut did not finish in time; try again", stage="REEL"
                ),
            }
        )


class Webhook(BaseModel):
    """Where the owner asked to be told a job ended (``notify`` at upload). The secret signs each
    body and is never shown again."""

    model_config = ConfigDict(extra="ignore")

    url: str
    secret: str
    results_url: str = Field(description="the job's results in the API the upload was announced on")


class Delivery(BaseModel):
    """One POST of a webhook, as it went."""

    model_config = ConfigDict(extra="ignore")

    job_status: JobStatus = Field(description="the terminal status it announced")
    attempt: int = Field(ge=1)
    at: str
    ok: bool
    http_status: int | None = None
    error: str | None = None
    duration_ms: int


class JobRecord(BaseModel):
    """One item of the jobs table."""

    model_config = ConfigDict(extra="ignore")

    schema_version: str = SCHEMA_VERSION
    job_id: str
    owner: str = "anonymous"
    status: JobStatus
    stage: Stage = Stage.UPLOAD
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    source: SourceObject | None = None
    options: JobOptions | None = Field(
        None, description="the owner's choices for the analysis and first reel"
    )
    execution_arn: str | None = None
    upload_id: str | None = Field(
        None, description="the S3 multipart upload of a large file, until it completes"
    )
    chunks_total: int = 0
    chunks_done: int = 0
    devices: dict[str, str] = Field(default_factory=dict, description="chunk index -> gpu/cpu")
    stage_started: dict[str, str] = Field(default_factory=dict, description="stage -> ISO time it began")
    finished_at: str | None = None
    error: JobError | None = None
    result: JobResult | None = None
    expires_at: int | None = Field(None, description="epoch seconds; the table's TTL attribute")
    # Only while AWAITING_UPLOAD (the sparse index resources.AWAITING_UPLOAD_INDEX): a constant
    # partition value, and the ISO time after which the watchdog stops waiting.
    awaiting: str | None = None
    upload_deadline: str | None = None
    deleted_at: str | None = Field(
        None, description="the owner deleted the job: its objects are being removed, then this record"
    )
    reels: dict[str, ReelRecord] = Field(default_factory=dict, description="re-cuts by reel id (1, 2, ...)")
    reels_made: int = Field(0, description="re-cuts asked for so far: the last reel id given out")
    notify: Webhook | None = None
    deliveries: list[Delivery] = Field(default_factory=list, description="webhook POSTs, the latest last")
    announced: list[JobStatus] = Field(
        default_factory=list, description="terminal statuses put on the event bus (each once)"
    )
    usage: dict[str, StageUse] = Field(
        default_factory=dict, description="what each stage used (posereel.usage.USAGE_KEYS), over its runs"
    )

    @field_validator("created_at", "updated_at", "finished_at")
    @classmethod
    def _one_time_format(cls, value: str | None) -> str | None:
        # The workflow writes Step Functions' $$.State.EnteredTime, which may read +00:00.
        return iso_utc(parse_time(value)) if value else value

    @field_validator("stage_started")
    @classmethod
    def _one_time_format_each(cls, value: dict[str, str]) -> dict[str, str]:
        return {stage: iso_utc(parse_time(t)) for stage, t in value.items()}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 100.0
        done = 0.0
        for stage in STAGE_ORDER:
            if stage == self.stage:
                if stage == Stage.ANALYZE and self.chunks_total:
                    done += STAGE_WEIGHTS[stage] * min(1.0, self.chunks_done / self.chunks_total)
                break
            done += STAGE_WEIGHTS[stage]
        return round(min(done, 99.0), 1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_seconds(self) -> dict[str, float]:
        """How long each stage took (the running one: so far), from the stage start times."""
        starts = sorted(
            ((s, parse_time(t)) for s, t in self.stage_started.items() if s in Stage.__members__),
            key=lambda st: STAGE_ORDER.index(Stage(st[0])),
        )
        out: dict[str, float] = {}
        end_of_last = parse_time(self.finished_at) if self.finished_at else None
        for i, (stage, began) in enumerate(starts):
            ended = starts[i + 1][1] if i + 1 < len(starts) else end_of_last
            if ended is not None:
                out[stage] = round((ended - began).total_seconds(), 3)
        return out


def upload_key(job_id: str, filename: str) -> str:
    """Where a job's upload lives; the start function reads the job id back from it."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "video"
    return f"{upload_prefix(job_id)}{safe[:120]}"


def job_id_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "uploads" and is_job_id(parts[1]) and parts[2]:
        return parts[1]
    return None


def upload_prefix(job_id: str) -> str:
    return f"uploads/{job_id}/"


def results_prefix(job_id: str) -> str:
    return f"results/{job_id}/"


def reel_prefix(job_id: str, reel_id: int) -> str:
    """Where reel ``reel_id``'s files live: the results' own folder for reel 0 (the first reel),
    results/{job_id}/reels/N/ for a re-cut."""
    return results_prefix(job_id) + (reel_dir(reel_id) if reel_id else "")


def work_prefix(job_id: str) -> str:
    return f"work/{job_id}/"
