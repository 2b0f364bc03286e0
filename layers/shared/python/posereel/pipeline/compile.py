"""Compile a job's results: render every artefact (posereel.stages.compile: reel, overlay,
thumbnails, timeline, data files; the source read in place, only the windows it cuts) in a
temporary directory, zip them all once more for "download
all" (results.zip), upload them under results/{job_id}/ with their content types, and write the
result summary into the job record.

A job with no segments succeeds with no reel (reel_key None). A re-run after the result was
recorded (and its result.json stored) renders nothing again.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from posereel import export
from posereel.errors import ObjectNotFoundError, VideoNotFoundError
from posereel.jobs import JobResult, results_prefix
from posereel.outputs import REEL_NAME, RESULT_FILES, RESULT_NAME, content_type, download_name
from posereel.pipeline.deletion import job_wanted, raise_if_deleted
from posereel.pipeline.events import CompileEvent, CompileResult
from posereel.pipeline.files import MergedFile, PlanFile, merged_key, plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.settings import PipelineSettings
from posereel.stages.compile import render_results
from posereel.stages.merge import Merged

UPLOAD_THREADS = 4


def upload_tree(media: MediaStorePort, root: Path, bucket: str, prefix: str) -> list[str]:
    """Upload every file under ``root`` to ``prefix`` + its relative path; returns the keys."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))

    def put(path: Path) -> str:
        key = prefix + path.relative_to(root).as_posix()
        media.upload_file(path, bucket, key, content_type=content_type(path))
        return key

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="upload") as pool:
        return list(pool.map(put, files))


def bundle(root: Path, *, source_name: str) -> Path:
    """results.zip in ``root``: every file under it, in a folder named after the video ("dance
    class-results/reel.mp4"), so that the results of several videos unzip side by side."""
    folder = download_name(source_name, "results")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    entries = [(f"{folder}/{p.relative_to(root).as_posix()}", p) for p in files]
    return export.write_zip(entries, root / RESULT_FILES["bundle"])


def compile_job(
    event: CompileEvent,
    *,
    settings: PipelineSettings,
    media: MediaStorePort,
    jobs: JobStorePort,
    workdir: Path | None = None,
) -> CompileResult:
    bucket = settings.results_bucket
    prefix = results_prefix(event.job_id)
    done = _already_compiled(event.job_id, media=media, jobs=jobs, bucket=bucket, prefix=prefix)
    if done is not None:
        return done

    plan = media.read_model(bucket, plan_key(event.job_id), PlanFile)
    merged = media.read_model(bucket, merged_key(event.job_id), MergedFile)
    name = PurePosixPath(plan.source.key).name or "video"
    try:
        source = media.open_video(plan.source.bucket, plan.source.key, name=name)
    except ObjectNotFoundError as exc:
        raise VideoNotFoundError(f"the upload {name} is gone") from exc
    with tempfile.TemporaryDirectory(prefix="compile-", dir=workdir) as tmp:
        out_dir = Path(tmp) / "out"
        result, outputs = render_results(
            source,
            Merged(result=merged.result, tracks=merged.tracks),
            out_dir,
            settings=plan.settings,
            runtime=settings.runtime,
        )
        bundle(out_dir, source_name=name)
        upload_tree(media, out_dir, bucket, prefix)
    wanted = job_wanted(event.job_id, jobs=jobs)
    raise_if_deleted(event.job_id, wanted=wanted, media=media, bucket=bucket, prefix=prefix, stage="compile")
    jobs.set_result(
        event.job_id,
        JobResult(
            prefix=prefix,
            segments=len(result.segments),
            reel_duration_s=round(outputs.reel_duration_s, 3),
            primary_track_id=result.primary_track_id,
            video_duration_s=round(result.video.duration_s, 3),
        ),
    )
    return CompileResult(
        reel_key=prefix + REEL_NAME if outputs.reel is not None else None,
        reel_duration_s=round(outputs.reel_duration_s, 3),
    )


def _already_compiled(
    job_id: str, *, media: MediaStorePort, jobs: JobStorePort, bucket: str, prefix: str
) -> CompileResult | None:
    record = jobs.get(job_id)
    if record is None or record.result is None or media.head(bucket, prefix + RESULT_NAME) is None:
        return None
    has_reel = media.head(bucket, prefix + REEL_NAME) is not None
    return CompileResult(
        reel_key=prefix + REEL_NAME if has_reel else None, reel_duration_s=record.result.reel_duration_s
    )
