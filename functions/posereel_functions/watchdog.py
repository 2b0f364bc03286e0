"""watchdog: a schedule's tick (EventBridge, every 5 minutes) -> how long chunk jobs have waited for
capacity in each worker queue, published as the CloudWatch metrics the stuck-job alarms watch.
The tick's event carries nothing the measurement needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from posereel.aws import BatchQueues, CloudWatchMetrics
from posereel.observability import lambda_boundary
from posereel.pipeline.watchdog import publish_backlog
from posereel.resources import METRICS_NAMESPACE
from posereel_functions import per_container, settings


@per_container
def worker_queues() -> BatchQueues:
    return BatchQueues()


@per_container
def cloudwatch() -> CloudWatchMetrics:
    return CloudWatchMetrics(METRICS_NAMESPACE)


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = publish_backlog(
        settings().worker_queues,
        env=settings().env,
        workers=worker_queues(),
        metrics=cloudwatch(),
        now=datetime.now(UTC),
    )
    return result.model_dump(mode="json")
