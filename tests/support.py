"""Helpers shared by the test suites (imported as ``tests.support``)."""

from __future__ import annotations

import time
from collections.abc import Callable
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
