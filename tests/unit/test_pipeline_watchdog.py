"""The watchdog service: per worker queue, the age of the oldest job waiting for capacity and how
many wait, published as metrics (0 when none waits, so the alarms always have data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from posereel.pipeline.ports import WorkerJob
from posereel.pipeline.watchdog import WatchdogResult, publish_backlog
from posereel.resources import OLDEST_WAIT_METRIC, WAITING_JOBS_METRIC
from tests.fakes import FakeMetrics, FakeWorkerQueues

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
QUEUES = {"gpu": "posereel-test-gpu", "cpu": "posereel-test-cpu"}


def job(status: str, waited_s: float | None, n: int = 0) -> WorkerJob:
    created = None if waited_s is None else NOW - timedelta(seconds=waited_s)
    return WorkerJob(job_id=f"job-{status.lower()}-{n}", status=status, created_at=created)


def run(workers: FakeWorkerQueues, *, queues: dict[str, str] = QUEUES) -> tuple[WatchdogResult, FakeMetrics]:
    metrics = FakeMetrics()
    result = publish_backlog(queues, env="test", workers=workers, metrics=metrics, now=NOW)
    return result, metrics


def test_each_queue_reports_its_oldest_waiting_job_and_how_many_wait() -> None:
    # Given three GPU jobs waiting for 2, 17 and 9 minutes and one CPU job for 40 s
    workers = FakeWorkerQueues(
        {
            "posereel-test-gpu": [job("RUNNABLE", 120, 1), job("RUNNABLE", 1020, 2), job("RUNNABLE", 540, 3)],
            "posereel-test-cpu": [job("RUNNABLE", 40)],
        }
    )
    # When the watchdog runs
    result, metrics = run(workers)
    # Then each queue is measured by its own name and published under its label
    assert workers.asked == ["posereel-test-gpu", "posereel-test-cpu"]
    assert [(q.queue, q.waiting_jobs, q.oldest_wait_s) for q in result.queues] == [
        ("gpu", 3, 1020.0),
        ("cpu", 1, 40.0),
    ]
    assert metrics.value(OLDEST_WAIT_METRIC, Environment="test", Queue="gpu") == 1020.0
    assert metrics.value(WAITING_JOBS_METRIC, Environment="test", Queue="gpu") == 3
    assert metrics.value(OLDEST_WAIT_METRIC, Environment="test", Queue="cpu") == 40.0
    assert metrics.value(WAITING_JOBS_METRIC, Environment="test", Queue="cpu") == 1


def test_empty_queues_publish_zero_in_one_call() -> None:
    # Given no job anywhere (the workers scaled to zero)
    result, metrics = run(FakeWorkerQueues())
    # Then both queues still get data points, all zero, in a single PutMetricData's worth
    assert [(q.waiting_jobs, q.oldest_wait_s) for q in result.queues] == [(0, 0.0), (0, 0.0)]
    (call,) = metrics.calls
    assert sorted((d.name, d.dimensions["Queue"], d.value) for d in call) == [
        (OLDEST_WAIT_METRIC, "cpu", 0.0),
        (OLDEST_WAIT_METRIC, "gpu", 0.0),
        (WAITING_JOBS_METRIC, "cpu", 0.0),
        (WAITING_JOBS_METRIC, "gpu", 0.0),
    ]
    assert {d.unit for d in call if d.name == OLDEST_WAIT_METRIC} == {"Seconds"}
    assert {d.unit for d in call if d.name == WAITING_JOBS_METRIC} == {"Count"}
    assert {d.timestamp for d in call} == {NOW}


def test_only_jobs_waiting_for_capacity_count() -> None:
    # Given old jobs in every other state (SUBMITTED/PENDING wait for the scheduler or
    # dependencies, the rest has capacity) and younger ones that wait
    waiting = ["RUNNABLE"]
    not_waiting = ["SUBMITTED", "PENDING", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
    held = [job(status, 3600, n) for n, status in enumerate(not_waiting)]
    held += [job(status, 300 + 60 * n, n) for n, status in enumerate(waiting)]
    workers = FakeWorkerQueues({"posereel-test-gpu": held})
    # When
    result, _ = run(workers)
    # Then the others neither count nor age the queue
    gpu = result.queues[0]
    assert gpu.waiting_jobs == len(waiting)
    assert gpu.oldest_wait_s == 300 + 60 * (len(waiting) - 1)


def test_a_job_without_submission_time_counts_but_has_no_age() -> None:
    workers = FakeWorkerQueues({"posereel-test-gpu": [job("RUNNABLE", None), job("RUNNABLE", 90)]})
    result, _ = run(workers)
    assert (result.queues[0].waiting_jobs, result.queues[0].oldest_wait_s) == (2, 90.0)


def test_a_job_from_a_clock_ahead_is_no_negative_age() -> None:
    workers = FakeWorkerQueues({"posereel-test-cpu": [job("RUNNABLE", -5)]})
    result, _ = run(workers)
    assert result.queues[1].oldest_wait_s == 0.0 and result.queues[1].waiting_jobs == 1
