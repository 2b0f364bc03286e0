"""Re-cuts, the recut function's side: cut one reel of a finished job (posereel.pipeline.reels
records it, the api hands it over with an event).

RUNNING, then the cut (``posereel.stages.recut``) of the job's stored source copy, result and
tracks, uploaded under results/{job}/reels/N/; SUCCEEDED with its length and segment count, or
FAILED with its error. An event for a reel that ended, or whose job or entry is gone, does
nothing (Lambda may deliver an event twice).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PurePosixPath

from posereel.errors import ObjectNotFoundError, PoseReelError, TransientError, VideoNotFoundError
from posereel.jobs import JobError, JobRecord, ReelRecord, ReelStatus, reel_prefix, utc_now
from posereel.pipeline.compile import upload_tree
from posereel.pipeline.deletion import raise_if_deleted
from posereel.pipeline.events import ReelEvent, ReelResult
from posereel.pipeline.files import PlanFile, plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.pipeline.reels import REEL_RESULT, REEL_STAGE, REEL_TRACKS
from posereel.schemas import AnalysisResult, ReelFile, TracksFile
from posereel.settings import PipelineSettings
from posereel.stages.recut import cut_reel

log = logging.getLogger(__name__)

SOURCE_GONE = "the job's analysed copy of the video has expired: upload the video again to cut new reels"


def run_reel(
    event: ReelEvent,
    *,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    workdir: Path | None = None,
) -> ReelResult:
    """Cut reel ``event.reel_id`` of ``event.job_id`` (see the module docstring). An input error
    (the source copy expired, say) ends the reel FAILED; a transient one is raised, so Lambda
    runs the event again."""
    job_id, reel_id = event.job_id, event.reel_id
    record = jobs.get(job_id)
    reel = record.reels.get(str(reel_id)) if record is not None and record.deleted_at is None else None
    if record is None or reel is None or reel.status.terminal:
        return ReelResult(status="IGNORED")
    if not jobs.update_reel(job_id, reel_id, {"status": ReelStatus.RUNNING.value}):
        return ReelResult(status="IGNORED")
    try:
        made = _cut(record, reel, settings=settings, jobs=jobs, media=media, workdir=workdir)
    except TransientError:
        raise
    except PoseReelError as exc:
        _fail(jobs, job_id, reel_id, JobError(code=exc.code, message=exc.message, stage=REEL_STAGE))
        return ReelResult(status=ReelStatus.FAILED.value)
    except Exception as exc:
        _fail(
            jobs,
            job_id,
            reel_id,
            JobError(code=type(exc).__name__, message=str(exc)[:1000], stage=REEL_STAGE),
        )
        raise
    done = {
        "status": ReelStatus.SUCCEEDED.value,
        "finished_at": utc_now(),
        "duration_s": made.duration_s,
        "segments": len(made.segments),
    }
    jobs.update_reel(job_id, reel_id, done)
    log.info("re-cut %s of job %s: %.1f s, %d segments", reel_id, job_id, made.duration_s, len(made.segments))
    return ReelResult(status=ReelStatus.SUCCEEDED.value, reel_duration_s=made.duration_s)


def _cut(
    record: JobRecord,
    reel: ReelRecord,
    *,
    settings: PipelineSettings,
    jobs: JobStorePort,
    media: MediaStorePort,
    workdir: Path | None,
) -> ReelFile:
    job_id, bucket = record.job_id, settings.results_bucket
    assert record.result is not None
    try:
        plan = media.read_model(bucket, plan_key(job_id), PlanFile)
    except ObjectNotFoundError as exc:
        raise VideoNotFoundError(SOURCE_GONE) from exc
    result = media.read_model(bucket, record.result.prefix + REEL_RESULT, AnalysisResult)
    tracks = media.read_model(bucket, record.result.prefix + REEL_TRACKS, TracksFile)
    analysis = reel.request.applied_to(plan.settings)
    name = PurePosixPath(plan.source.key).name or "video"
    prefix = reel_prefix(job_id, reel.reel_id)
    try:
        source = media.open_video(plan.source.bucket, plan.source.key, name=name)
    except ObjectNotFoundError as exc:
        raise VideoNotFoundError(SOURCE_GONE) from exc
    with tempfile.TemporaryDirectory(prefix="recut-", dir=workdir) as tmp:
        out_dir = Path(tmp) / "out"
        made = cut_reel(
            source, result, tracks, out_dir, reel_id=reel.reel_id, settings=analysis, runtime=settings.runtime
        )
        upload_tree(media, out_dir, bucket, prefix)
    # A delete of the job or of this reel while it was cut: remove what was written (deletion.py).
    current = jobs.get(job_id)
    wanted = current is not None and current.deleted_at is None and str(reel.reel_id) in current.reels
    raise_if_deleted(job_id, wanted=wanted, media=media, bucket=bucket, prefix=prefix, stage="recut")
    return made


def _fail(jobs: JobStorePort, job_id: str, reel_id: int, error: JobError) -> None:
    log.warning("re-cut %s of job %s failed: %s", reel_id, job_id, error.message)
    jobs.update_reel(
        job_id,
        reel_id,
        {"status": ReelStatus.FAILED.value, "error": error.model_dump(), "finished_at": utc_now()},
    )
