"""Helpers shared by the test suites (imported as ``tests.support``): waiting on a condition, and
reading what a source file imports."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, what: str, timeout_s: float = 60.0, every_s: float = 0.05) -> T:
    """Poll until check() is truthy and return it; fail naming ``what`` after timeout_s.
    Tests wait on conditions this way, never on fixed sleeps."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def imports_of(path: Path) -> Iterator[str]:
    """Every module the Python file ``path`` imports, at module level or in a function, outside
    ``if TYPE_CHECKING:`` blocks (``from a import b`` yields both ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
