"""validate: is the upload a video within the limits? {job_id, source} -> {"video": {...}}"""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import ValidateEvent
from posereel.pipeline.validate import validate_upload
from posereel_functions import media_store, metered, settings


@lambda_boundary
@metered("validate")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = validate_upload(ValidateEvent.model_validate(event), settings=settings(), media=media_store())
    return result.model_dump(mode="json")
