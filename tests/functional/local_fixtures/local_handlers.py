"""Test-only Lambda handlers for the local-AWS hook tests. They run in the hooks' worker
processes, with this directory as the function code root (its /var/task)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

# Read once at import, as handlers read their settings: each function must see its own value.
GREETING_AT_IMPORT = os.environ.get("GREETING", "<unset>")


class TransientError(Exception):
    """Trying again may help; the workflow retries it."""


class InputError(Exception):
    """The input can never succeed; the workflow catches it."""


def greet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print(f"greeting {event['name']}")
    return {
        "greeting": f"{GREETING_AT_IMPORT}, {event['name']}",
        "greeting_env": os.environ.get("GREETING"),
        "pid": os.getpid(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
    }


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails with TransientError on its first `fail_times` calls (counted in a file)."""
    counter = Path(event["attempts_dir"]) / "flaky-attempts"
    with counter.open("a") as f:
        f.write("x\n")
    attempts = len(counter.read_text().splitlines())
    if attempts <= int(event.get("fail_times", 1)):
        raise TransientError(f"attempt {attempts} failed")
    return {"attempts": attempts}


def reject(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise InputError(f"not a video: {event['name']}")


def read_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reaches the local AWS only through boto3 and AWS_ENDPOINT_URL, like a real handler."""
    import boto3

    item = boto3.client("dynamodb").get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": event["job_id"]}}
    )
    return {"status": item["Item"]["status"]["S"]}


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event["seconds"]))
    return {"slept": event["seconds"]}


def record_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes the event where the test can read it (for invocations nobody waits on)."""
    import json

    target = Path(os.environ["RECORD_DIR"]) / f"{context.aws_request_id}.json"
    target.write_text(json.dumps(event))
    return {"recorded": str(target)}
