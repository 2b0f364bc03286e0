"""recut: cut one re-cut of a finished job from its stored tracks. {job_id, reel_id} -> {status, ...}

Invoked by the api with an event (asynchronously); a transient failure raises, so Lambda runs it
again, anything else is recorded on the reel."""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import ReelEvent
from posereel.pipeline.recut import run_reel
from posereel_functions import job_store, media_store, metered, settings


@lambda_boundary
@metered("recut")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = run_reel(
        ReelEvent.model_validate(event), settings=settings(), jobs=job_store(), media=media_store()
    )
    return result.model_dump(mode="json")
