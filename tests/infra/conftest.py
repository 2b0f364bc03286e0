"""The CDK app of every environment, synthesized ONCE per test session: no Docker (bundling is
skipped, image assets are only described), no network (AZs come from the config), no built-in
template validation (cfn-lint runs on the templates instead)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    configs: dict[str, Any]  # env name -> infra.config.EnvironmentConfig
    templates: dict[str, dict[str, Any]]  # stack name -> template

    def template(self, env: str, part: str) -> dict[str, Any]:
        return self.templates[f"posereel-{env}-{part}"]

    def resources(self, env: str, part: str, type_: str) -> dict[str, dict[str, Any]]:
        return {
            logical: resource
            for logical, resource in self.template(env, part)["Resources"].items()
            if resource["Type"] == type_
        }


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    os.environ.setdefault("CDK_VALIDATION", "false")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    import aws_cdk as cdk

    from infra.app import build_environments
    from infra.config import load_environments

    context = json.loads((REPO / "cdk.json").read_text())["context"]
    configs = load_environments(context)
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    build_environments(app, configs)
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    return Synthesized(outdir=outdir, configs=configs, templates=templates)


@pytest.fixture(scope="session")
def envs(synth: Synthesized) -> list[str]:
    return sorted(synth.configs)


@pytest.fixture(scope="session")
def context() -> dict[str, Any]:
    return json.loads((REPO / "cdk.json").read_text())["context"]
