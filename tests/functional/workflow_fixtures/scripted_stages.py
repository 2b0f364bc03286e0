"""Test-only stand-ins for the pipeline's stage handlers, scripted by the job id's first word, so
that the real workflow file can be driven down each of its paths in a second or two.

They sit behind the real handler boundary (posereel.observability.lambda_boundary), so errors
leave them exactly as they leave the real handlers.
"""

from __future__ import annotations

from typing import Any

import boto3

from posereel.errors import MalwareError, TransientError
from posereel.observability import lambda_boundary
from posereel.pipeline.events import ChunkRef, PlanResult
from posereel.settings import PipelineSettings

SETTINGS = PipelineSettings()  # type: ignore[call-arg]


class InputError(Exception):
    """Not ours: an InputError whose message is plain text, not {"code", "message"} JSON."""


def scenario(event: dict[str, Any]) -> str:
    return str(event["job_id"]).split("-", 1)[0]


@lambda_boundary
def validate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    match scenario(event):
        case "plain":
            raise InputError("not a video: plain words")
        case "braces":
            raise InputError("{this is not json}")
    return {"video": {"duration_s": 10.0}}


@lambda_boundary
def scan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if scenario(event) == "infected":
        raise MalwareError("clip.mp4 is infected (Test.Signature)")
    return {"clean": True, "engine": "scripted", "source": event["source"]}


@lambda_boundary
def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if scenario(event) == "flaky":
        # Fails the first time (a marker object remembers it), like throttling would.
        s3 = boto3.client("s3")
        marker = f"work/{event['job_id']}/plan-attempted"
        if "Contents" not in s3.list_objects_v2(Bucket=SETTINGS.results_bucket, Prefix=marker):
            s3.put_object(Bucket=SETTINGS.results_bucket, Key=marker, Body=b"1")
            raise TransientError("throttled, try again")
    return PlanResult(
        plan_key=f"work/{event['job_id']}/plan.json", chunks=[ChunkRef(index=0), ChunkRef(index=1)]
    ).model_dump(mode="json")


@lambda_boundary
def merge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if scenario(event) == "crash":
        raise RuntimeError("merge blew up")
    return {"segments": 1, "tracks": 1}


@lambda_boundary
def compile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"reel_key": None, "reel_duration_s": 0.0}
