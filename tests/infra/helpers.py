"""Helpers of the infra tests: readers of synthesized IAM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(policy or role logical id, statement) for every IAM statement of a template."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield logical, statement
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield logical, statement


def role_actions(template: dict[str, Any], role_name: str) -> dict[str, list[dict[str, Any]]]:
    """action -> the statements that allow it, over every policy attached to the named role."""
    role_logical = next(
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == role_name
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for logical, statement in statements(template):
        if {"Ref": role_logical} in template["Resources"][logical]["Properties"].get("Roles", []):
            for action in listed(statement["Action"]):
                found.setdefault(action, []).append(statement)
    return found
