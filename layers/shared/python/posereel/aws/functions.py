"""Lambda functions invoked by other functions: an event invocation (queued by Lambda, which
retries and dead-letters it), as the API starts a re-cut."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

from posereel.aws._errors import transient_errors


class Functions:
    """Implements posereel.pipeline.ports.FunctionsPort."""

    def __init__(self, *, client: Any = None) -> None:
        self._client = client if client is not None else boto3.client("lambda")

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        with transient_errors(f"invoking {function_name}"):
            self._client.invoke(
                FunctionName=function_name, InvocationType="Event", Payload=json.dumps(dict(payload)).encode()
            )
