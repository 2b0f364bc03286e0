"""Recordings longer than a Lambda can take, on the local stack: a video over the old 20-minute
cap goes in through the HTTP API and comes out analysed, with its merge and compile run as stage
jobs on the CPU queue (as for any video over ``lambda_video_max_s``) and its scan too (this
stack scans every upload in a job: ``lambda_scan_max_bytes`` 0). An infected upload scanned in a
job is rejected exactly as the scan's Lambda rejects it.

The video is cheap: a shared clip made small (320 px, 2 fps) and looped by stream copy."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from posereel.aws.jobstore import JobStore
from posereel.jobs import JobStatus, Stage
from posereel.pipeline.api import JobView
from posereel.pipeline.files import stage_outcome_key
from posereel.pipeline.placement import StageOutcome
from posereel.resources import CONTAINER_STAGES, FUNCTIONS, STAGE_JOB
from posereel.usage import Platform
from posereel_local.client import ApiClient
from posereel_local.stack import EICAR, LocalStack
from tests.support import wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]

CLIP = "sports2d_walk_in_out"  # 13.4 s: a man walks in, across and out
LOOPS = 95  # 21.2 minutes
OLD_CAP_S = 20 * 60
TIMEOUT_S = 600.0


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(
        api_port=0,
        model_dir=models_dir,
        settings={"lambda_scan_max_bytes": 0, "chunks": {"chunk_seconds": 330.0, "overlap_seconds": 2.0}},
    ) as local:
        yield local


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.api_key)


@pytest.fixture(scope="module")
def long_video(clip: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    small, long = folder / "small.mp4", folder / "training session.mp4"
    ffmpeg = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run(
        [*ffmpeg, "-i", str(clip(CLIP)), "-vf", "scale=320:-2,fps=2", "-an", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "4", str(small)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*ffmpeg, "-stream_loop", str(LOOPS - 1), "-i", str(small), "-c", "copy", str(long)], check=True
    )
    return long


@pytest.fixture(scope="module")
def long_job(api: ApiClient, long_video: Path) -> JobView:
    job_id = api.submit(long_video)
    return api.wait(job_id, timeout_s=TIMEOUT_S, poll_s=1.0)


def entered(stack: LocalStack, job_id: str) -> list[str]:
    stored = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb")).get(job_id)
    assert stored is not None and stored.execution_arn
    sfn = stack.client("stepfunctions")
    wait_until(
        lambda: sfn.describe_execution(executionArn=stored.execution_arn)["status"] != "RUNNING",
        what="the execution to stop",
    )
    history = sfn.get_execution_history(executionArn=stored.execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def stage_jobs(stack: LocalStack, job_id: str) -> dict[str, dict]:
    batch = stack.client("batch")
    cpu = stack.resources.job_queues["cpu"]
    summaries = [
        j
        for status in ("SUCCEEDED", "FAILED")
        for j in batch.list_jobs(jobQueue=cpu, jobStatus=status)["jobSummaryList"]
        if j["jobName"].startswith(f"posereel-{job_id}-") and not j["jobName"].endswith("-cpu")
    ]
    described = batch.describe_jobs(jobs=[j["jobId"] for j in summaries])["jobs"] if summaries else []
    return {j["jobName"].rsplit("-", 1)[1]: j for j in described}


def test_a_video_over_the_old_cap_is_accepted_and_analysed_end_to_end(long_job: JobView) -> None:
    assert long_job.status == JobStatus.SUCCEEDED, long_job.error
    assert long_job.result is not None and long_job.result.video_duration_s is not None
    assert long_job.result.video_duration_s > OLD_CAP_S
    assert long_job.result.segments >= LOOPS // 2, "the man walks in and out in every loop"
    assert long_job.chunks_done == long_job.chunks_total >= 4


def test_its_scan_merge_and_compile_ran_as_stage_jobs_then_their_lambdas_handed_the_outcome_on(
    stack: LocalStack, long_job: JobView
) -> None:
    states = entered(stack, long_job.job_id)
    for name in ("Scan", "Merge", "Compile"):
        assert f"{name}Job" in states and states.index(f"{name}Job") + 1 == states.index(name), states
    jobs = stage_jobs(stack, long_job.job_id)
    assert set(jobs) == set(CONTAINER_STAGES)
    s3 = stack.client("s3")
    for stage, job in jobs.items():
        assert job["status"] == "SUCCEEDED"
        assert job["jobDefinition"].split("/")[-1].split(":")[0] == stack.resources.names.stage_job_definition
        body = s3.get_object(
            Bucket=stack.settings.results_bucket, Key=stage_outcome_key(long_job.job_id, stage)
        )
        outcome = StageOutcome.model_validate_json(body["Body"].read())
        assert (outcome.error, outcome.batch_job_id) == (None, job["jobId"])


def test_the_stage_jobs_use_is_kept_apart_from_their_lambdas_and_priced(
    stack: LocalStack, long_job: JobView
) -> None:
    for stage in CONTAINER_STAGES:
        key = FUNCTIONS[stage].usage
        assert key is not None
        job, handed_on = long_job.usage[f"{key}{STAGE_JOB.usage_suffix}"], long_job.usage[key]
        assert (job.platform, handed_on.platform) == (Platform.CPU_WORKER, Platform.LAMBDA)
        assert job.wall_s > handed_on.wall_s, stage
    assert long_job.cost is not None
    assert long_job.cost.transitions == len(entered(stack, long_job.job_id))


def test_an_infected_upload_scanned_in_a_job_is_rejected_and_quarantined(
    stack: LocalStack, api: ApiClient, clip: Callable[[str], Path], tmp_path: Path
) -> None:
    infected = tmp_path / "infected.mp4"
    infected.write_bytes(clip(CLIP).read_bytes() + EICAR)
    record = api.wait(api.submit(infected), timeout_s=TIMEOUT_S, poll_s=0.5)
    assert record.status == JobStatus.REJECTED, record
    assert record.error is not None and (record.error.code, record.error.stage) == (
        "MALWARE",
        Stage.SCAN.value,
    )
    assert "EICAR" in record.error.message
    assert "ScanJob" in entered(stack, record.job_id)
    listing = stack.client("s3").list_objects_v2(
        Bucket=stack.settings.quarantine_bucket, Prefix=f"quarantine/{record.job_id}/"
    )
    assert [o["Key"] for o in listing.get("Contents", [])] == [f"quarantine/{record.job_id}/infected.mp4"]
