"""finalize: a workflow execution changed status (EventBridge) -> reconcile its job, and have the
notify function tell the owner when it ended."""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import ExecutionStatusEvent
from posereel.pipeline.finalize import finalize_execution
from posereel_functions import functions, job_store, settings, workflow


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = finalize_execution(
        ExecutionStatusEvent.model_validate(event),
        jobs=job_store(),
        workflow=workflow(),
        functions=functions(),
        notify_function=settings().notify_function,
    )
    return result.model_dump(mode="json")
