"""PoseReel's Lambda entry points: one thin module per function (see posereel.resources.FUNCTIONS).

Each handler parses its event into a model, calls one service of ``posereel.pipeline`` with the
settings and adapters below, and returns the result as a dict. Settings and adapters are built
once per container, on first use (so a misconfigured function fails its first invocation with
pydantic's message); ``reset()`` forgets them (tests that change the environment).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from posereel.aws import Functions, JobStore, MediaStore, Workflow
from posereel.aws.mediastore import s3_requests
from posereel.observability import logger
from posereel.pipeline.placement import stored_outcome
from posereel.resources import FUNCTIONS
from posereel.settings import PipelineSettings
from posereel.usage import Meter, Platform, StageUse, read_for

T = TypeVar("T")
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
_per_container: list[Any] = []


def per_container(build: Callable[[], T]) -> Callable[[], T]:
    """Build once per container (the first call), then reuse; ``reset()`` forgets."""
    cached = functools.cache(build)
    _per_container.append(cached)
    return cached


@per_container
def settings() -> PipelineSettings:
    return PipelineSettings()  # the required fields come from POSEREEL_* variables


@per_container
def job_store() -> JobStore:
    return JobStore(settings().jobs_table)


@per_container
def media_store() -> MediaStore:
    return MediaStore()


@per_container
def workflow() -> Workflow:
    return Workflow(settings().state_machine_arn)


@per_container
def functions() -> Functions:
    return Functions()


def metered(function: str) -> Callable[[HandlerT], HandlerT]:
    """Record what the handler of ``function`` used (posereel.usage) under its job's usage key
    (posereel.resources.FUNCTIONS), whatever its outcome: a failed or retried run is paid for
    too. A failure to record is logged, and never fails the stage."""
    key = FUNCTIONS[function].usage
    if key is None:
        raise ValueError(f"the {function} function records no usage (posereel.resources.FUNCTIONS)")

    def wrap(handler: HandlerT) -> HandlerT:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            meter = Meter(s3_requests)
            job_id = event.get("job_id") if isinstance(event, dict) else None
            if isinstance(job_id, str):
                read_for(job_id, key)
            try:
                return handler(event, context)
            finally:
                if isinstance(job_id, str):
                    memory_mb = int(getattr(context, "memory_limit_in_mb", 0) or 0)
                    _record_usage(job_id, key, meter.stop(platform=Platform.LAMBDA, memory_mb=memory_mb))

        return cast(HandlerT, run)

    return wrap


def after_container(stage: str, result_type: type[BaseModel]) -> Callable[[HandlerT], HandlerT]:
    """A stage that may have run as a container job first (posereel.pipeline.placement): the
    outcome that job stored is the handler's answer (an error raised again); without one the
    handler runs the stage itself."""

    def wrap(handler: HandlerT) -> HandlerT:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            job_id = event.get("job_id") if isinstance(event, dict) else None
            if isinstance(job_id, str):
                stored = stored_outcome(stage, job_id, result_type, media=media_store(), settings=settings())
                if stored is not None:
                    return stored.model_dump(mode="json")
            return handler(event, context)

        return cast(HandlerT, run)

    return wrap


def _record_usage(job_id: str, key: str, use: StageUse) -> None:
    try:
        job_store().add_usage(job_id, key, use)
    except Exception:
        logger.warning("could not record the stage's usage", extra={"usage": key}, exc_info=True)


def reset() -> None:
    for cached in _per_container:
        cached.cache_clear()
