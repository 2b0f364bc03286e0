"""How long chunk jobs wait for capacity, as metrics an alarm can watch.

Batch publishes no "waiting for capacity" metric: a GPU job sits RUNNABLE without a trace while
the account has no GPU quota, spot has no capacity or the compute environment is at its max
vCPUs. ``publish_backlog`` runs every few minutes (the watchdog function) and publishes, per
worker queue, the age of the oldest job that waits and how many wait, 0 when none does: scaling to
zero is normal, and an alarm needs data to stay OK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from posereel.pipeline.ports import MetricDatum, MetricsPort, WorkerJob, WorkerQueuesPort
from posereel.resources import ENVIRONMENT_DIMENSION, OLDEST_WAIT_METRIC, QUEUE_DIMENSION, WAITING_JOBS_METRIC

log = logging.getLogger(__name__)

# The Batch job state that means "waiting for capacity": SUBMITTED and PENDING wait for the
# scheduler or for dependencies, not for instances.
WAITING_STATES = frozenset({"RUNNABLE"})


class QueueBacklog(BaseModel):
    """What waits in one worker queue at one moment."""

    model_config = ConfigDict(frozen=True)

    queue: str  # gpu | cpu
    waiting_jobs: int
    oldest_wait_s: float  # 0 when nothing waits


class WatchdogResult(BaseModel):
    queues: list[QueueBacklog]


def queue_backlog(queue: str, jobs: Iterable[WorkerJob], *, now: datetime) -> QueueBacklog:
    """The backlog of ``queue`` at ``now`` (timezone-aware): jobs in a waiting state, and the age
    of the oldest of them, counted from its submission (never negative, whatever the clocks say;
    a job whose submission time is unknown is counted, but has no age)."""
    waiting = [job for job in jobs if job.status in WAITING_STATES]
    ages = [(now - job.created_at).total_seconds() for job in waiting if job.created_at is not None]
    oldest = max(ages, default=0.0)
    return QueueBacklog(queue=queue, waiting_jobs=len(waiting), oldest_wait_s=round(max(oldest, 0.0), 3))


def backlog_metrics(backlog: QueueBacklog, *, env: str, now: datetime) -> list[MetricDatum]:
    dimensions = {ENVIRONMENT_DIMENSION: env, QUEUE_DIMENSION: backlog.queue}
    return [
        MetricDatum(OLDEST_WAIT_METRIC, backlog.oldest_wait_s, "Seconds", dimensions, now),
        MetricDatum(WAITING_JOBS_METRIC, float(backlog.waiting_jobs), "Count", dimensions, now),
    ]


def publish_backlog(
    queues: Mapping[str, str],
    *,
    env: str,
    workers: WorkerQueuesPort,
    metrics: MetricsPort,
    now: datetime,
) -> WatchdogResult:
    """Measure every queue (dimension value -> the queue's name or ARN for ``workers``) and
    publish the backlogs in one go: two metrics per queue, with dimensions Environment and Queue."""
    backlogs = [queue_backlog(label, workers.unstarted(queue), now=now) for label, queue in queues.items()]
    for backlog in backlogs:
        if backlog.waiting_jobs:
            log.info(
                "%s queue: %d job(s) waiting for capacity, the oldest for %.0f s",
                backlog.queue,
                backlog.waiting_jobs,
                backlog.oldest_wait_s,
            )
    metrics.publish([datum for backlog in backlogs for datum in backlog_metrics(backlog, env=env, now=now)])
    return WatchdogResult(queues=backlogs)
