"""The one Powertools stack of every Lambda handler, and the handler boundary.

``logger``, ``tracer`` and ``metrics`` are created here once (namespace "PoseReel", service = the
function's name, from POWERTOOLS_SERVICE_NAME) and imported wherever they are needed.
``lambda_boundary`` wraps a handler in the stack and maps errors the way the workflow matches
them: Step Functions compares error names exactly (no class hierarchy), so every InputError
subclass leaves the handler as an exception whose class is exactly ``InputError``, with the JSON
{"code", "message"} as its message, and every TransientError as exactly ``TransientError``.
Anything else propagates unchanged (the job fails). Each error is logged once, here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from posereel.errors import InputError, PoseReelError, TransientError
from posereel.resources import METRICS_NAMESPACE

NAMESPACE = METRICS_NAMESPACE

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


# The service name is Powertools' own POWERTOOLS_SERVICE_NAME, which the CDK app and the local
# stack set to the function's name (posereel.resources.function_environment).
logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE)


def error_payload(exc: PoseReelError) -> str:
    """The message of a boundary error: what the workflow stores as the job's error."""
    return json.dumps({"code": exc.code, "message": exc.message})


def boundary_error(exc: PoseReelError) -> InputError | TransientError:
    """The exception the workflow matches for ``exc``: class exactly InputError or TransientError."""
    if isinstance(exc, InputError):
        return InputError(error_payload(exc), code=exc.code)
    if isinstance(exc, TransientError):
        return TransientError(error_payload(exc), code=exc.code)
    raise TypeError(f"{type(exc).__name__} is neither an InputError nor a TransientError")


def lambda_boundary(handler: HandlerT) -> HandlerT:
    """Wrap a Lambda handler ``handler(event, context) -> dict`` in the Powertools stack (log
    context, X-Ray, EMF metrics) and the error mapping described in the module docstring."""

    @functools.wraps(handler)
    def mapped(event: Any, context: Any) -> Any:
        if isinstance(event, dict) and isinstance(event.get("job_id"), str):
            logger.append_keys(job_id=event["job_id"])
        try:
            response = handler(event, context)
        except InputError as exc:
            logger.warning("input rejected", extra={"error_code": exc.code, "reason": exc.message})
            metrics.add_metric(name="InputRejected", unit=MetricUnit.Count, value=1)
            raise boundary_error(exc) from exc
        except TransientError as exc:
            logger.warning(
                "transient failure, to be retried", extra={"error_code": exc.code, "reason": exc.message}
            )
            metrics.add_metric(name="TransientErrors", unit=MetricUnit.Count, value=1)
            raise boundary_error(exc) from exc
        except Exception:
            logger.exception("handler failed")
            metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name="Succeeded", unit=MetricUnit.Count, value=1)
        return response

    traced = tracer.capture_lambda_handler(mapped, capture_response=False)
    measured = metrics.log_metrics(traced, capture_cold_start_metric=True)
    return cast(HandlerT, logger.inject_lambda_context(measured, clear_state=True))
