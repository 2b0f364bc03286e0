"""Plan a job's analysis: probe the upload, cut it into overlapping chunks on the analysis grid,
write work/{job_id}/plan.json and record how many chunks there are.

Chunk starts are moved (within half the overlap) to where the worker's seek lands on a
keyframe, when the keyframe list is cheap to get (demuxing packets, no decoding).
A plan already written for the same source is reused, so a re-run plans nothing new.
"""

from __future__ import annotations

import bisect
import logging
import math
import subprocess
import tempfile
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path, PurePosixPath

from posereel.chunks import plan_chunks
from posereel.errors import ObjectNotFoundError, VideoNotFoundError
from posereel.pipeline.events import ChunkRef, PlanEvent, PlanResult
from posereel.pipeline.files import PlanFile, plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.schemas import ChunkSpec, VideoInfo
from posereel.settings import AnalysisSettings, PipelineSettings
from posereel.video import probe

log = logging.getLogger(__name__)

# video.sample_frames seeks max(0.5 s, 2 source frames) before a chunk's first grid time, and
# ffmpeg decodes from the keyframe at or before the seek point: a chunk start that puts the seek
# point on (or just after) a keyframe decodes least. A start *on* a keyframe would be the worst
# place, decoding the whole previous group of pictures.
SEEK_PREROLL_S = 0.5
KEYFRAME_LIST_TIMEOUT_S = 60.0
_GRID_EPS = 1e-6


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


def align_to_keyframes(
    chunks: Sequence[ChunkSpec],
    keyframes: Sequence[float],
    *,
    grid_fps: float,
    overlap_seconds: float,
    preroll_s: float,
) -> list[ChunkSpec]:
    """Move each chunk start (and with it the overlap and the ownership border before it) to the
    first grid time at least ``preroll_s`` after a keyframe, when that is within half the overlap
    of the planned start. The overlap's length is kept; the first start and the last end stay.
    Returns the chunks unchanged when nothing moves or the result would not be a valid plan."""
    if len(chunks) < 2 or not keyframes:
        return list(chunks)
    overlap_steps = round(overlap_seconds * grid_fps)
    half = overlap_seconds / 2
    starts = [0]
    for chunk in chunks[1:]:
        planned = round(chunk.start_s * grid_fps)
        starts.append(_aligned_start(planned, keyframes, grid_fps=grid_fps, half_s=half, preroll_s=preroll_s))
    if starts == [round(c.start_s * grid_fps) for c in chunks]:
        return list(chunks)
    duration = chunks[-1].end_s
    aligned: list[ChunkSpec] = []
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        own_start = 0 if i == 0 else start + overlap_steps // 2
        aligned.append(
            ChunkSpec(
                index=i,
                start_s=start / grid_fps,
                end_s=duration if last else (starts[i + 1] + overlap_steps) / grid_fps,
                own_start_s=own_start / grid_fps,
                own_end_s=duration if last else (starts[i + 1] + overlap_steps // 2) / grid_fps,
            )
        )
    ok = all(
        c.start_s < c.own_start_s + _GRID_EPS and c.own_start_s < c.own_end_s <= c.end_s for c in aligned
    )
    ok = ok and all(a.start_s < b.start_s and a.own_end_s == b.own_start_s for a, b in pairwise(aligned))
    return aligned if ok else list(chunks)


def _aligned_start(
    planned: int, keyframes: Sequence[float], *, grid_fps: float, half_s: float, preroll_s: float
) -> int:
    """Grid index of the best start near ``planned``: the first grid time at least preroll after
    the keyframe nearest to (planned - preroll), if within half_s of the planned start."""
    seek = planned / grid_fps - preroll_s
    i = bisect.bisect_left(keyframes, seek)
    best = planned
    best_shift = math.inf
    for k in keyframes[max(0, i - 1) : i + 1]:
        candidate = math.ceil((k + preroll_s) * grid_fps - _GRID_EPS)
        shift = abs(candidate - planned) / grid_fps
        if candidate > 0 and shift <= half_s + _GRID_EPS and shift < best_shift:
            best, best_shift = candidate, shift
    return best


def plan_video(
    info: VideoInfo, analysis: AnalysisSettings, *, keyframes: Sequence[float] = ()
) -> list[ChunkSpec]:
    """The chunks of a whole video on the analysis grid, aligned to ``keyframes`` when given."""
    grid_fps = analysis.sampling.target_fps
    chunks = plan_chunks(
        info.duration_s,
        chunk_seconds=analysis.chunks.chunk_seconds,
        overlap_seconds=analysis.chunks.overlap_seconds,
        grid_fps=grid_fps,
    )
    return align_to_keyframes(
        chunks,
        keyframes,
        grid_fps=grid_fps,
        overlap_seconds=analysis.chunks.overlap_seconds,
        preroll_s=max(SEEK_PREROLL_S, 2.0 / info.fps),
    )


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
        name = PurePosixPath(event.source.key).name or "video"
        with tempfile.TemporaryDirectory(prefix="plan-", dir=workdir) as tmp:
            try:
                path = media.download(event.source.bucket, event.source.key, Path(tmp) / name)
            except ObjectNotFoundError as exc:
                raise VideoNotFoundError(f"the upload {name} is gone") from exc
            info = probe(path, ffprobe=settings.runtime.ffprobe)
            one_chunk = info.duration_s <= analysis.chunks.chunk_seconds
            keyframes = [] if one_chunk else list_keyframes(path, ffprobe=settings.runtime.ffprobe)
        plan = PlanFile(
            job_id=event.job_id,
            source=event.source,
            video=info,
            settings=analysis,
            chunks=plan_video(info, analysis, keyframes=keyframes),
        )
        media.write_model(plan, bucket, key)
    jobs.set_chunks_total(event.job_id, len(plan.chunks))
    return PlanResult(plan_key=key, chunks=[ChunkRef(index=c.index) for c in plan.chunks])


def _existing_plan(media: MediaStorePort, bucket: str, key: str, event: PlanEvent) -> PlanFile | None:
    if media.head(bucket, key) is None:
        return None
    plan = media.read_model(bucket, key, PlanFile)
    return plan if plan.job_id == event.job_id and plan.source == event.source else None
