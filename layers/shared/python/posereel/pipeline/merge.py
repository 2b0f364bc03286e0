"""Merge a job's chunk results: stitch tracks across chunks, then motion, segments and metrics
(posereel.stages.merge), written to work/{job_id}/merged.json. A merged file already there is
reused, so a re-run merges nothing new.

What the chunk workers used (each chunk result's usage) goes into the job's record as two
totals, ANALYZE_GPU and ANALYZE_CPU, before the merged file is written: a re-run that finds it
has recorded them already."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from posereel.pipeline.deletion import plan_present, raise_if_deleted
from posereel.pipeline.events import MergeEvent, MergeResult
from posereel.pipeline.files import MergedFile, PlanFile, chunk_key, merged_key, plan_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.schemas import ChunkResult
from posereel.settings import PipelineSettings
from posereel.stages.merge import merge_chunks
from posereel.usage import total

# Chunk results are read in parallel: each is one GET of a JSON file of a few MB.
READ_THREADS = 8


def merge_job(
    event: MergeEvent, *, settings: PipelineSettings, media: MediaStorePort, jobs: JobStorePort
) -> MergeResult:
    bucket = settings.results_bucket
    out_key = merged_key(event.job_id)
    if media.head(bucket, out_key) is not None:
        merged = media.read_model(bucket, out_key, MergedFile)
        return MergeResult(segments=len(merged.result.segments), tracks=len(merged.result.tracks))

    plan = media.read_model(bucket, plan_key(event.job_id), PlanFile)

    def read(index: int) -> ChunkResult:
        return media.read_model(bucket, chunk_key(event.job_id, index), ChunkResult)

    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="read-chunk") as pool:
        results = list(pool.map(read, [c.index for c in plan.chunks]))
    record_worker_usage(event.job_id, results, jobs=jobs)
    merged_run = merge_chunks(results, settings=plan.settings)
    media.write_model(
        MergedFile(job_id=event.job_id, result=merged_run.result, tracks=merged_run.tracks), bucket, out_key
    )
    wanted = plan_present(event.job_id, bucket=bucket, media=media)
    raise_if_deleted(event.job_id, wanted=wanted, media=media, bucket=bucket, keys=[out_key], stage="merge")
    return MergeResult(segments=len(merged_run.result.segments), tracks=len(merged_run.result.tracks))


def record_worker_usage(job_id: str, results: list[ChunkResult], *, jobs: JobStorePort) -> None:
    """The chunk workers' usage, per device, as totals in the job's record (stored whole, so
    that merging again records the same)."""
    for key, device in (("ANALYZE_GPU", "gpu"), ("ANALYZE_CPU", "cpu")):
        use = total([r.usage for r in results if r.usage is not None and r.device == device])
        if use is not None:
            jobs.add_usage(job_id, key, use, replace=True)
