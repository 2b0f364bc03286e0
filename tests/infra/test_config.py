"""The per-environment settings model: cdk.json's environments load, mistakes are refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.config import CONTEXT_KEY, EnvironmentConfig, load_environments

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
        (lambda c: c.update(worker_backend="batch"), "Extra inputs are not permitted"),
        (lambda c: c["workers"].pop("cpu_max_vcpus"), "cpu_max_vcpus\n  Field required"),
        (
            lambda c: c["workers"].update(cpu_max_vcpus=8),
            "takes 16 vCPUs: cpu_max_vcpus 8 could never start it",
        ),
        (lambda c: c.update(max_duration_s=36_000, chunk_seconds=30), "is 1200 chunks: the Analyze Map"),
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


def test_missing_environments_are_refused():
    with pytest.raises(ValueError, match=CONTEXT_KEY):
        load_environments({})
