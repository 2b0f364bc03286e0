"""merge: stitch the chunk results, find segments. {job_id} -> {"segments", "tracks"}"""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import MergeEvent, MergeResult
from posereel.pipeline.merge import merge_job
from posereel_functions import after_container, job_store, media_store, metered, settings


@lambda_boundary
@metered("merge")
@after_container("merge", MergeResult)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = merge_job(
        MergeEvent.model_validate(event), settings=settings(), media=media_store(), jobs=job_store()
    )
    return result.model_dump(mode="json")
