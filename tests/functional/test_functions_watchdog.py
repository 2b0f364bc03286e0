"""The watchdog function and its adapters: Batch job queues on moto, paging with botocore's
Stubber, metrics into moto's CloudWatch.

moto cannot keep a Batch job waiting for capacity (it runs or finishes every job it is given), so
the jobs are submitted on moto and then put in the state under test through moto's backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.batch.models import batch_backends

import posereel_functions
from posereel.aws import BatchQueues, CloudWatchMetrics
from posereel.errors import TransientError
from posereel.pipeline.ports import MetricDatum, WorkerJob
from posereel.resources import JOBS_TABLE, METRICS_NAMESPACE, OLDEST_WAIT_METRIC, WAITING_JOBS_METRIC
from posereel_functions import watchdog
from tests.builders import ACCOUNT, NAMES, REGION, TABLE, LambdaContext, scheduled_event
from tests.functional.moto_pipeline import use_settings

GPU_QUEUE, CPU_QUEUE = NAMES.job_queue("gpu"), NAMES.job_queue("cpu")


@dataclass
class WorkerAws:
    """moto with the two Batch job queues of the chunk workers and a job definition."""

    monkeypatch: pytest.MonkeyPatch
    job_definition: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def submit(self, queue: str, *, status: str, waited_s: float) -> str:
        """A job in ``queue`` with ``status``, submitted ``waited_s`` ago."""
        job_id = self.client("batch").submit_job(
            jobName=f"chunk-{status.lower()}", jobQueue=queue, jobDefinition=self.job_definition
        )["jobId"]
        job = batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)
        job.status = status
        job.job_created_at = datetime.now() - timedelta(seconds=waited_s)  # moto keeps local time
        return str(job_id)

    def latest(self, name: str, queue: str) -> float:
        """The latest value of a watchdog metric of the test environment."""
        now = datetime.now(UTC)
        points = self.client("cloudwatch").get_metric_statistics(
            Namespace=METRICS_NAMESPACE,
            MetricName=name,
            Dimensions=[{"Name": "Environment", "Value": "test"}, {"Name": "Queue", "Value": queue}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert points, f"no {name} for the {queue} queue"
        return float(max(points, key=lambda p: p["Timestamp"])["Maximum"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerAws]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws(config={"batch": {"use_docker": False}}):
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="posereel-test-batch", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        batch = boto3.client("batch", region_name=REGION)
        compute = batch.create_compute_environment(
            computeEnvironmentName="posereel-test-compute",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )["computeEnvironmentArn"]
        for queue in (GPU_QUEUE, CPU_QUEUE):
            batch.create_job_queue(
                jobQueueName=queue,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute}],
            )
        definition = batch.register_job_definition(
            jobDefinitionName="posereel-test-worker",
            type="container",
            containerProperties={
                "image": "posereel-worker",
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
            },
        )["jobDefinitionArn"]
        # The jobs table: the watchdog also ends jobs whose upload never came (none here).
        boto3.client("dynamodb", region_name=REGION).create_table(**JOBS_TABLE.create_table_request(TABLE))
        stack = WorkerAws(monkeypatch=monkeypatch, job_definition=definition)
        use_settings(monkeypatch)
        try:
            yield stack
        finally:
            posereel_functions.reset()


# -- the function ------------------------------------------------------------------------------------


def test_the_watchdog_publishes_how_long_jobs_wait_per_queue(aws: WorkerAws) -> None:
    # Given two GPU jobs waiting 20 and 3 minutes, one about to start, and a CPU job running
    aws.submit(GPU_QUEUE, status="RUNNABLE", waited_s=1200)
    aws.submit(GPU_QUEUE, status="RUNNABLE", waited_s=180)
    aws.submit(GPU_QUEUE, status="PENDING", waited_s=3000)
    aws.submit(CPU_QUEUE, status="RUNNING", waited_s=3000)
    # When the schedule ticks
    result = watchdog.handler(scheduled_event(), LambdaContext())
    # Then its answer and CloudWatch say the same
    by_queue = {q["queue"]: q for q in result["queues"]}
    assert by_queue["gpu"]["waiting_jobs"] == 2
    assert by_queue["gpu"]["oldest_wait_s"] == pytest.approx(1200, abs=5)
    assert by_queue["cpu"] == {"queue": "cpu", "waiting_jobs": 0, "oldest_wait_s": 0.0}
    assert aws.latest(OLDEST_WAIT_METRIC, "gpu") == pytest.approx(1200, abs=5)
    assert aws.latest(WAITING_JOBS_METRIC, "gpu") == 2
    assert aws.latest(OLDEST_WAIT_METRIC, "cpu") == 0
    assert aws.latest(WAITING_JOBS_METRIC, "cpu") == 0


def test_a_misconfigured_watchdog_fails_naming_the_setting(aws: WorkerAws) -> None:
    aws.monkeypatch.delenv("POSEREEL_JOBS_TABLE")
    posereel_functions.reset()
    with pytest.raises(ValueError, match="jobs_table"):
        watchdog.handler(scheduled_event(), LambdaContext())


# -- Batch --------------------------------------------------------------------------------------------


def test_batch_queues_list_the_runnable_jobs_by_queue_name_or_arn(aws: WorkerAws) -> None:
    waiting = aws.submit(GPU_QUEUE, status="RUNNABLE", waited_s=600)
    for status in ("SUBMITTED", "PENDING", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        aws.submit(GPU_QUEUE, status=status, waited_s=900)
    aws.submit(CPU_QUEUE, status="RUNNABLE", waited_s=60)
    queues = BatchQueues()
    gpu_arn = aws.client("batch").describe_job_queues(jobQueues=[GPU_QUEUE])["jobQueues"][0]["jobQueueArn"]
    for queue in (GPU_QUEUE, gpu_arn):
        (job,) = queues.unstarted(queue)
        assert (job.job_id, job.status) == (waiting, "RUNNABLE")
        age = (datetime.now(UTC) - job.created_at).total_seconds() if job.created_at else None
        assert age == pytest.approx(600, abs=5)


def test_batch_queues_read_every_page() -> None:
    client = boto3.client("batch", region_name=REGION)
    created = 1767225600000  # 2026-01-01T00:00:00Z
    asked = {"jobQueue": GPU_QUEUE, "jobStatus": "RUNNABLE"}
    with Stubber(client) as stub:
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": [summary("a", created), summary("b", created + 1000)], "nextToken": "page-2"},
            asked,
        )
        stub.add_response(
            "list_jobs", {"jobSummaryList": [summary("c", created + 2500)]}, {**asked, "nextToken": "page-2"}
        )
        jobs = BatchQueues(client=client).unstarted(GPU_QUEUE)
        stub.assert_no_pending_responses()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert jobs == [
        WorkerJob("a", "RUNNABLE", start),
        WorkerJob("b", "RUNNABLE", start + timedelta(seconds=1)),
        WorkerJob("c", "RUNNABLE", start + timedelta(seconds=2.5)),
    ]


def test_throttled_listing_is_a_transient_error() -> None:
    client = boto3.client("batch", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error(
            "list_jobs", service_error_code="TooManyRequestsException", http_status_code=429
        )
        with pytest.raises(TransientError, match=GPU_QUEUE):
            BatchQueues(client=client).unstarted(GPU_QUEUE)


# -- CloudWatch ---------------------------------------------------------------------------------------


def test_metrics_land_in_the_namespace_with_their_dimensions_and_units(aws: WorkerAws) -> None:
    now = datetime.now(UTC)
    CloudWatchMetrics(METRICS_NAMESPACE).publish(
        [
            MetricDatum(OLDEST_WAIT_METRIC, 75.5, "Seconds", {"Environment": "test", "Queue": "gpu"}, now),
            MetricDatum(WAITING_JOBS_METRIC, 3, "Count", {"Environment": "test", "Queue": "gpu"}, now),
        ]
    )
    listed = aws.client("cloudwatch").list_metrics(Namespace=METRICS_NAMESPACE)["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == [OLDEST_WAIT_METRIC, WAITING_JOBS_METRIC]
    assert all(
        sorted((d["Name"], d["Value"]) for d in m["Dimensions"])
        == [("Environment", "test"), ("Queue", "gpu")]
        for m in listed
    )
    assert aws.latest(OLDEST_WAIT_METRIC, "gpu") == 75.5


def test_throttled_publishing_is_a_transient_error() -> None:
    client = boto3.client("cloudwatch", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("put_metric_data", service_error_code="Throttling", http_status_code=400)
        with pytest.raises(TransientError, match=METRICS_NAMESPACE):
            CloudWatchMetrics(METRICS_NAMESPACE, client=client).publish(
                [MetricDatum("RunnableJobs", 0, "Count", {"Queue": "cpu"}, datetime.now(UTC))]
            )


# -- builders -------------------------------------------------------------------------------------------


def summary(job_id: str, created_ms: int) -> dict[str, Any]:
    """A ListJobs job summary of a RUNNABLE job."""
    return {
        "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
        "jobId": job_id,
        "jobName": f"chunk-{job_id}",
        "createdAt": created_ms,
        "status": "RUNNABLE",
    }
