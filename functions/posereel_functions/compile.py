"""compile: render and upload the results, record them. {job_id} -> {"reel_key", "reel_duration_s"}"""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.compile import compile_job
from posereel.pipeline.events import CompileEvent, CompileResult
from posereel_functions import after_container, job_store, media_store, metered, settings


@lambda_boundary
@metered("compile")
@after_container("compile", CompileResult)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = compile_job(
        CompileEvent.model_validate(event), settings=settings(), media=media_store(), jobs=job_store()
    )
    return result.model_dump(mode="json")
