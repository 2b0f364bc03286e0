"""The environment's EventBridge bus: a "PoseReel Job State Change" event when a job ends, which
owners route to SNS, Slack (AWS Chatbot) or their own code with rules of their own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

from posereel.aws._errors import transient_errors
from posereel.errors import TransientError
from posereel.resources import EVENT_SOURCE


class EventBus:
    """Implements posereel.pipeline.ports.EventsPort."""

    def __init__(self, bus_name: str, *, client: Any = None) -> None:
        self.bus_name = bus_name
        self._client = client if client is not None else boto3.client("events")

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {
            "EventBusName": self.bus_name,
            "Source": EVENT_SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(dict(detail)),
        }
        with transient_errors(f"putting {detail_type!r} on {self.bus_name}"):
            answer = self._client.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            failed = answer["Entries"][0]
            reason = f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            raise TransientError(f"{self.bus_name} did not take the event: {reason}")
