"""Per-environment settings, read from cdk.json's context (``posereel:environments``) into a typed
model that rejects unknown keys, so a typo in cdk.json fails the synth instead of deploying a default."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from posereel.resources import STAGE_JOB
from posereel.settings import PriceTable

CONTEXT_KEY = "posereel:environments"
# The most chunks one video may have: the Analyze Map is inline, so every chunk's events (a GPU
# job that fails, the CPU job, the count: about 20) share the execution's 25,000-event history.
MAX_CHUNKS = 1000

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Strict):
    auth: Literal["api_key", "jwt"] = Field(
        description="api_key: an API key and usage plan; jwt: a Cognito user pool authorizer (the api "
        "function reads the caller's `sub` claim as the job owner)"
    )
    throttle_rate_per_s: float = Field(gt=0)
    throttle_burst: int = Field(gt=0)
    quota_per_day: int | None = Field(None, gt=0, description="usage plan quota (api_key only)")
    allowed_origins: list[str] = Field(min_length=1, description="CORS origins of the web client")


_SIZE_VCPUS = re.compile(r"(\d*)xlarge|large")


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of a GPU instance type from its size (the same in every family we allow: large 2,
    xlarge 4, Nxlarge 4N)."""
    size = instance_type.split(".", 1)[1]
    match = _SIZE_VCPUS.fullmatch(size)
    if match is None:
        raise ValueError(f"cannot tell the vCPUs of {instance_type!r}")
    if size == "large":
        return 2
    return 4 * int(match.group(1) or 1)


class WorkersConfig(_Strict):
    """The chunk workers: a GPU pool of EC2 instances that scales to zero, and CPU capacity on
    Fargate for the fallback."""

    gpu_instance_types: list[str] = Field(min_length=1)
    gpu_max_vcpus: int = Field(
        gt=0, description="at most this many GPU-instance vCPUs at once (size it to the account's G/VT quota)"
    )
    gpu_spot: bool
    cpu_max_vcpus: int = Field(gt=0, description="the Fargate compute environment's max vCPUs")
    cpu_spot: bool = False
    worker_vcpus: float = Field(2, gt=0)
    worker_memory_mib: int = Field(8192, ge=512)

    @field_validator("cpu_max_vcpus")
    @classmethod
    def _room_for_the_stage_job(cls, value: int) -> int:
        if value < STAGE_JOB.vcpus:
            raise ValueError(
                f"the stage job (scan, merge and compile of long uploads) takes {STAGE_JOB.vcpus} vCPUs: "
                f"cpu_max_vcpus {value} could never start it"
            )
        return value

    @field_validator("gpu_instance_types")
    @classmethod
    def _gpu_families(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"(g4dn|g5|g5g|g6|g6e|gr6|p3|p4d|p5)\.[0-9a-z]+", name):
                raise ValueError(f"{name!r} is not a GPU instance type (g4dn, g5, g6, p3, ...)")
            instance_vcpus(name)
        return value


class EnvironmentConfig(_Strict):
    """Everything that differs between dev, staging and prod."""

    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    availability_zones: list[str] = Field(
        min_length=2, description="given here, never looked up: a lookup needs credentials at synth"
    )
    # The chunk workers: AWS Batch, a GPU queue and a CPU queue (batch:submitJob.sync).
    workers: WorkersConfig
    chunk_seconds: float = Field(gt=0)
    overlap_seconds: float = Field(ge=0)
    chunk_timeout_s: int = Field(ge=60, le=86400, description="a chunk job's attempt duration")
    stuck_after_s: int = Field(
        600,
        ge=300,
        description="a chunk job waiting this long for capacity (Batch RUNNABLE) raises the stuck-job "
        "alarm; below 5 minutes a GPU instance starting from zero would raise it",
    )
    max_concurrency: int = Field(ge=1, le=40, description="chunks analysed at once per video (inline Map)")
    max_upload_bytes: int = Field(
        gt=0,
        le=5 * 1024**4,
        description="S3 takes objects of up to 5 TiB; the scan, merge and compile of what is too large "
        "or too long for their Lambdas run as stage jobs (posereel.pipeline.placement)",
    )
    max_duration_s: float = Field(gt=0)
    upload_expiry_days: int = Field(ge=1, description="uploads are deleted this long after they land")
    results_expiry_days: int = Field(ge=1)
    work_expiry_days: int = Field(ge=1, description="work/ intermediates in the results bucket")
    abort_multipart_days: int = Field(1, ge=1)
    job_ttl_days: int = Field(ge=1)
    log_retention_days: int
    removal_policy: Literal["destroy", "retain"]
    point_in_time_recovery: bool
    clamav_refresh_hours: int = Field(ge=1, le=24)
    alarm_email: str | None = None
    api: ApiConfig
    prices: PriceTable = Field(
        default_factory=PriceTable,
        description="what this environment pays (USD), for each job's cost estimate; the defaults are "
        "AWS's on-demand list prices in us-east-1 (spot pools: give their price)",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"CloudWatch Logs has no {value}-day retention; pick one of {LOG_RETENTION_DAYS}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        if self.overlap_seconds >= self.chunk_seconds:
            raise ValueError("overlap_seconds must be shorter than chunk_seconds")
        # The workflow gives up on a GPU job after chunk_timeout_s + 300 s and the watchdog looks
        # every 300 s: only a shorter threshold is sure to be seen before the job is gone.
        if self.stuck_after_s >= self.chunk_timeout_s:
            raise ValueError(
                "stuck_after_s must be shorter than chunk_timeout_s: the workflow moves a waiting GPU chunk "
                "to the CPU queue after chunk_timeout_s + 300 s, before the alarm could see it"
            )
        chunks = math.ceil(self.max_duration_s / self.chunk_seconds)
        if chunks > MAX_CHUNKS:
            raise ValueError(
                f"max_duration_s {self.max_duration_s:g} in chunks of {self.chunk_seconds:g} s is {chunks} "
                f"chunks: the Analyze Map takes at most {MAX_CHUNKS} (an execution's history holds 25,000 "
                "events and a chunk that falls back to the CPU queue takes about 20); lengthen chunk_seconds"
            )
        for zone in self.availability_zones:
            if not zone.startswith(self.region):
                raise ValueError(f"availability zone {zone} is not in {self.region}")
        return self


def load_environments(context: dict[str, Any]) -> dict[str, EnvironmentConfig]:
    """The ``posereel:environments`` context value -> validated settings per environment name."""
    raw = context.get(CONTEXT_KEY)
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"cdk.json context has no {CONTEXT_KEY!r} mapping")
    return {name: EnvironmentConfig.model_validate(value) for name, value in raw.items()}
