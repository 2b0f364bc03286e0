"""Small helpers every stack uses: repository paths, removal and retention from the config, and
cdk-nag suppressions that always carry a reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

from infra.config import EnvironmentConfig

REPO = Path(__file__).resolve().parents[1]

# What goes into a Docker build context taken from the repository root: only the sources the
# Dockerfiles COPY. Everything else (.venv, out/, cdk.out/, tests) stays out of the asset hash.
DOCKER_CONTEXT_EXCLUDE = [
    "*",
    "!pyproject.toml",
    "!README.md",
    "!layers/shared/python",
    "!functions",
    "!containers",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
]
CODE_EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/*.egg-info"]


def removal_policy(config: EnvironmentConfig) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN


def log_group(
    scope: IConstruct, construct_id: str, config: EnvironmentConfig, *, name: str | None = None
) -> logs.LogGroup:
    """A log group with the environment's retention (never the default: kept forever)."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention(config),
        removal_policy=removal_policy(config),
    )


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(config: EnvironmentConfig) -> logs.RetentionDays:
    return _RETENTION[config.log_retention_days]


def _nag_suppressions(
    reasons: dict[str, str], applies_to: Mapping[str, Iterable[str]] | None
) -> list[NagPackSuppression]:
    applies_to = applies_to or {}
    return [
        NagPackSuppression(
            id=rule, reason=reason, applies_to=list(applies_to[rule]) if rule in applies_to else None
        )
        for rule, reason in reasons.items()
    ]


def suppress(
    construct: IConstruct,
    reasons: dict[str, str],
    *,
    applies_to: dict[str, Sequence[str]] | None = None,
    children: bool = True,
) -> None:
    """cdk-nag suppressions with a written reason each (rule id -> reason)."""
    NagSuppressions.add_resource_suppressions(
        construct, _nag_suppressions(reasons, applies_to), apply_to_children=children
    )


def suppress_stack(
    stack: Stack, reasons: dict[str, str], applies_to: dict[str, Iterable[str]] | None = None
) -> None:
    NagSuppressions.add_stack_suppressions(stack, _nag_suppressions(reasons, applies_to))
