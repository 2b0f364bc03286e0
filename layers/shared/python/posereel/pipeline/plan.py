"""Plan a job's analysis: probe the accepted upload (the copy scan made), cut it into
overlapping chunks on the analysis grid (posereel.chunks.plan_chunks), write
work/{job_id}/plan.json and record how many chunks there are.

Chunk starts are moved (within half the overlap) to where the worker's seek lands just after a
keyframe, when the keyframe list is cheap to get (demuxing packets, no decoding).
A plan already written for the same source is reused, so a re-run plans nothing new.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from posereel.chunks import plan_chunks
from posereel.errors import ObjectNotFoundError, VideoNotFoundError
from posereel.pipeline.deletion import job_wanted, raise_if_deleted
from posereel.pipeline.events import ChunkRef, PlanEvent, PlanResult
from posereel.pipeline.files import PlanFile, plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.pipeline.validate import discard_when_rejected
from posereel.settings import AnalysisSettings, PipelineSettings
from posereel.video import probe, seek_preroll_s

log = logging.getLogger(__name__)

KEYFRAME_LIST_TIMEOUT_S = 60.0


def list_keyframes(path: Path, *, ffprobe: str, timeout_s: float = KEYFRAME_LIST_TIMEOUT_S) -> list[float]:
    """Times (s) of the first video stream's keyframes, from packet flags (demux only). An empty
    list when ffprobe cannot tell: alignment is an optimisation, never a reason to fail."""
    cmd = [
        ffprobe, "-v", "error", "-select_streams", "v:0",
        "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", str(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("no keyframe list for %s: %s", path.name, exc)
        return []
    if proc.returncode != 0:
        log.warning("no keyframe list for %s: %s", path.name, proc.stderr.strip()[-500:])
        return []
    times: list[float] = []
    for line in proc.stdout.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags:
            try:
                times.append(float(pts))
            except ValueError:
                continue  # packets without a timestamp ("N/A")
    return sorted(times)


def plan_job(
    event: PlanEvent,
    *,
    settings: PipelineSettings,
    media: MediaStorePort,
    jobs: JobStorePort,
    workdir: Path | None = None,
) -> PlanResult:
    bucket = settings.results_bucket
    key = plan_key(event.job_id)
    plan = _existing_plan(media, bucket, key, event)
    if plan is None:
        analysis = AnalysisSettings(chunks=settings.chunks)
        record = jobs.get(event.job_id)
        if record is not None and record.options is not None:
            analysis = record.options.applied_to(analysis)
        name = PurePosixPath(event.source.key).name or "video"
        with (
            discard_when_rejected(media, event.source),
            tempfile.TemporaryDirectory(prefix="plan-", dir=workdir) as tmp,
        ):
            try:
                path = media.download(event.source.bucket, event.source.key, Path(tmp) / name)
            except ObjectNotFoundError as exc:
                raise VideoNotFoundError(f"the upload {name} is gone") from exc
            info = probe(path, ffprobe=settings.runtime.ffprobe)
            one_chunk = info.duration_s <= analysis.chunks.chunk_seconds
            keyframes = [] if one_chunk else list_keyframes(path, ffprobe=settings.runtime.ffprobe)
        chunks = plan_chunks(
            info.duration_s,
            chunk_seconds=analysis.chunks.chunk_seconds,
            overlap_seconds=analysis.chunks.overlap_seconds,
            grid_fps=analysis.sampling.target_fps,
            keyframes=keyframes,
            seek_preroll_s=seek_preroll_s(info.fps),
        )
        plan = PlanFile(
            job_id=event.job_id, source=event.source, video=info, settings=analysis, chunks=chunks
        )
        media.write_model(plan, bucket, key)
    wanted = job_wanted(event.job_id, jobs=jobs)
    raise_if_deleted(event.job_id, wanted=wanted, media=media, bucket=bucket, keys=[key], stage="plan")
    jobs.set_chunks_total(event.job_id, len(plan.chunks))
    return PlanResult(plan_key=key, chunks=[ChunkRef(index=c.index) for c in plan.chunks])


def _existing_plan(media: MediaStorePort, bucket: str, key: str, event: PlanEvent) -> PlanFile | None:
    if media.head(bucket, key) is None:
        return None
    plan = media.read_model(bucket, key, PlanFile)
    return plan if plan.job_id == event.job_id and plan.source == event.source else None
