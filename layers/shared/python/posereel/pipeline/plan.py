"""Plan a job's analysis: probe the accepted upload (the copy scan made), cut it into
overlapping chunks on the analysis grid (posereel.chunks.plan_chunks), write
work/{job_id}/plan.json and record how many chunks there are.

Chunk starts are moved (within half the overlap) to where the worker's seek lands just after a
keyframe. The video is read where it is: ffprobe reads its index, then the packets (demuxed, not
decoded) of a few seconds around each chunk start, the only keyframes the alignment can choose,
so planning an hour-long upload reads a small part of it.
A plan already written for the same source is reused, so a re-run plans nothing new.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from pathlib import PurePosixPath

from posereel.chunks import plan_chunks
from posereel.errors import ObjectNotFoundError, VideoNotFoundError
from posereel.pipeline.deletion import job_wanted, raise_if_deleted
from posereel.pipeline.events import ChunkRef, PlanEvent, PlanResult
from posereel.pipeline.files import PlanFile, plan_key
from posereel.pipeline.placement import analysis_placement
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.pipeline.validate import discard_when_rejected
from posereel.schemas import ChunkSpec, VideoInfo
from posereel.settings import AnalysisSettings, PipelineSettings
from posereel.video import VideoSource, input_args, probe, redact_links, seek_preroll_s, source_name

log = logging.getLogger(__name__)

KEYFRAME_LIST_TIMEOUT_S = 60.0
# Keyframes are listed this much further either side of where alignment looks (rounding to the grid).
KEYFRAME_MARGIN_S = 0.5


def list_keyframes(
    video: VideoSource,
    *,
    ffprobe: str,
    around: Sequence[tuple[float, float]] = (),
    timeout_s: float = KEYFRAME_LIST_TIMEOUT_S,
) -> list[float]:
    """Times (s) of the first video stream's keyframes, from packet flags (demux only): all of
    them, or those within the ``around`` spans (seconds, increasing) only. An empty list when
    ffprobe cannot tell: alignment is an optimisation, never a reason to fail."""
    spans = ["-read_intervals", ",".join(f"{a:.3f}%{b:.3f}" for a, b in around)] if around else []
    cmd = [
        ffprobe, "-v", "error", "-select_streams", "v:0", *spans,
        "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", *input_args(video),
    ]  # fmt: skip
    name = source_name(video)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("no keyframe list for %s: %s", name, exc)
        return []
    if proc.returncode != 0:
        log.warning("no keyframe list for %s: %s", name, redact_links(proc.stderr.strip()[-500:]))
        return []
    times: list[float] = []
    for line in proc.stdout.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags:
            try:
                times.append(float(pts))
            except ValueError:
                continue  # packets without a timestamp ("N/A")
    return sorted(set(times))


def aligned_chunks(
    video: VideoSource, info: VideoInfo, analysis: AnalysisSettings, *, ffprobe: str
) -> list[ChunkSpec]:
    """The chunks of ``video``, their starts aligned to the keyframes listed around them (the
    same plan as with every keyframe listed: alignment only looks within half the overlap)."""
    chunking = analysis.chunks
    preroll = seek_preroll_s(info.fps)

    def plan(keyframes: Sequence[float]) -> list[ChunkSpec]:
        return plan_chunks(
            info.duration_s,
            chunk_seconds=chunking.chunk_seconds,
            overlap_seconds=chunking.overlap_seconds,
            grid_fps=analysis.sampling.target_fps,
            keyframes=keyframes,
            seek_preroll_s=preroll,
        )

    nominal = plan(())
    if len(nominal) == 1:
        return nominal
    reach = chunking.overlap_seconds / 2 + KEYFRAME_MARGIN_S
    around = [(max(0.0, c.start_s - preroll - reach), c.start_s - preroll + reach) for c in nominal[1:]]
    return plan(list_keyframes(video, ffprobe=ffprobe, around=around))


def plan_job(
    event: PlanEvent,
    *,
    settings: PipelineSettings,
    media: MediaStorePort,
    jobs: JobStorePort,
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
        with discard_when_rejected(media, event.source):
            try:
                video = media.open_video(event.source.bucket, event.source.key, name=name)
            except ObjectNotFoundError as exc:
                raise VideoNotFoundError(f"the upload {name} is gone") from exc
            info = probe(video, ffprobe=settings.runtime.ffprobe)
            analysis = analysis.for_video(info.fps)
            chunks = aligned_chunks(video, info, analysis, ffprobe=settings.runtime.ffprobe)
        plan = PlanFile(
            job_id=event.job_id, source=event.source, video=info, settings=analysis, chunks=chunks
        )
        media.write_model(plan, bucket, key)
    wanted = job_wanted(event.job_id, jobs=jobs)
    raise_if_deleted(event.job_id, wanted=wanted, media=media, bucket=bucket, keys=[key], stage="plan")
    jobs.set_chunks_total(event.job_id, len(plan.chunks))
    return PlanResult(
        plan_key=key,
        chunks=[ChunkRef(index=c.index) for c in plan.chunks],
        placement=analysis_placement(plan.video.duration_s, settings),
    )


def _existing_plan(media: MediaStorePort, bucket: str, key: str, event: PlanEvent) -> PlanFile | None:
    if media.head(bucket, key) is None:
        return None
    plan = media.read_model(bucket, key, PlanFile)
    return plan if plan.job_id == event.job_id and plan.source == event.source else None
