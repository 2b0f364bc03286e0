"""The workflow file (statemachine/pipeline.asl.json) on the local stack, with scripted stages in
place of the real handlers and worker: each path (success with the GPU-to-CPU fallback, a
rejection with and without our error JSON, a retried transient error, a crash, a failing chunk,
a job that already ended) leaves the job record as the contracts say. Seconds, no media."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from posereel.aws.jobstore import JobStore
from posereel.jobs import JobRecord, JobStatus, Stage, upload_key
from posereel_local.client import ApiClient
from posereel_local.stack import LocalStack
from tests.support import wait_until

FIXTURES = Path(__file__).parent / "workflow_fixtures"
STAGES = ("validate", "scan", "plan", "merge", "compile")
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(
        api_port=0,
        gpu_available=False,  # the same on every machine
        model_dir=tmp_path_factory.mktemp("no-models"),
        handlers={name: f"scripted_stages.{name}" for name in STAGES},
        code_paths=[FIXTURES],
        worker_entrypoint=[sys.executable, str(FIXTURES / "scripted_worker.py")],
        # Upload links that expire at once, and a watchdog that looks often: abandoned uploads end
        # (and multipart from 1 MB, whose links last as long as 500 kB/s needs: 3 s for 1.5 MB).
        settings={"upload_link_expiry_s": 1, "upload_grace_s": 0, "multipart_threshold_bytes": 1_000_000},
        watchdog_every_s=0.3,
    ) as local:
        yield local


@dataclass(frozen=True)
class Ended:
    record: JobRecord
    status: str  # of the execution
    history: list[dict[str, Any]]

    def entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]

    def failures(self, state_type: str = "TaskFailed") -> list[dict[str, Any]]:
        return [e["taskFailedEventDetails"] for e in self.history if e["type"] == state_type]


def run_job(stack: LocalStack, scenario: str) -> Ended:
    """Upload a file for a job named after the scenario and wait for its execution to stop."""
    job_id = f"{scenario}-{uuid.uuid4().hex[:12]}"
    stack.client("s3").put_object(
        Bucket=stack.settings.uploads_bucket, Key=upload_key(job_id, "clip.mp4"), Body=b"scripted"
    )
    return ended(stack, job_id)


def ended(stack: LocalStack, job_id: str) -> Ended:
    sfn = stack.client("stepfunctions")
    arn = f"{stack.resources.state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"

    def stopped() -> str | None:
        try:  # the upload's notification arrives asynchronously, as in AWS
            status = str(sfn.describe_execution(executionArn=arn)["status"])
        except sfn.exceptions.ExecutionDoesNotExist:
            return None
        return status if status != "RUNNING" else None

    status = wait_until(stopped, what=f"execution {job_id}")
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    record = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb")).get(job_id)
    assert record is not None
    return Ended(record, status, history)


def test_success_counts_each_chunk_once_on_the_cpu_after_the_gpu_fails(stack: LocalStack) -> None:
    job = run_job(stack, "ok")
    assert job.status == "SUCCEEDED"
    record = job.record
    assert (record.status, record.stage, record.error) == (JobStatus.SUCCEEDED, Stage.DONE, None)
    assert record.chunks_done == 2
    assert record.devices == {"0": "cpu", "1": "cpu"}
    assert set(record.stage_started) == {"VALIDATE", "SCAN", "PLAN", "ANALYZE", "MERGE", "COMPILE"}
    assert record.execution_arn is not None and record.execution_arn.endswith(record.job_id)
    gpu_failures = [json.loads(f["cause"]) for f in job.failures() if f["resource"] == "submitJob.sync"]
    assert len(gpu_failures) == 2
    assert all(f["JobQueue"].endswith("-gpu") and f["Status"] == "FAILED" for f in gpu_failures)
    # Each chunk leaves nothing in the Map's result, not even the GPU failure it caught: the
    # result of hundreds of chunks stays small.
    exits = [e["stateExitedEventDetails"] for e in job.history if "stateExitedEventDetails" in e]
    chunk_ends = [json.loads(e["output"]) for e in exits if e["name"] == "ChunkDone"]
    assert chunk_ends == [{}, {}]


def test_our_input_error_is_recorded_with_its_own_code_and_stage(stack: LocalStack) -> None:
    job = run_job(stack, "infected")
    assert job.status == "SUCCEEDED", "a rejection is a handled outcome, not a failed execution"
    assert job.entered()[-2:] == ["RecordRejected", "Rejected"]
    record = job.record
    assert record.status == JobStatus.REJECTED
    assert record.error is not None
    assert (record.error.code, record.error.stage) == ("MALWARE", "SCAN")
    assert record.error.message == "clip.mp4 is infected (Test.Signature)"
    assert record.finished_at is not None


@pytest.mark.parametrize(
    ("scenario", "message"),
    [("plain", "not a video: plain words"), ("braces", "{this is not json}")],
    ids=["plain-text", "braces-but-not-json"],
)
def test_an_input_error_without_our_json_is_still_a_rejection(
    stack: LocalStack, scenario: str, message: str
) -> None:
    job = run_job(stack, scenario)
    record = job.record
    assert record.status == JobStatus.REJECTED, (job.status, record)
    assert record.error is not None
    assert (record.error.code, record.error.stage) == ("INVALID_INPUT", "VALIDATE")
    assert message in record.error.message


def test_a_transient_error_is_retried_and_the_job_goes_on(stack: LocalStack) -> None:
    job = run_job(stack, "flaky")
    assert job.record.status == JobStatus.SUCCEEDED
    assert [f["error"] for f in job.failures() if f["resource"] == "invoke"] == ["TransientError"]
    assert job.entered().count("Plan") == 1  # a retry stays in the state


def test_a_crash_fails_the_job_with_a_readable_error_and_the_execution(stack: LocalStack) -> None:
    job = run_job(stack, "crash")
    assert job.status == "FAILED"
    assert job.entered()[-2:] == ["RecordFailed", "Failed"]
    record = job.record
    assert record.status == JobStatus.FAILED
    assert record.error is not None
    assert (record.error.code, record.error.stage) == ("RuntimeError", "MERGE")
    assert "merge blew up" in record.error.message


def test_a_chunk_failing_on_both_queues_fails_the_job_at_analyze(stack: LocalStack) -> None:
    job = run_job(stack, "cpufail")
    assert job.status == "FAILED"
    record = job.record
    assert record.status == JobStatus.FAILED
    assert record.error is not None
    assert (record.error.code, record.error.stage) == ("States.TaskFailed", "ANALYZE")
    assert "exit" in record.error.message.lower()
    assert "MergeFunction" not in job.entered() and "Merge" not in job.entered()


def test_a_chunk_worker_killed_once_is_retried_and_the_job_succeeds(stack: LocalStack) -> None:
    job = run_job(stack, "killed")
    assert (job.status, job.record.status) == ("SUCCEEDED", JobStatus.SUCCEEDED), job.record.error
    assert job.record.devices == {"0": "cpu", "1": "cpu"}
    batch = stack.client("batch")
    cpu_jobs = batch.list_jobs(jobQueue=stack.resources.job_queues["cpu"], filters=[
        {"name": "JOB_NAME", "values": [f"posereel-{job.record.job_id}-*"]}
    ])["jobSummaryList"]  # fmt: skip
    described = batch.describe_jobs(jobs=[j["jobId"] for j in cpu_jobs])["jobs"]
    assert sorted(len(d["attempts"]) for d in described) == [2, 2]  # killed (137), then done


def test_a_chunk_worker_input_error_is_not_retried(stack: LocalStack) -> None:
    job = run_job(stack, "badinput")
    assert job.record.status == JobStatus.FAILED
    cpu_failures = [
        json.loads(f["cause"])
        for f in job.failures()
        if f["resource"] == "submitJob.sync" and json.loads(f["cause"])["JobQueue"].endswith("-cpu")
    ]
    assert cpu_failures and all(len(f["Attempts"]) == 1 for f in cpu_failures)


def test_a_job_that_already_ended_is_never_overwritten(stack: LocalStack) -> None:
    job_id = f"ended-{uuid.uuid4().hex[:12]}"
    store = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb"))
    assert store.create_if_absent(JobRecord(job_id=job_id, status=JobStatus.SUCCEEDED, stage=Stage.DONE))
    stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.resources.state_machine_arn,
        name=job_id,
        input=json.dumps({"job_id": job_id, "source": {"bucket": "b", "key": "k"}}),
    )
    job = ended(stack, job_id)
    assert job.status == "FAILED"
    assert "Validate" not in job.entered()
    assert (job.record.status, job.record.stage, job.record.error) == (JobStatus.SUCCEEDED, Stage.DONE, None)


@pytest.mark.parametrize("size_bytes", [1_000, 1_500_000], ids=["form", "multipart"])
def test_an_upload_that_never_comes_ends_rejected_with_its_own_code(
    stack: LocalStack, size_bytes: int
) -> None:
    # Given an announced upload whose file is never sent (its link expires after 1 s here)
    client = ApiClient(stack.api_url, api_key=stack.api_key)
    answer = client._json(
        "POST",
        "/uploads",
        {"files": [{"filename": "never.mp4", "size_bytes": size_bytes, "content_type": "video/mp4"}]},
    )
    job_id = answer["uploads"][0]["job_id"]
    # When the watchdog's schedule comes by after the deadline
    view = wait_until(
        lambda: (v := client.get_job(job_id)).status.terminal and v, what=f"job {job_id} to end", timeout_s=30
    )
    # Then the job is REJECTED with a code and words that say what to do, and nothing waits
    assert view.status == JobStatus.REJECTED
    assert view.error is not None and (view.error.code, view.error.stage) == ("UPLOAD_EXPIRED", "UPLOAD")
    assert "announce the upload again" in view.error.message
    uploads = stack.client("s3").list_multipart_uploads(Bucket=stack.settings.uploads_bucket)
    assert [u for u in uploads.get("Uploads", []) if job_id in u["Key"]] == []
