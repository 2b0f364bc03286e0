"""notify: a job ended (invoked with an event by finalize and the watchdog) -> its
"PoseReel Job State Change" event on the bus, and its owner's webhook (posereel.pipeline.notify)."""

from __future__ import annotations

from typing import Any

from posereel.aws import EventBus
from posereel.observability import lambda_boundary
from posereel.pipeline.events import NotifyEvent
from posereel.pipeline.notify import notify_job
from posereel.webhooks import HttpWebhooks
from posereel_functions import job_store, per_container, settings


@per_container
def event_bus() -> EventBus | None:
    return EventBus(settings().event_bus) if settings().event_bus else None


@per_container
def webhooks() -> HttpWebhooks:
    return HttpWebhooks(loopback=settings().webhook_loopback)


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = NotifyEvent.model_validate(event)
    return notify_job(job.job_id, jobs=job_store(), events=event_bus(), webhooks=webhooks()).model_dump(
        mode="json"
    )
