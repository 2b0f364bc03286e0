"""start: an upload landed (EventBridge "Object Created" or S3 notification) -> start its job."""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import parse_s3_event
from posereel.pipeline.start import start_jobs
from posereel_functions import job_store, media_store, settings, workflow


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = start_jobs(
        parse_s3_event(event), settings=settings(), jobs=job_store(), workflow=workflow(), media=media_store()
    )
    return result.model_dump(mode="json")
