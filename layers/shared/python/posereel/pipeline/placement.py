"""Where the stages whose work grows with the upload run, and how a container job's outcome
becomes its stage's.

A Lambda stops at 15 minutes and 10 GB of memory and disk. The scan's work grows with the
upload's size, the merge's and the compile's with the video's length: each runs in its Lambda
while the upload is within ``PipelineSettings.lambda_scan_max_bytes`` / ``lambda_video_max_s``,
and otherwise first as a container job (posereel.resources.STAGE_JOB, the ``posereel_worker
stage`` command) that runs the very same service and stores its outcome here; the workflow then
invokes the stage's Lambda, which finds that outcome and answers with it (an error as the same
error class, code and message). Whatever follows a stage, the rejections and the job record
included, is the same on both paths; and a stage run again, on either, gives the same answer.

The start function places the scan (it knows the upload's size), the plan the merge and the
compile (it knows the duration); the workflow's Choice states read the placement.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from posereel import errors
from posereel.pipeline.events import AnalysisPlacement, Placement, ScanPlacement
from posereel.pipeline.files import stage_outcome_key
from posereel.pipeline.ports import MediaStorePort
from posereel.resources import CONTAINER_STAGES
from posereel.settings import PipelineSettings

log = logging.getLogger(__name__)

ResultT = TypeVar("ResultT", bound=BaseModel)


def scan_placement(size_bytes: int | None, settings: PipelineSettings) -> ScanPlacement:
    """An upload of unknown size (an event without it) is scanned where no size is too large."""
    too_big = size_bytes is None or size_bytes > settings.lambda_scan_max_bytes
    return ScanPlacement(scan=_where(too_big))


def analysis_placement(duration_s: float, settings: PipelineSettings) -> AnalysisPlacement:
    where = _where(duration_s > settings.lambda_video_max_s)
    return AnalysisPlacement(merge=where, compile=where)


def _where(too_big: bool) -> Placement:
    return "container" if too_big else "lambda"


class StoredError(BaseModel):
    """A PoseReelError as a stage outcome: its class (by name), code and message."""

    model_config = ConfigDict(frozen=True)

    type: str
    code: str
    message: str

    @classmethod
    def of(cls, exc: errors.PoseReelError) -> StoredError:
        return cls(type=type(exc).__name__, code=exc.code, message=exc.message)

    def error(self) -> errors.PoseReelError:
        """The same error again: its class when PoseReel has it and it is built from a message
        (else its nearest such ancestor), with the same code and message."""
        kind = _error_classes().get(self.type, errors.PoseReelError)
        built = next(k for k in kind.__mro__ if k.__init__ is errors.PoseReelError.__init__)  # type: ignore[misc]
        return built(self.message, code=self.code)


class StageOutcome(BaseModel):
    """What a stage's container job ended with: its result, or the error it raised."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    stage: str
    result: dict[str, Any] | None = None
    error: StoredError | None = None
    batch_job_id: str | None = Field(None, description="the container job that ran it (AWS_BATCH_JOB_ID)")


def store_outcome(outcome: StageOutcome, *, media: MediaStorePort, settings: PipelineSettings) -> str:
    if outcome.stage not in CONTAINER_STAGES:
        raise ValueError(f"{outcome.stage!r} does not run in a container")
    key = stage_outcome_key(outcome.job_id, outcome.stage)
    media.write_model(outcome, settings.results_bucket, key)
    return key


def stored_outcome(
    stage: str, job_id: str, result_type: type[ResultT], *, media: MediaStorePort, settings: PipelineSettings
) -> ResultT | None:
    """The result of stage ``stage`` that its container job stored for ``job_id``, or None when
    none is stored (the stage runs in its Lambda). A stored error is raised again."""
    key = stage_outcome_key(job_id, stage)
    if media.head(settings.results_bucket, key) is None:
        return None
    outcome = media.read_model(settings.results_bucket, key, StageOutcome)
    if outcome.job_id != job_id or outcome.stage != stage:
        raise errors.PoseReelError(f"s3://{settings.results_bucket}/{key} is the outcome of another stage")
    log.info("job %s: the %s stage ran as container job %s", job_id, stage, outcome.batch_job_id)
    if outcome.error is not None:
        raise outcome.error.error()
    return result_type.model_validate(outcome.result or {})


def _error_classes() -> dict[str, type[errors.PoseReelError]]:
    found: dict[str, type[errors.PoseReelError]] = {}
    pending: list[type[errors.PoseReelError]] = [errors.PoseReelError]
    while pending:
        kind = pending.pop()
        found[kind.__name__] = kind
        pending.extend(kind.__subclasses__())
    return found
