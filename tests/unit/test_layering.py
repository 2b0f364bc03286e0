"""The rooms of the house and what each may import (docs/ARCHITECTURE.md), read from the source:

- the domain (posereel's modules outside pipeline/ and aws/) knows no AWS SDK, no Lambda tooling
  and no pipeline service;
- the pipeline's services (posereel.pipeline) reach AWS only through their ports, never boto3 or
  the adapters;
- boto3 is imported by the adapters (posereel.aws) alone;
- nothing that ships imports the tooling (posereel_local) or test tools;
- the CDK app (infra/) reads the resource description and settings of the domain package, no more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import imports_of

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "layers" / "shared" / "python" / "posereel"
SHIPPED = [
    PACKAGE,
    REPO / "functions" / "posereel_functions",
    REPO / "containers" / "worker" / "posereel_worker",
]
AWS_SDK = ("boto3", "botocore")


def modules(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


def imported(path: Path) -> set[str]:
    return set(imports_of(path))


def first(names: set[str], *prefixes: str) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("path", modules(*SHIPPED), ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_that_ships_imports_the_tooling(path: Path) -> None:
    assert not first(imported(path), "posereel_local", "moto", "pytest", "aws_cdk", "rich")


@pytest.mark.parametrize(
    "path",
    [p for p in modules(PACKAGE) if p.parent.name not in ("pipeline", "aws")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_the_domain_knows_no_aws_and_no_pipeline(path: Path) -> None:
    names = imported(path)
    allowed_powertools = path.name == "observability.py"  # the one Powertools stack of the handlers
    assert not first(names, *AWS_SDK, "posereel.aws", "posereel.pipeline")
    assert allowed_powertools or not first(names, "aws_lambda_powertools")


@pytest.mark.parametrize("path", modules(PACKAGE / "pipeline"), ids=lambda p: p.name)
def test_the_services_reach_aws_through_their_ports(path: Path) -> None:
    assert not first(imported(path), *AWS_SDK, "posereel.aws")


@pytest.mark.parametrize(
    "path",
    [p for p in modules(*SHIPPED) if "aws" not in p.relative_to(REPO).parts],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_boto3_is_the_adapters_alone(path: Path) -> None:
    assert not first(imported(path), *AWS_SDK)


@pytest.mark.parametrize("path", modules(REPO / "infra"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_cdk_app_reads_the_resource_description_and_the_settings_only(path: Path) -> None:
    ours = {n for n in imported(path) if n.split(".")[0] == "posereel"}
    assert all(n.split(".")[:2] in (["posereel", "resources"], ["posereel", "settings"]) for n in ours), ours
