"""What a job used and what it cost: the meter (CPU, peak memory, the
container's memory), the sums of runs, the price of each platform, and the workflow's state
transitions counted from the workflow file itself."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from posereel.costs import (
    CHUNK_TRANSITIONS,
    FALLBACK_TRANSITIONS,
    JOB_TRANSITIONS,
    STAGE_JOB_TRANSITIONS,
    estimate,
    stage_usd,
)
from posereel.resources import CONTAINER_STAGES, FUNCTIONS, STAGE_JOB, WORKFLOW_FILE
from posereel.settings import CostBasis
from posereel.usage import USAGE_KEYS, Meter, Platform, StageUse, container_memory_mb, total

REPO = Path(__file__).resolve().parents[2]
BASIS = CostBasis()


def use(platform: Platform, wall_s: float, *, memory_mb: int = 1024, **more: Any) -> StageUse:
    return StageUse(
        platform=platform, wall_s=wall_s, cpu_s=wall_s, memory_mb=memory_mb, peak_memory_mb=10, **more
    )


def test_the_meter_counts_the_cpu_the_stage_used() -> None:
    # Given a stage that burns a known amount of CPU (the process's clock, not the wall's)
    meter = Meter()
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    reading = meter.stop(platform=Platform.LAMBDA, memory_mb=512)
    # Then the reading holds it, and the rest is as given
    assert reading.cpu_s >= 0.3
    assert (reading.platform, reading.memory_mb, reading.gpu_s, reading.runs) == (Platform.LAMBDA, 512, 0, 1)


def test_the_meter_sees_the_peak_memory_of_the_stage() -> None:
    meter = Meter()
    held = bytearray(300 * 1024**2)  # zero pages are not resident until written
    held[::4096] = b"x" * len(held[::4096])
    reading = meter.stop(platform=Platform.CPU_WORKER, memory_mb=0)
    del held
    assert reading.peak_memory_mb >= 300


def test_a_gpu_stage_holds_the_gpu_for_as_long_as_it_runs() -> None:
    reading = Meter().stop(platform=Platform.GPU_WORKER, memory_mb=0, gpu=True)
    assert reading.gpu_s == reading.wall_s


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "8589934592\n"}, 8192),  # cgroup v2, what Batch gave the job
        ({"memory.max": "max\n"}, 0),  # no limit
        ({"memory/memory.limit_in_bytes": "2147483648"}, 2048),  # cgroup v1
        ({"memory/memory.limit_in_bytes": "9223372036854771712"}, 0),  # v1's "no limit"
        ({}, 0),
    ],
)
def test_the_container_memory_is_its_cgroup_limit(
    tmp_path: Path, files: dict[str, str], expected: int
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert container_memory_mb(tmp_path) == expected


def test_runs_add_up_and_the_peak_is_the_largest() -> None:
    a = use(Platform.LAMBDA, 10, s3_gets=2).model_copy(update={"peak_memory_mb": 500})
    b = use(Platform.LAMBDA, 5, s3_puts=1, memory_mb=2048)
    both = total([a, b])
    assert both is not None
    assert (both.runs, both.wall_s, both.cpu_s, both.peak_memory_mb) == (2, 15, 15, 500)
    assert (both.s3_gets, both.s3_puts, both.memory_mb) == (2, 1, 2048)
    assert total([]) is None


def test_every_function_that_records_usage_records_under_a_known_key() -> None:
    keys = [spec.usage for spec in FUNCTIONS.values() if spec.usage]
    assert sorted(keys) == sorted(set(keys))
    assert set(keys) <= set(USAGE_KEYS)
    jobs = {f"{FUNCTIONS[stage].usage}{STAGE_JOB.usage_suffix}" for stage in CONTAINER_STAGES}
    # The merge adds up the workers; each stage job records its own.
    assert set(USAGE_KEYS) - set(keys) == {"ANALYZE_GPU", "ANALYZE_CPU", *jobs}


def test_each_platform_is_priced_as_it_is_billed() -> None:
    basis = CostBasis(worker_vcpus=2, gpu_instance_vcpus=4, worker_memory_mib=8192)
    # Lambda: GB-seconds and the request
    assert stage_usd(use(Platform.LAMBDA, 100, memory_mb=2048), basis) == pytest.approx(
        100 * 2 * basis.lambda_usd_per_gb_s + basis.lambda_usd_per_request
    )
    # A GPU chunk job holds half of a 4-vCPU instance for an hour
    assert stage_usd(use(Platform.GPU_WORKER, 3600), basis) == pytest.approx(basis.gpu_instance_usd_per_h / 2)
    # A CPU chunk job on Fargate: its vCPUs and memory for an hour
    assert stage_usd(use(Platform.CPU_WORKER, 3600), basis) == pytest.approx(
        2 * basis.fargate_usd_per_vcpu_h + 8 * basis.fargate_usd_per_gb_h
    )
    # A stage job on Fargate: the shape it was given (4 vCPU, 16 GiB), not the chunk workers'
    stage_job = use(Platform.CPU_WORKER, 3600, memory_mb=16384, vcpus=4)
    assert stage_usd(stage_job, basis) == pytest.approx(
        4 * basis.fargate_usd_per_vcpu_h + 16 * basis.fargate_usd_per_gb_h
    )
    # S3 requests on top, by tier
    with_requests = use(Platform.CPU_WORKER, 0, s3_gets=1000, s3_puts=10)
    assert stage_usd(with_requests, basis) == pytest.approx(
        1000 * basis.s3_usd_per_get + 10 * basis.s3_usd_per_put
    )


def test_a_job_estimate_sums_its_stages_and_the_workflow_per_video_minute() -> None:
    usage = {"SCAN": use(Platform.LAMBDA, 10), "ANALYZE_GPU": use(Platform.GPU_WORKER, 600, gpu_s=600)}
    cost = estimate(usage, BASIS, chunks=10, cpu_chunks=2, video_duration_s=120)
    assert cost.transitions == JOB_TRANSITIONS + 10 * CHUNK_TRANSITIONS + 2 * FALLBACK_TRANSITIONS
    assert cost.by_stage_usd["WORKFLOW"] == pytest.approx(
        cost.transitions * BASIS.step_functions_usd_per_transition
    )
    assert cost.total_usd == pytest.approx(sum(cost.by_stage_usd.values()), abs=1e-5)
    assert cost.per_video_minute_usd == pytest.approx(cost.total_usd / 2, abs=1e-5)
    assert (cost.cpu_s, cost.gpu_s) == (610, 600)
    assert estimate(usage, BASIS, chunks=1, cpu_chunks=0, video_duration_s=None).per_video_minute_usd is None


def _path(states: dict[str, Any], start: str, *, containers: bool = False) -> list[str]:
    """The states a run enters from ``start`` when every task succeeds, each stage in its Lambda
    (a Choice's Default) or, with ``containers``, as a container job first."""
    entered, name = [], start
    while True:
        entered.append(name)
        state = states[name]
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            return entered
        if state["Type"] == "Choice":
            name = state["Choices"][0]["Next"] if containers else state["Default"]
        else:
            name = state["Next"]


def test_the_transition_counts_are_those_of_the_workflow_file() -> None:
    workflow = json.loads((REPO / WORKFLOW_FILE).read_text())
    assert len(_path(workflow["States"], workflow["StartAt"])) == JOB_TRANSITIONS
    # Every choice of where a stage runs sends it to a container job first, which then goes on
    # to the Lambda the default goes to.
    places = [s for name, s in workflow["States"].items() if name.startswith("Place")]
    assert len(places) == len(CONTAINER_STAGES)
    for place in places:
        job = workflow["States"][place["Choices"][0]["Next"]]
        assert job["Resource"].startswith("arn:aws:states:::batch:") and job["Next"] == place["Default"]
    in_containers = _path(workflow["States"], workflow["StartAt"], containers=True)
    assert len(in_containers) == JOB_TRANSITIONS + STAGE_JOB_TRANSITIONS * len(CONTAINER_STAGES)
    analyze = next(s for s in workflow["States"].values() if s["Type"] == "Map")
    chunk = analyze["ItemProcessor"]
    assert len(_path(chunk["States"], chunk["StartAt"])) == CHUNK_TRANSITIONS
    # A GPU job that fails is caught into the CPU job, which then goes on as the GPU job would
    gpu = chunk["States"][chunk["StartAt"]]
    fallback = gpu["Catch"][0]["Next"]
    assert _path(chunk["States"], fallback) == [fallback, *_path(chunk["States"], gpu["Next"])]
    assert (
        len(_path(chunk["States"], fallback)) - len(_path(chunk["States"], gpu["Next"]))
        == FALLBACK_TRANSITIONS
    )
