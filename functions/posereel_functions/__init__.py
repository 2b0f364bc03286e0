"""PoseReel's Lambda entry points: one thin module per function (see posereel.resources.FUNCTIONS).

Each handler parses its event into a model, calls one service of ``posereel.pipeline`` with the
settings and adapters below, and returns the result as a dict. Settings and adapters are built
once per container, on first use (so a misconfigured function fails its first invocation with
pydantic's message); ``reset()`` forgets them (tests that change the environment).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from posereel.aws import Functions, JobStore, MediaStore, Workflow
from posereel.settings import PipelineSettings

T = TypeVar("T")
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


def reset() -> None:
    for cached in _per_container:
        cached.cache_clear()
