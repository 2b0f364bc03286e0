"""Tell a job's owner that it ended: an event on the environment's bus, and their webhook.

``notify_job`` runs in the notify function, invoked with an event (so it never holds up the job)
by finalize, when a workflow execution ends, and by the watchdog, when an upload never came. It
reads the job as stored; a job that has not ended is left alone. Each terminal status is announced
once:

- on the bus, a "PoseReel Job State Change" event (``resources.JOB_STATE_CHANGE``) with the
  message below and the owner, unless the record says that status was put already;
- to the webhook given at upload (``notify: {url, secret}``), the message as JSON, signed
  (posereel.webhooks), tried once and again after each of ``resources.WEBHOOK_RETRY_DELAYS_S``
  until a 2xx answer; every attempt is recorded on the job (``deliveries``, the latest
  ``resources.MAX_DELIVERIES``). A webhook that already took this status is not sent again.

The message: ``{job_id, status, stage, error?, reel_duration_s?, results_url, job_url,
finished_at}``; ``error`` as the owner sees it (pipeline.public).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from posereel.jobs import Delivery, JobRecord, JobStatus, utc_now
from posereel.pipeline.events import NotifyResult
from posereel.pipeline.ports import EventsPort, JobStorePort, WebhookPort
from posereel.pipeline.public import public_error
from posereel.resources import JOB_STATE_CHANGE, MAX_DELIVERIES, WEBHOOK_RETRY_DELAYS_S, WEBHOOK_TIMEOUT_S
from posereel.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    DeliveryFailed,
    sign,
)

log = logging.getLogger(__name__)

# The X-PoseReel-Event header of a webhook that announces a job's end.
JOB_ENDED = "job.ended"


def job_message(record: JobRecord) -> dict[str, Any]:
    """What the bus event and the webhook say about an ended job."""
    message: dict[str, Any] = {
        "job_id": record.job_id,
        "status": record.status.value,
        "stage": record.stage.value,
        "finished_at": record.finished_at,
    }
    if record.error is not None:
        error = public_error(record.error)
        message["error"] = {"code": error.code, "message": error.message}
    if record.result is not None:
        message["reel_duration_s"] = record.result.reel_duration_s
    if record.notify is not None:
        message["results_url"] = record.notify.results_url
        message["job_url"] = record.notify.results_url.removesuffix("/results")
    return message


def notify_job(
    job_id: str,
    *,
    jobs: JobStorePort,
    events: EventsPort | None,
    webhooks: WebhookPort,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], str] = utc_now,
) -> NotifyResult:
    record = jobs.get(job_id)
    if record is None or not record.status.terminal:
        log.info(
            "job %s: not ended (%s); nothing to announce", job_id, record.status if record else "no record"
        )
        return NotifyResult(job_id=job_id, status=None)
    status = record.status
    announced = False
    if events is not None and status not in record.announced:
        events.put(JOB_STATE_CHANGE, {**job_message(record), "owner": record.owner})
        jobs.record_notification(job_id, announced=[*record.announced, status])
        announced = True
    if record.notify is None:
        return NotifyResult(job_id=job_id, status=status.value, announced=announced)
    if any(d.ok and d.job_status == status for d in record.deliveries):
        return NotifyResult(job_id=job_id, status=status.value, announced=announced, delivered=True)
    body = json.dumps(job_message(record), separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: JOB_ENDED,
        DELIVERY_HEADER: str(uuid.uuid4()),
        SIGNATURE_HEADER: sign(body, record.notify.secret),
    }
    deliveries = list(record.deliveries)
    waits = (0.0, *WEBHOOK_RETRY_DELAYS_S)
    for attempt, wait in enumerate(waits, start=1):
        if wait:
            sleep(wait)
        delivery = _attempt(
            webhooks, record.notify.url, body, headers, attempt=attempt, status=status, clock=clock
        )
        deliveries = [*deliveries, delivery][-MAX_DELIVERIES:]
        jobs.record_notification(job_id, deliveries=deliveries)
        if delivery.ok:
            return NotifyResult(
                job_id=job_id, status=status.value, announced=announced, delivered=True, attempts=attempt
            )
        log.warning(
            "job %s: webhook attempt %d of %d failed: %s",
            job_id,
            attempt,
            len(waits),
            delivery.error or f"HTTP {delivery.http_status}",
        )
    return NotifyResult(
        job_id=job_id, status=status.value, announced=announced, delivered=False, attempts=len(waits)
    )


def _attempt(
    webhooks: WebhookPort,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    attempt: int,
    status: JobStatus,
    clock: Callable[[], str],
) -> Delivery:
    at = clock()
    started = time.monotonic()
    try:
        answer = webhooks.post(url, body, headers, timeout_s=WEBHOOK_TIMEOUT_S)
    except DeliveryFailed as exc:
        return Delivery(
            job_status=status,
            attempt=attempt,
            at=at,
            ok=False,
            error=str(exc)[:300],
            duration_ms=_ms(started),
        )
    return Delivery(
        job_status=status,
        attempt=attempt,
        at=at,
        ok=200 <= answer.status < 300,
        http_status=answer.status,
        duration_ms=_ms(started),
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
