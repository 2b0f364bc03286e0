"""One Batch job: pose + tracking for one chunk of a job's video.

Reads ``s3://BUCKET/work/JOB/plan.json``, opens the source it names where it is (ffmpeg reads its
index and the chunk's own stretch by range requests: about its share of the file, never the whole
of it, and nothing on disk), runs ``posereel.stages.analyze.analyze_chunk`` for chunk N and writes ``s3://BUCKET/work/JOB/chunks/NNNN.json``.
A valid result already stored for the same chunk is kept, so a repeated job costs one read.

``--device gpu`` insists on the GPU (the person detector on ONNX Runtime's CUDA execution
provider): when it cannot start, the job fails at once
(before reading anything) and the workflow runs the chunk on the CPU queue instead. Running
on the CPU inside a GPU job would finish too, but slower, on a dearer instance, and with the job
record saying "gpu".

Exit status: 0 done, 2 the input can never work (argparse uses 2 as well), 3 no GPU on a GPU job,
1 anything else. Batch retries a failed attempt unless it exited 2 or 3
(posereel.resources.WORKER_RETRY_RULES).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from pydantic import ValidationError

from posereel.aws.mediastore import s3_requests
from posereel.errors import GpuUnavailableError, InputError, JobDeletedError, PoseReelError
from posereel.jobs import is_job_id
from posereel.pipeline.deletion import plan_present, raise_if_deleted
from posereel.pipeline.files import PlanFile, chunk_key, plan_key
from posereel.pipeline.ports import MediaStorePort
from posereel.resources import WORKER_EXIT_INPUT, WORKER_EXIT_NO_GPU
from posereel.schemas import ChunkResult, ChunkSpec
from posereel.settings import AnalysisSettings, RuntimeSettings
from posereel.usage import Meter, Platform, container_memory_mb, read_for
from posereel_worker import log_to_stdout

log = logging.getLogger("posereel_worker")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = WORKER_EXIT_INPUT
EXIT_NO_GPU = WORKER_EXIT_NO_GPU

WorkerDevice = Literal["gpu", "cpu"]


@dataclass(frozen=True)
class ChunkTask:
    """What one job is asked to do."""

    job_id: str
    chunk: int
    bucket: str
    device: WorkerDevice


def parse_args(argv: Sequence[str] | None = None) -> ChunkTask:
    parser = argparse.ArgumentParser(prog="posereel_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--chunk", required=True, type=int, help="chunk index in the job's plan")
    parser.add_argument("--bucket", required=True, help="the bucket holding work/JOB/ (the results bucket)")
    parser.add_argument("--device", required=True, choices=["gpu", "cpu"])
    args = parser.parse_args(argv)
    if not is_job_id(args.job_id):
        parser.error(f"--job-id {args.job_id!r} is not a job id")
    if args.chunk < 0:
        parser.error("--chunk must not be negative")
    return ChunkTask(job_id=args.job_id, chunk=args.chunk, bucket=args.bucket, device=args.device)


def settings_for_device(settings: AnalysisSettings, device: WorkerDevice) -> AnalysisSettings:
    """The plan's settings with the pose delegate this job's queue stands for."""
    pose = settings.pose.model_copy(update={"delegate": device})
    return settings.model_copy(update={"pose": pose})


def require_gpu(settings: AnalysisSettings, runtime: RuntimeSettings) -> None:
    """Raise GpuUnavailableError unless the person detector runs on the GPU with this job's
    models (ONNX Runtime's CUDA execution provider)."""
    from posereel.detection import onnx_session
    from posereel.stages.analyze import model_files

    _, device, note = onnx_session(model_files(settings, runtime).detector, device="gpu", threads=1)
    if device != "gpu":
        raise GpuUnavailableError(note or "the GPU did not start")


def stored_result(store: MediaStorePort, bucket: str, key: str, spec: ChunkSpec) -> ChunkResult | None:
    """The chunk result already at ``key`` when it is valid and for this very chunk, else None."""
    if store.head(bucket, key) is None:
        return None
    try:
        result = store.read_model(bucket, key, ChunkResult)
    except (ValidationError, ValueError) as exc:
        log.warning("replacing the unreadable result at s3://%s/%s: %s", bucket, key, exc)
        return None
    if result.chunk != spec:
        log.warning("replacing the result at s3://%s/%s: it is for another plan of this chunk", bucket, key)
        return None
    return result


def run_chunk(task: ChunkTask, *, store: MediaStorePort, runtime: RuntimeSettings) -> ChunkResult:
    """Analyse the chunk (or keep its stored result) and return the result that is stored."""
    from posereel.stages.analyze import analyze_chunk

    meter = Meter(s3_requests)
    read_for(task.job_id, f"ANALYZE/{task.chunk}")
    plan = store.read_model(task.bucket, plan_key(task.job_id), PlanFile)
    spec = next((c for c in plan.chunks if c.index == task.chunk), None)
    if spec is None:
        raise InputError(f"job {task.job_id} has no chunk {task.chunk} (its plan has {len(plan.chunks)})")
    key = chunk_key(task.job_id, task.chunk)
    kept = stored_result(store, task.bucket, key, spec)
    if kept is not None:
        log.info("chunk result already stored at s3://%s/%s: kept", task.bucket, key)
        return kept

    settings = settings_for_device(plan.settings, task.device)
    if task.device == "gpu":
        require_gpu(settings, runtime)
    name = PurePosixPath(plan.source.key).name or "source"
    source = store.open_video(plan.source.bucket, plan.source.key, name=name)
    log.info(
        "analysing %s [%.2f, %.2f) s on the %s",
        plan.source.key,
        spec.start_s,
        spec.end_s,
        task.device.upper(),
    )
    result = analyze_chunk(source, spec, info=plan.video, settings=settings, runtime=runtime)
    usage = meter.stop(
        platform=Platform.GPU_WORKER if result.device == "gpu" else Platform.CPU_WORKER,
        memory_mb=container_memory_mb(),
        gpu=result.device == "gpu",
    )
    # It holds the PUT of the result too, which comes next.
    result = result.model_copy(update={"usage": usage.model_copy(update={"s3_puts": usage.s3_puts + 1})})
    store.write_model(result, task.bucket, key)
    wanted = plan_present(task.job_id, bucket=task.bucket, media=store)
    raise_if_deleted(
        task.job_id, wanted=wanted, media=store, bucket=task.bucket, keys=[key], stage="the worker"
    )
    return result


def main(argv: Sequence[str] | None = None, *, store: MediaStorePort | None = None) -> int:
    """The job's process; ``store`` defaults to S3 through boto3 (the SDK's own settings)."""
    task = parse_args(argv)
    log_to_stdout(f"job={task.job_id} chunk={task.chunk} device={task.device}")
    started = time.perf_counter()
    try:
        if store is None:
            from posereel.aws.mediastore import MediaStore

            store = MediaStore()
        runtime = RuntimeSettings()
        result = run_chunk(task, store=store, runtime=runtime)
    except (InputError, JobDeletedError) as exc:
        log.error("input error [%s]: %s", exc.code, exc.message)
        return EXIT_INPUT
    except GpuUnavailableError as exc:
        log.error("no GPU [%s]: %s", exc.code, exc.message)
        return EXIT_NO_GPU
    except PoseReelError as exc:
        log.error("failed [%s]: %s", exc.code, exc.message)
        return EXIT_FAILED
    except Exception:
        log.exception("failed")
        return EXIT_FAILED
    persons = sum(len(f.persons) for f in result.frames)
    log.info(
        "done in %.1f s: %d frames, %d detections, on the %s%s",
        time.perf_counter() - started,
        len(result.frames),
        persons,
        result.device.upper(),
        f" ({result.device_note})" if result.device_note else "",
    )
    return EXIT_OK
