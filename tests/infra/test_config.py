"""The per-environment settings model: cdk.json's environments load, mistakes are refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.config import CONTEXT_KEY, EnvironmentConfig, WorkersConfig, load_environments

pytestmark = pytest.mark.infra
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def dev() -> dict:
    return copy.deepcopy(CONTEXT[CONTEXT_KEY]["dev"])


def test_cdk_json_has_dev_staging_and_prod():
    assert set(load_environments(CONTEXT)) == {"dev", "staging", "prod"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(gpu_typo=1), "Extra inputs are not permitted"),
        (lambda c: c["workers"].update(spot=True), "Extra inputs are not permitted"),
        (lambda c: c.update(log_retention_days=10), "no 10-day retention"),
        (lambda c: c["workers"].update(gpu_instance_types=["m5.large"]), "not a GPU instance type"),
        (lambda c: c["workers"].update(gpu_instance_types=["g4dn.metal"]), "cannot tell the vCPUs"),
        (lambda c: c.update(availability_zones=["us-east-1a", "us-east-1b"]), "is not in eu-west-1"),
        (lambda c: c.update(max_concurrency=41), "less than or equal to 40"),
        (lambda c: c.update(worker_backend="k8s"), "Input should be 'batch' or 'ecs'"),
        (lambda c: c["workers"].pop("cpu_max_vcpus"), "cpu_max_vcpus is required with worker_backend batch"),
        (lambda c: c.update(worker_backend="ecs"), "cpu_max_vcpus has no effect with worker_backend ecs"),
        (lambda c: c.update(account="1234"), "String should match pattern"),
        (lambda c: c.update(stuck_after_s=120), "greater than or equal to 300"),
        (lambda c: c.update(stuck_after_s=900), "stuck_after_s must be shorter than chunk_timeout_s"),
    ],
)
def test_a_bad_environment_is_refused(change, message):
    raw = dev()
    change(raw)
    with pytest.raises(ValidationError, match=message):
        EnvironmentConfig.model_validate(raw)


def ecs() -> dict:
    raw = dev()
    raw["worker_backend"] = "ecs"
    raw["workers"].pop("cpu_max_vcpus")
    return raw


def test_an_ecs_environment_is_accepted():
    config = EnvironmentConfig.model_validate(ecs())
    assert config.worker_backend == "ecs"
    assert config.workers.cpu_max_vcpus is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.update(worker_vcpus=3), "not a Fargate task size"),
        (lambda w: w.update(worker_vcpus=2, worker_memory_mib=2048), "not a Fargate task size"),
        (lambda w: w.update(worker_vcpus=8, worker_memory_mib=17408), "not a Fargate task size"),
        (
            lambda w: w.update(gpu_instance_types=["g4dn.2xlarge"], gpu_max_vcpus=4),
            "smaller than one instance",
        ),
    ],
)
def test_a_bad_ecs_environment_is_refused(change, message):
    raw = ecs()
    change(raw["workers"])
    with pytest.raises(ValidationError, match=message):
        EnvironmentConfig.model_validate(raw)


@pytest.mark.parametrize(
    ("types", "max_vcpus", "instances"),
    [
        (["g4dn.xlarge"], 8, 2),  # 4 vCPUs each
        (["g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge"], 64, 8),  # bounded by the largest (8 vCPUs)
        (["p3.2xlarge"], 7, 0),
        (["p4d.24xlarge"], 96, 1),
    ],
)
def test_gpu_instances_never_exceed_the_vcpu_budget(types, max_vcpus, instances):
    raw = dev()["workers"]
    raw.update(gpu_instance_types=types, gpu_max_vcpus=max_vcpus)
    assert WorkersConfig.model_validate(raw).gpu_max_instances == instances


def test_missing_environments_are_refused():
    with pytest.raises(ValueError, match=CONTEXT_KEY):
        load_environments({})
