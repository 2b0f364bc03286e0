"""Telling owners a job ended: the bus event, the signed webhook, its retries and its record."""

from __future__ import annotations

import json

import pytest

from posereel.jobs import JobError, JobRecord, JobResult, JobStatus, Stage, Webhook
from posereel.pipeline.notify import job_message, notify_job
from posereel.resources import (
    FUNCTIONS,
    JOB_STATE_CHANGE,
    MAX_DELIVERIES,
    WEBHOOK_RETRY_DELAYS_S,
    WEBHOOK_TIMEOUT_S,
)
from posereel.webhooks import (
    SIGNATURE_HEADER,
    DeliveryFailed,
    HttpWebhooks,
    address_problem,
    sign,
    signature_valid,
    url_problem,
)
from tests.builders import JOB
from tests.fakes import FakeEvents, FakeJobStore, FakeWebhooks

SECRET = "s3cret-s3cret-s3cret"
URL = "https://hooks.example.com/posereel"


def ended(status: JobStatus = JobStatus.SUCCEEDED, *, webhook: bool = True, **fields: object) -> JobRecord:
    return JobRecord(
        job_id=JOB,
        owner="owner-1",
        status=status,
        stage=Stage.DONE if status == JobStatus.SUCCEEDED else Stage.VALIDATE,
        finished_at="2026-12-02T10:00:00.000Z",
        result=JobResult(prefix="results/x/", segments=2, reel_duration_s=12.5)
        if status == JobStatus.SUCCEEDED
        else None,
        error=JobError(code="TOO_LONG", message="the video is 30 min; at most 20 min", stage="VALIDATE")
        if status == JobStatus.REJECTED
        else None,
        notify=Webhook(url=URL, secret=SECRET, results_url=f"https://api.example.com/prod/jobs/{JOB}/results")
        if webhook
        else None,
        **fields,  # type: ignore[arg-type]
    )


def run(jobs: FakeJobStore, webhooks: FakeWebhooks, events: FakeEvents | None = None):  # type: ignore[no-untyped-def]
    waits: list[float] = []
    result = notify_job(
        JOB, jobs=jobs, events=events, webhooks=webhooks, sleep=waits.append, clock=lambda: "t"
    )
    return result, waits


# --- the message and its signature ------------------------------------------------------------


def test_a_succeeded_jobs_webhook_is_signed_json_with_its_reel_and_links() -> None:
    jobs, webhooks = FakeJobStore(ended()), FakeWebhooks(204)
    result, _ = run(jobs, webhooks)
    assert (result.delivered, result.attempts) == (True, 1)
    url, body, headers = webhooks.requests[0]
    assert url == URL and headers["Content-Type"] == "application/json"
    assert signature_valid(body, SECRET, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER].startswith("sha256=") and len(headers[SIGNATURE_HEADER]) == 7 + 64
    message = json.loads(body)
    assert message == {
        "job_id": JOB,
        "status": "SUCCEEDED",
        "stage": "DONE",
        "finished_at": "2026-12-02T10:00:00.000Z",
        "reel_duration_s": 12.5,
        "results_url": f"https://api.example.com/prod/jobs/{JOB}/results",
        "job_url": f"https://api.example.com/prod/jobs/{JOB}",
    }


def test_a_rejected_jobs_message_carries_its_error_in_the_owners_words() -> None:
    message = job_message(ended(JobStatus.REJECTED))
    assert message["status"] == "REJECTED" and message["error"]["code"] == "TOO_LONG"
    assert "reel_duration_s" not in message


def test_a_crash_is_reported_by_the_projects_own_code_not_the_python_error() -> None:
    record = ended(JobStatus.FAILED).model_copy(
        update={"error": JobError(code="KeyError", message="'x'", stage="MERGE")}
    )
    assert job_message(record)["error"]["code"] == "INTERNAL"


def test_a_changed_body_or_another_secret_fails_the_signature() -> None:
    body = b'{"job_id":"x"}'
    header = sign(body, SECRET)
    assert signature_valid(body, SECRET, header)
    assert not signature_valid(body + b" ", SECRET, header)
    assert not signature_valid(body, SECRET + "x", header)


# --- retries and the record -------------------------------------------------------------------


def test_a_failing_endpoint_is_retried_after_each_wait_and_every_attempt_is_recorded() -> None:
    jobs = FakeJobStore(ended())
    webhooks = FakeWebhooks(500, DeliveryFailed("connection refused"), 503, 200)
    result, waits = run(jobs, webhooks)
    assert (result.delivered, result.attempts) == (True, 4)
    assert waits == list(WEBHOOK_RETRY_DELAYS_S)
    deliveries = jobs.records[JOB].deliveries
    assert [(d.attempt, d.ok, d.http_status) for d in deliveries] == [
        (1, False, 500),
        (2, False, None),
        (3, False, 503),
        (4, True, 200),
    ]
    assert deliveries[1].error == "connection refused"
    # one delivery id for every attempt of one message, so a receiver can drop a repeat
    assert len({headers["X-PoseReel-Delivery"] for _, _, headers in webhooks.requests}) == 1


def test_a_dead_endpoint_ends_undelivered_without_raising() -> None:
    jobs = FakeJobStore(ended())
    result, _ = run(jobs, FakeWebhooks(DeliveryFailed("timed out")))
    assert (result.delivered, result.attempts) == (False, 1 + len(WEBHOOK_RETRY_DELAYS_S))
    assert [d.ok for d in jobs.records[JOB].deliveries] == [False] * (1 + len(WEBHOOK_RETRY_DELAYS_S))


def test_a_status_the_webhook_took_is_not_sent_again() -> None:
    jobs = FakeJobStore(ended())
    run(jobs, FakeWebhooks(200))
    again = FakeWebhooks(200)
    result, _ = run(jobs, again)
    assert result.delivered is True and again.requests == []


def test_the_record_keeps_only_the_latest_deliveries() -> None:
    jobs = FakeJobStore(ended())
    for _ in range(MAX_DELIVERIES):
        run(jobs, FakeWebhooks(DeliveryFailed("down")))
    assert len(jobs.records[JOB].deliveries) == MAX_DELIVERIES


def test_a_job_that_has_not_ended_is_left_alone() -> None:
    jobs = FakeJobStore(ended().model_copy(update={"status": JobStatus.RUNNING}))
    webhooks, events = FakeWebhooks(200), FakeEvents()
    result, _ = run(jobs, webhooks, events)
    assert result.status is None and webhooks.requests == [] and events.events == []


def test_the_notify_function_outlives_every_attempt() -> None:
    attempts = 1 + len(WEBHOOK_RETRY_DELAYS_S)
    assert sum(WEBHOOK_RETRY_DELAYS_S) + attempts * WEBHOOK_TIMEOUT_S < FUNCTIONS["notify"].timeout_s


# --- the event bus ----------------------------------------------------------------------------


def test_each_ending_goes_on_the_bus_once_with_its_owner_webhook_or_not() -> None:
    jobs, events = FakeJobStore(ended(webhook=False)), FakeEvents()
    result, _ = run(jobs, FakeWebhooks(), events)
    assert result.announced is True and result.delivered is None
    [(detail_type, detail)] = events.events
    assert detail_type == JOB_STATE_CHANGE
    assert (detail["job_id"], detail["status"], detail["owner"]) == (JOB, "SUCCEEDED", "owner-1")
    second, _ = run(jobs, FakeWebhooks(), events)
    assert second.announced is False and len(events.events) == 1


# --- where webhooks may point -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://10.0.0.8/x",
        "https://192.168.1.2/x",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://localhost/x",
        "https://metadata.google.internal/x",
        "https://user:pw@hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https:///x",
        "https://hooks.example.com:0/x",
        "not a url",
    ],
)
def test_webhooks_to_private_plain_or_odd_urls_are_refused(url: str) -> None:
    assert url_problem(url, loopback=False) is not None


@pytest.mark.parametrize("url", ["https://hooks.example.com/x?token=1", "https://8.8.8.8:8443/hook"])
def test_public_https_urls_are_accepted(url: str) -> None:
    assert url_problem(url, loopback=False) is None


def test_loopback_http_is_accepted_only_where_allowed() -> None:
    assert url_problem("http://127.0.0.1:8080/hook", loopback=True) is None
    assert url_problem("http://127.0.0.1:8080/hook", loopback=False) is not None
    assert url_problem("http://10.0.0.8/hook", loopback=True) is not None


def test_a_name_that_resolves_to_a_private_address_is_refused_before_sending() -> None:
    assert address_problem("localhost", loopback=False) is not None
    with pytest.raises(DeliveryFailed, match="not a public"):
        HttpWebhooks(loopback=False).post("https://localhost/x", b"{}", {}, timeout_s=1)
