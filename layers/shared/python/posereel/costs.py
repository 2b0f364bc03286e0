"""What a job cost, estimated from what its stages used (posereel.usage) and the environment's
price table (cdk.json's ``prices``, per environment; the defaults are AWS list prices in
us-east-1, on demand).

Priced: Lambda GB-seconds and requests, the chunk workers' seconds (a GPU instance's share, or
Fargate vCPU and memory hours), Step Functions state transitions and the SDK's S3 requests. Not
priced: storage, data transfer, DynamoDB, API Gateway, CloudWatch, a GPU instance's boot and idle
time, and ffmpeg's range reads of the source (a few requests per stage).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from posereel.resources import STAGE_JOB
from posereel.settings import CostBasis
from posereel.usage import Platform, StageUse

# State transitions of a job that succeeds (statemachine/pipeline.asl.json: from Configure to
# Succeeded, every stage in its Lambda), of each chunk on top (GpuJob, ChunkDone; CpuJob too
# where the GPU failed), and of each stage that ran as a container job first (its ...Job state).
# tests/unit/test_costs.py walks the workflow file to check them.
JOB_TRANSITIONS = 19
CHUNK_TRANSITIONS = 2
FALLBACK_TRANSITIONS = 1
STAGE_JOB_TRANSITIONS = 1


class CostEstimate(BaseModel):
    total_usd: float
    by_stage_usd: dict[str, float] = Field(
        description="each stage of the job's usage; WORKFLOW: Step Functions"
    )
    transitions: int = Field(description="Step Functions state transitions, counted from the chunks")
    per_video_minute_usd: float | None = Field(description="the total per minute of the video")
    cpu_s: float = Field(description="CPU seconds of every stage together")
    gpu_s: float = Field(description="GPU seconds of every stage together")


def stage_usd(use: StageUse, basis: CostBasis) -> float:
    requests = use.s3_gets * basis.s3_usd_per_get + use.s3_puts * basis.s3_usd_per_put
    hours = use.wall_s / 3600
    if use.platform == Platform.LAMBDA:
        compute = (
            use.runs * basis.lambda_usd_per_request
            + use.wall_s * use.memory_mb / 1024 * basis.lambda_usd_per_gb_s
        )
    elif use.platform == Platform.GPU_WORKER:
        compute = (
            hours * basis.gpu_instance_usd_per_h * min(1.0, basis.worker_vcpus / basis.gpu_instance_vcpus)
        )
    else:  # Fargate: the shape it was given (a stage job's), else the chunk workers'
        vcpus, memory_mib = (
            (use.vcpus, use.memory_mb) if use.vcpus else (basis.worker_vcpus, basis.worker_memory_mib)
        )
        compute = hours * (
            vcpus * basis.fargate_usd_per_vcpu_h + memory_mib / 1024 * basis.fargate_usd_per_gb_h
        )
    return compute + requests


def estimate(
    usage: Mapping[str, StageUse],
    basis: CostBasis,
    *,
    chunks: int,
    cpu_chunks: int,
    video_duration_s: float | None,
) -> CostEstimate:
    """The job's cost so far. ``chunks``: chunks planned; ``cpu_chunks``: those that ran on the
    CPU queue (after the GPU queue, so one transition more each)."""
    by_stage = {key: stage_usd(use, basis) for key, use in usage.items()}
    stage_jobs = sum(1 for key in usage if key.endswith(STAGE_JOB.usage_suffix))
    transitions = (
        JOB_TRANSITIONS
        + CHUNK_TRANSITIONS * chunks
        + FALLBACK_TRANSITIONS * cpu_chunks
        + STAGE_JOB_TRANSITIONS * stage_jobs
    )
    by_stage["WORKFLOW"] = transitions * basis.step_functions_usd_per_transition
    total = sum(by_stage.values())
    minutes = video_duration_s / 60 if video_duration_s else None
    return CostEstimate(
        total_usd=round(total, 6),
        by_stage_usd={key: round(usd, 6) for key, usd in by_stage.items()},
        transitions=transitions,
        per_video_minute_usd=round(total / minutes, 6) if minutes else None,
        cpu_s=round(sum(u.cpu_s for u in usage.values()), 3),
        gpu_s=round(sum(u.gpu_s for u in usage.values()), 3),
    )
