"""Re-cuts, the api's side: more reels of a finished job from its stored tracks, without pose
estimation again (the recut function cuts them: posereel.pipeline.recut).

- ``create_reel`` (``POST /jobs/{id}/reels``): checks the choice against the job's people, gives
  out the next reel id, records the reel QUEUED with its deadline and hands it to the recut
  function with an event.
- ``list_reels``, ``get_reel``, ``delete_reel``: what the owner sees of them. Reel 0 is the job's
  own first reel (its result); it is deleted with the job only.

A reel that has not ended by its deadline (``resources.RECUT_DEADLINE_S``: every attempt of the
function timed out, or its event was lost) reads FAILED (``ReelRecord.seen_at``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from posereel.errors import ConflictError, InvalidFieldError, ObjectNotFoundError, TransientError
from posereel.export import reel_starts
from posereel.jobs import (
    JobError,
    JobRecord,
    JobStatus,
    ReelRecord,
    ReelStatus,
    iso_utc,
    reel_prefix,
    utc_now,
)
from posereel.outputs import REEL_FILES, RESULT_FILES
from posereel.pipeline.api import ResultFile, file_links, own_job
from posereel.pipeline.events import ReelEvent
from posereel.pipeline.ports import FunctionsPort, JobStorePort, MediaStorePort
from posereel.pipeline.public import public_error
from posereel.resources import RECUT_DEADLINE_S
from posereel.schemas import AnalysisResult, ReelFile, Segment
from posereel.settings import JobOptions, PipelineSettings, ReelRequest

log = logging.getLogger(__name__)

MAX_REELS_PER_JOB = 50
REEL_STAGE = "REEL"
REEL_RESULT, REEL_TRACKS = RESULT_FILES["result"], RESULT_FILES["tracks"]


class ReelSegment(Segment):
    reel_start_s: float = Field(description="where the segment's start plays in this reel")


class ReelView(BaseModel):
    """One reel of a job as its owner sees it. ``segments``, ``files`` and ``size_px`` come with
    a finished reel when it is asked for alone (``GET /jobs/{id}/reels/{reel_id}``)."""

    reel_id: int = Field(description="0: the job's first reel; 1, 2, ...: its re-cuts")
    status: ReelStatus
    options: ReelRequest = Field(description="what was chosen for it (unset: the first reel's choice)")
    created_at: str
    finished_at: str | None
    error: JobError | None
    duration_s: float | None
    segment_count: int | None
    size_px: tuple[int, int] | None = None
    segments: list[ReelSegment] | None = None
    files: dict[str, ResultFile] | None = Field(
        None,
        description="reel (when anything moved as asked), cut (reel.json), segments_csv, segments_edl, "
        "clips (clips.zip, when asked for)",
    )


class ReelList(BaseModel):
    job_id: str
    reels: list[ReelView] = Field(description="the first reel (0), then the re-cuts, oldest first")


# --- the api's side ---------------------------------------------------------------------------


def create_reel(
    job_id: str,
    request: ReelRequest,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    functions: FunctionsPort,
) -> ReelView | None:
    """Record re-cut ``request`` of the caller's job and start it; None when there is no such
    job. Raises ConflictError (NOT_READY) unless the job succeeded, (TOO_MANY_REELS) after
    ``MAX_REELS_PER_JOB``; InvalidFieldError for a track id the job has no person for."""
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    if record.status != JobStatus.SUCCEEDED or record.result is None:
        raise ConflictError(
            f"job {job_id} has no results to re-cut yet (it is {record.status.value})", code="NOT_READY"
        )
    if request.track_ids is not None:
        analysis = media.read_model(
            settings.results_bucket, record.result.prefix + REEL_RESULT, AnalysisResult
        )
        known = {t.track_id for t in analysis.tracks}
        unknown = sorted(set(request.track_ids) - known)
        if unknown:
            raise InvalidFieldError(
                "track_ids",
                f"job {job_id} has no person {', '.join(map(str, unknown))} (its people: "
                f"{', '.join(map(str, sorted(known))) or 'none'})",
                problem="unknown_track",
            )
    reel_id = jobs.next_reel_id(job_id, limit=MAX_REELS_PER_JOB)
    if reel_id is None:
        current = jobs.get(job_id)
        if current is None or current.deleted_at is not None:
            return None
        raise ConflictError(
            f"job {job_id} has {MAX_REELS_PER_JOB} re-cuts already; delete some to make more",
            code="TOO_MANY_REELS",
        )
    now = datetime.now(UTC)
    reel = ReelRecord(
        reel_id=reel_id,
        status=ReelStatus.QUEUED,
        request=request,
        created_at=iso_utc(now),
        updated_at=iso_utc(now),
        deadline=iso_utc(now + timedelta(seconds=RECUT_DEADLINE_S)),
    )
    if not jobs.put_reel(job_id, reel):
        return None
    try:
        functions.invoke_async(
            settings.recut_function, ReelEvent(job_id=job_id, reel_id=reel_id).model_dump()
        )
    except TransientError:
        error = JobError(
            code="TRANSIENT", message="the re-cut could not be started; try again", stage=REEL_STAGE
        )
        jobs.update_reel(
            job_id,
            reel_id,
            {"status": ReelStatus.FAILED.value, "error": error.model_dump(), "finished_at": utc_now()},
        )
        raise
    log.info("re-cut %s of job %s queued", reel_id, job_id)
    return _view(reel)


def list_reels(job_id: str, *, caller: str, jobs: JobStorePort) -> ReelList | None:
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    now = datetime.now(UTC)
    first = [first_reel(record)] if record.result is not None else []
    cuts = sorted(record.reels.values(), key=lambda r: r.reel_id)
    return ReelList(job_id=job_id, reels=[*first, *(_view(r.seen_at(now)) for r in cuts)])


def get_reel(
    job_id: str,
    reel_id: int,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> ReelView | None:
    """One reel with, once it is done, its segments (where each starts in it) and file links;
    None when the caller has no such job or reel."""
    record = own_job(job_id, caller, jobs)
    if record is None:
        return None
    if reel_id == 0:
        if record.result is None:
            return None
        view = first_reel(record)
    else:
        reel = record.reels.get(str(reel_id))
        if reel is None:
            return None
        view = _view(reel.seen_at(datetime.now(UTC)))
    if view.status != ReelStatus.SUCCEEDED:
        return view
    bucket, prefix = settings.results_bucket, reel_prefix(job_id, reel_id)
    try:
        made = media.read_model(bucket, prefix + REEL_FILES["cut"], ReelFile)
    except ObjectNotFoundError:
        return view  # a job finished before reels had a cut file: its results list the segments
    stored = {
        obj.key[len(prefix) :]: obj
        for obj in media.list_objects(bucket, prefix)
        if "/" not in obj.key[len(prefix) :]
    }
    return view.model_copy(
        update={
            "size_px": made.size_px,
            "segments": _segments_in(made),
            "files": file_links(
                record,
                REEL_FILES,
                stored=stored,
                prefix=prefix,
                settings=settings,
                media=media,
                reel_id=reel_id,
            ),
        }
    )


def delete_reel(
    job_id: str,
    reel_id: int,
    *,
    caller: str,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
) -> bool:
    """Remove a re-cut's entry and files; False when there is no such reel. The first reel goes
    with its job only (ConflictError)."""
    record = own_job(job_id, caller, jobs)
    if record is None:
        return False
    if reel_id == 0:
        raise ConflictError(
            "the first reel is part of the job's results: delete the job instead", code="FIRST_REEL"
        )
    if str(reel_id) not in record.reels:
        return False
    jobs.remove_reel(job_id, reel_id)
    media.delete_prefix(settings.results_bucket, reel_prefix(job_id, reel_id))
    return True


def first_reel(record: JobRecord) -> ReelView:
    """Reel 0: the job's own result, cut with the upload's options."""
    assert record.result is not None
    options = record.options or JobOptions()
    return ReelView(
        reel_id=0,
        status=ReelStatus.SUCCEEDED,
        options=ReelRequest.model_validate(options.model_dump(include=set(ReelRequest.model_fields))),
        created_at=record.created_at,
        finished_at=record.finished_at,
        error=None,
        duration_s=record.result.reel_duration_s,
        segment_count=record.result.segments,
    )


def _view(reel: ReelRecord) -> ReelView:
    return ReelView(
        reel_id=reel.reel_id,
        status=reel.status,
        options=reel.request,
        created_at=reel.created_at,
        finished_at=reel.finished_at,
        error=public_error(reel.error) if reel.error is not None else None,
        duration_s=reel.duration_s,
        segment_count=reel.segments,
    )


def _segments_in(made: ReelFile) -> list[ReelSegment]:
    """The reel's segments with where each one's start plays, in play order."""
    starts = reel_starts(made.windows, made.segments)
    by_index = {s.index: s for s in made.segments}
    return [ReelSegment(**by_index[i].model_dump(), reel_start_s=start) for i, start in starts.items()]
