"""One pipeline stage as a container job, for uploads too large or too long for its Lambda.

``python -m posereel_worker stage NAME --job-id J --source '{"bucket": ..., "key": ...}'`` runs
the same service the stage's Lambda runs (scan, merge or compile: posereel.resources
CONTAINER_STAGES), with the settings of the job definition's environment, and stores how it
ended at work/{job}/stages/{name}.json (posereel.pipeline.placement); the workflow then invokes
the stage's Lambda, which answers with that outcome. What it used goes into the job record under
the stage's usage key + "_JOB".

Exit status: 0 the outcome is stored (a rejection of the upload too: that is an answer, which
the Lambda hands on); 1 anything else, which Batch runs again (posereel.resources.STAGE_JOB) and
the workflow then reports as the job's failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from posereel.aws.mediastore import s3_requests
from posereel.errors import PoseReelError, TransientError
from posereel.jobs import is_job_id
from posereel.pipeline.events import CompileEvent, MergeEvent, ScanEvent, SourceRef
from posereel.pipeline.placement import StageOutcome, StoredError, store_outcome
from posereel.pipeline.ports import JobStorePort, MediaStorePort

if TYPE_CHECKING:
    from posereel.pipeline.scan import Scanner
from posereel.resources import CONTAINER_STAGES, FUNCTIONS, STAGE_JOB
from posereel.settings import PipelineSettings
from posereel.usage import Meter, Platform, read_for
from posereel_worker import log_to_stdout

log = logging.getLogger("posereel_worker.stage")

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class StageTask:
    stage: str
    job_id: str
    source: SourceRef


def parse_args(argv: Sequence[str] | None = None) -> StageTask:
    parser = argparse.ArgumentParser(prog="posereel_worker stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=CONTAINER_STAGES)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--source", required=True, help="the stage's source, as JSON {bucket, key}")
    args = parser.parse_args(argv)
    if not is_job_id(args.job_id):
        parser.error(f"--job-id {args.job_id!r} is not a job id")
    try:
        source = SourceRef.model_validate_json(args.source)
    except ValidationError as exc:
        parser.error(f"--source is not a source {{bucket, key}}: {exc.errors()[0]['msg']}")
    return StageTask(stage=args.stage, job_id=args.job_id, source=source)


Service = Callable[[dict[str, Any], PipelineSettings, MediaStorePort, JobStorePort], BaseModel]


def clamav(settings: PipelineSettings, media: MediaStorePort) -> Scanner:
    """ClamAV with the environment's signatures (an s3:// database is downloaded to /tmp)."""
    from posereel.pipeline.scan import ClamAV, resolve_clamav_db

    return ClamAV(resolve_clamav_db(settings.clamav_db, media=media))


def _scan(
    event: dict[str, Any], settings: PipelineSettings, media: MediaStorePort, jobs: JobStorePort
) -> BaseModel:
    from posereel.pipeline.scan import scan_upload

    scanner = clamav(settings, media)
    return scan_upload(
        ScanEvent.model_validate(event), settings=settings, media=media, jobs=jobs, scanner=scanner
    )


def _merge(
    event: dict[str, Any], settings: PipelineSettings, media: MediaStorePort, jobs: JobStorePort
) -> BaseModel:
    from posereel.pipeline.merge import merge_job

    return merge_job(MergeEvent.model_validate(event), settings=settings, media=media, jobs=jobs)


def _compile(
    event: dict[str, Any], settings: PipelineSettings, media: MediaStorePort, jobs: JobStorePort
) -> BaseModel:
    from posereel.pipeline.compile import compile_job

    return compile_job(CompileEvent.model_validate(event), settings=settings, media=media, jobs=jobs)


SERVICES: dict[str, Service] = {"scan": _scan, "merge": _merge, "compile": _compile}


def run_stage(
    task: StageTask, *, settings: PipelineSettings, media: MediaStorePort, jobs: JobStorePort
) -> StageOutcome:
    """Run the stage and store its outcome; a transient or unexpected failure is raised (the
    job's next attempt runs it again) and stores nothing."""
    meter = Meter(s3_requests)
    key = f"{FUNCTIONS[task.stage].usage}{STAGE_JOB.usage_suffix}"
    read_for(task.job_id, key)
    event = {"job_id": task.job_id, "source": task.source.model_dump(mode="json")}
    batch_job_id = os.environ.get("AWS_BATCH_JOB_ID")
    try:
        try:
            result = SERVICES[task.stage](event, settings, media, jobs)
            outcome = StageOutcome(
                job_id=task.job_id,
                stage=task.stage,
                result=result.model_dump(mode="json"),
                batch_job_id=batch_job_id,
            )
        except TransientError:
            raise
        except PoseReelError as exc:
            log.warning(
                "the %s stage ended with %s [%s]: %s", task.stage, type(exc).__name__, exc.code, exc.message
            )
            outcome = StageOutcome(
                job_id=task.job_id, stage=task.stage, error=StoredError.of(exc), batch_job_id=batch_job_id
            )
        store_outcome(outcome, media=media, settings=settings)
        return outcome
    finally:
        # Priced as the shape the job definition gives it (what Fargate bills).
        use = meter.stop(platform=Platform.CPU_WORKER, memory_mb=STAGE_JOB.memory_mib)
        use = use.model_copy(update={"vcpus": float(STAGE_JOB.vcpus)})
        try:
            jobs.add_usage(task.job_id, key, use)
        except Exception:
            log.warning("could not record the stage's usage under %s", key, exc_info=True)


def main(
    argv: Sequence[str] | None = None,
    *,
    media: MediaStorePort | None = None,
    jobs: JobStorePort | None = None,
) -> int:
    """The job's process; the stores default to S3 and DynamoDB through boto3."""
    task = parse_args(argv)
    log_to_stdout(f"job={task.job_id} stage={task.stage}")
    started = time.perf_counter()
    try:
        settings = PipelineSettings()
        if media is None:
            from posereel.aws.mediastore import MediaStore

            media = MediaStore()
        if jobs is None:
            from posereel.aws.jobstore import JobStore

            jobs = JobStore(settings.jobs_table)
        outcome = run_stage(task, settings=settings, media=media, jobs=jobs)
    except PoseReelError as exc:
        log.error("failed [%s]: %s", exc.code, exc.message)
        return EXIT_FAILED
    except Exception:
        log.exception("failed")
        return EXIT_FAILED
    log.info("%s in %.1f s", "rejected" if outcome.error else "done", time.perf_counter() - started)
    return EXIT_OK
