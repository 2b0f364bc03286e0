"""watchdog: a schedule's tick (EventBridge, every 5 minutes) -> how long chunk jobs have waited for
capacity in each worker queue, published as the CloudWatch metrics the stuck-job alarms watch;
and every job whose upload never came ended (posereel.pipeline.expiry). The tick's event carries
nothing either needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from posereel.aws import BatchQueues, CloudWatchMetrics
from posereel.observability import lambda_boundary
from posereel.pipeline.expiry import expire_uploads
from posereel.pipeline.watchdog import publish_backlog
from posereel.resources import METRICS_NAMESPACE
from posereel_functions import functions, job_store, media_store, per_container, settings, workflow


@per_container
def worker_queues() -> BatchQueues:
    return BatchQueues()


@per_container
def cloudwatch() -> CloudWatchMetrics:
    return CloudWatchMetrics(METRICS_NAMESPACE)


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    uploads = expire_uploads(
        settings=settings(),
        jobs=job_store(),
        media=media_store(),
        workflow=workflow(),
        functions=functions(),
        now=now,
    )
    backlog = publish_backlog(
        settings().worker_queues, env=settings().env, workers=worker_queues(), metrics=cloudwatch(), now=now
    )
    return {**backlog.model_dump(mode="json"), **uploads.model_dump(mode="json")}
