"""The shapes of every Lambda event and result of the pipeline (the contracts with the workflow
file, S3/EventBridge and the web client), and S3 event parsing.

Events from the workflow are parsed with ``extra="ignore"``: a state may pass more than a stage
reads, and that must not break the stage. Results are ``extra="forbid"``: they are what we send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from posereel.schemas import VideoInfo


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(_Event):
    """Where a job's uploaded video lives."""

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)


class JobSourceEvent(_Event):
    """Input of the stages that read the upload: scan (the upload as posted), then validate and
    plan (the copy scan accepted)."""

    job_id: str = Field(min_length=1)
    source: SourceRef


class ValidateEvent(JobSourceEvent):
    pass


class ScanEvent(JobSourceEvent):
    pass


class PlanEvent(JobSourceEvent):
    pass


class JobEvent(_Event):
    """Input of the stages that work from the plan: merge, compile."""

    job_id: str = Field(min_length=1)


class MergeEvent(JobEvent):
    pass


class CompileEvent(JobEvent):
    pass


class ReelEvent(JobEvent):
    """Input of the recut function (invoked by the API, asynchronously): cut reel ``reel_id``."""

    reel_id: int = Field(ge=1)


class NotifyEvent(JobEvent):
    """Input of the notify function (invoked by finalize and the watchdog): job ``job_id`` ended."""


# Where a stage runs (posereel.pipeline.placement): its Lambda, or a container job first.
Placement = Literal["lambda", "container"]


class ScanPlacement(_Result):
    scan: Placement = "lambda"


class AnalysisPlacement(_Result):
    merge: Placement = "lambda"
    compile: Placement = "lambda"


class WorkflowInput(_Result):
    """The state machine's input; the execution is named by ``job_id``."""

    job_id: str
    source: SourceRef
    placement: ScanPlacement = ScanPlacement()


# --- results ---------------------------------------------------------------------------------


class VideoSummary(_Result):
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool
    size_bytes: int | None

    @classmethod
    def of(cls, info: VideoInfo) -> VideoSummary:
        return cls(
            duration_s=info.duration_s,
            width=info.width,
            height=info.height,
            fps=info.fps,
            codec=info.codec,
            has_audio=info.has_audio,
            size_bytes=info.size_bytes,
        )


class ValidateResult(_Result):
    video: VideoSummary


class ScanResult(_Result):
    clean: Literal[True] = True
    engine: str
    source: SourceRef  # the accepted copy, which every later stage reads


class ChunkRef(_Result):
    """One item of the workflow's Map over chunks."""

    index: int = Field(ge=0)


class PlanResult(_Result):
    plan_key: str
    chunks: list[ChunkRef]
    placement: AnalysisPlacement = AnalysisPlacement()


class MergeResult(_Result):
    segments: int
    tracks: int


class CompileResult(_Result):
    reel_key: str | None
    reel_duration_s: float


class ReelResult(_Result):
    status: str
    reel_duration_s: float | None = None


class NotifyResult(_Result):
    job_id: str
    status: str | None = Field(description="the status announced; None when the job had not ended")
    announced: bool = Field(False, description="put on the event bus by this run")
    delivered: bool | None = Field(None, description="the webhook took it; None when there was none to send")
    attempts: int = 0


class StartResult(_Result):
    """What the start function did with each object of its event."""

    started: list[str] = Field(default_factory=list, description="job ids whose execution this call started")
    already_started: list[str] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list, description="object keys that are no job's upload")


class FinalizeResult(_Result):
    job_id: str | None
    status: str | None
    changed: bool


# --- S3 events -------------------------------------------------------------------------------


class S3ObjectRef(_Result):
    """One created object, from either S3 event shape. ``key`` is URL-decoded."""

    bucket: str
    key: str
    size_bytes: int | None = None


def _object(bucket: Mapping[str, Any], obj: Mapping[str, Any]) -> S3ObjectRef:
    size = obj.get("size")
    return S3ObjectRef(
        bucket=str(bucket["name"]),
        key=unquote_plus(str(obj["key"])),
        size_bytes=int(size) if size is not None else None,
    )


def parse_s3_event(event: Mapping[str, Any]) -> list[S3ObjectRef]:
    """The objects of an EventBridge "Object Created" event ({detail: {bucket, object}}) or of an
    S3 notification ({Records: [{s3: {bucket, object}}]}). Raises ValueError for anything else.

    Keys are URL-decoded with ``unquote_plus`` (S3 notifications encode them, "/" as %2F)."""
    if "Records" in event:
        objects = []
        for record in event["Records"]:
            s3 = record.get("s3") if isinstance(record, Mapping) else None
            if not s3:
                raise ValueError("an S3 notification record without an 's3' member")
            objects.append(_object(s3["bucket"], s3["object"]))
        return objects
    detail = event.get("detail")
    if isinstance(detail, Mapping) and "bucket" in detail and "object" in detail:
        return [_object(detail["bucket"], detail["object"])]
    raise ValueError(f"not an S3 event (keys: {sorted(event)})")


class ExecutionStatusChange(_Event):
    """The detail of an EventBridge "Step Functions Execution Status Change" event."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str
    status: str
    error: str | None = None
    cause: str | None = None
    stop_date: int | float | None = Field(None, alias="stopDate", description="epoch milliseconds")


class ExecutionStatusEvent(_Event):
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusChange
