"""plan: chunk the video, write work/{job_id}/plan.json. {job_id, source} -> {"plan_key", "chunks"}"""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import PlanEvent
from posereel.pipeline.plan import plan_job
from posereel_functions import job_store, media_store, metered, settings


@lambda_boundary
@metered("plan")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = plan_job(
        PlanEvent.model_validate(event), settings=settings(), media=media_store(), jobs=job_store()
    )
    return result.model_dump(mode="json")
