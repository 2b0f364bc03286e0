"""Owners are told a job ended, on the local stack with real footage: the webhook given at upload
arrives at a listener on 127.0.0.1, signed, for a job that SUCCEEDED and one that was REJECTED;
a dead endpoint never holds up a job and its attempts are recorded; every ending is put on the
environment's bus, where an owner's rule routes it (here to an SQS queue)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from posereel.jobs import JobStatus
from posereel.pipeline.api import JobView
from posereel.resources import EVENT_SOURCE, JOB_STATE_CHANGE
from posereel.webhooks import SIGNATURE_HEADER, signature_valid
from posereel_local.client import ApiClient
from posereel_local.stack import LocalStack
from tests.support import wait_until

pytestmark = pytest.mark.media

SECRET = "a-webhook-secret-of-the-owner"
TIMEOUT_S = 240.0


@dataclass
class Listener:
    url: str
    got: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def messages(self, job_id: str) -> list[tuple[dict[str, Any], bytes, dict[str, str]]]:
        found = [(json.loads(body), body, headers) for body, headers in list(self.got)]
        return [m for m in found if m[0]["job_id"] == job_id]


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    got: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, {k.lower(): v for k, v in self.headers.items()}))  # names are case-blind
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Listener(url=f"http://127.0.0.1:{server.server_port}/hooks/posereel", got=got)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(api_port=0, model_dir=models_dir, settings={"max_duration_s": 15.0}) as local:
        yield local


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.api_key)


@pytest.fixture(scope="module")
def routed(stack: LocalStack) -> str:
    """An owner's rule on the bus: every PoseReel job state change to an SQS queue."""
    sqs, events = stack.client("sqs"), stack.client("events")
    queue = sqs.create_queue(QueueName="owner-job-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.settings.event_bus
    pattern = {"source": [EVENT_SOURCE], "detail-type": [JOB_STATE_CHANGE]}
    events.put_rule(Name="owner-rule", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="owner-rule", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue)


def bus_events(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    answer = stack.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def short(clip: Callable[[str], Path], tmp_path: Path) -> Path:
    out = tmp_path / "short.mp4"
    cut = ["ffmpeg", "-v", "error", "-y", "-i", str(clip("sports2d_walk_in_out")), "-t", "2.5", "-c", "copy"]
    subprocess.run([*cut, str(out)], check=True)
    return out


def ended_with_webhook(api: ApiClient, listener: Listener, path: Path) -> tuple[JobView, dict[str, Any]]:
    job_id = api.submit(path, notify={"url": listener.url, "secret": SECRET})
    record = api.wait(job_id, timeout_s=TIMEOUT_S, poll_s=0.2)
    (message, body, headers), *again = wait_until(
        lambda: listener.messages(job_id), what=f"the webhook of job {job_id}", timeout_s=30
    )
    assert not again, "one ending, one delivery"
    assert signature_valid(body, SECRET, headers[SIGNATURE_HEADER.lower()])
    return record, message


def test_a_succeeded_job_calls_its_webhook_signed_with_its_reel_and_results(
    stack: LocalStack,
    api: ApiClient,
    listener: Listener,
    routed: str,
    clip: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    record, message = ended_with_webhook(api, listener, short(clip, tmp_path))
    assert record.status == JobStatus.SUCCEEDED and record.result is not None
    assert message["status"] == "SUCCEEDED" and message["stage"] == "DONE"
    assert message["reel_duration_s"] == record.result.reel_duration_s
    assert message["results_url"] == f"{stack.api_url}/jobs/{record.job_id}/results"
    # the link works with the owner's key
    assert api.results(record.job_id)["job_id"] == record.job_id
    # the job shows how the delivery went, never the secret
    shown = wait_until(
        lambda: (v := api.get_job(record.job_id)).notify and v.notify.deliveries and v, what="delivery"
    )
    assert shown.notify is not None and shown.notify.url == listener.url
    assert [(d.ok, d.http_status) for d in shown.notify.deliveries] == [(True, 204)]
    assert SECRET not in shown.model_dump_json()
    # and the owner's rule on the bus got the same ending
    event = wait_until(
        lambda: next((e for e in bus_events(stack, routed) if e["detail"]["job_id"] == record.job_id), None),
        what="the bus event",
        timeout_s=30,
    )
    assert event["detail-type"] == JOB_STATE_CHANGE and event["source"] == EVENT_SOURCE
    assert event["detail"]["status"] == "SUCCEEDED" and event["detail"]["owner"]


def test_a_rejected_job_calls_its_webhook_with_the_reason(
    api: ApiClient, listener: Listener, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    record, message = ended_with_webhook(api, listener, text)
    assert record.status == JobStatus.REJECTED
    assert message["status"] == "REJECTED" and message["error"]["code"] == "NOT_A_VIDEO"
    assert "reel_duration_s" not in message


def test_a_dead_endpoint_holds_up_no_job_and_its_attempts_are_recorded(
    api: ApiClient, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    # port 9 (discard) has no listener here: every attempt is refused at once
    job_id = api.submit(text, notify={"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    record = api.wait(job_id, timeout_s=TIMEOUT_S, poll_s=0.2)
    assert record.status == JobStatus.REJECTED
    first = wait_until(
        lambda: (v := api.get_job(job_id)).notify and v.notify.deliveries and v.notify.deliveries[0],
        what="the first attempt",
        timeout_s=30,
    )
    assert first.ok is False and first.error and first.attempt == 1


def test_a_webhook_to_a_private_address_is_refused_at_upload(api: ApiClient, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("x")
    with pytest.raises(Exception, match="not a public address"):
        api.create_upload(
            text, content_type="video/mp4", notify={"url": "https://10.1.2.3/hook", "secret": SECRET}
        )
