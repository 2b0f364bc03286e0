"""watchdog: a schedule's tick (EventBridge, every 5 minutes) -> how long chunk jobs have waited for
capacity in each worker queue, published as the CloudWatch metrics the stuck-job alarms watch.
The tick's event carries nothing the measurement needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from posereel.aws import BatchQueues, CloudWatchMetrics, EcsTasks
from posereel.observability import lambda_boundary
from posereel.pipeline.ports import WorkerQueuesPort
from posereel.pipeline.watchdog import publish_backlog
from posereel.resources import METRICS_NAMESPACE
from posereel.settings import WatchdogSettings
from posereel_functions import per_container


@per_container
def watchdog_settings() -> WatchdogSettings:
    return WatchdogSettings()  # the required fields come from POSEREEL_* variables


@per_container
def worker_queues() -> WorkerQueuesPort:
    settings = watchdog_settings()
    if settings.worker_backend == "ecs":
        assert settings.worker_cluster is not None  # the settings require it for ecs
        return EcsTasks(settings.worker_cluster)
    return BatchQueues()


@per_container
def cloudwatch() -> CloudWatchMetrics:
    return CloudWatchMetrics(METRICS_NAMESPACE)


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = watchdog_settings()
    result = publish_backlog(
        settings.queues,
        backend=settings.worker_backend,
        env=settings.env,
        workers=worker_queues(),
        metrics=cloudwatch(),
        now=datetime.now(UTC),
    )
    return result.model_dump(mode="json")
