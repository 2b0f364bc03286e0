"""Hooks that let moto 5.2.5 run PoseReel's real code on this machine, without Docker.

moto models Lambda, Batch and Step Functions but runs Lambda code and Batch jobs only in Docker,
and its Step Functions interpreter leaves some of AWS's behaviour out. One module per piece:

- ``lambda_runtime``: Lambda handlers in warm worker processes with each function's environment;
- ``batch_runtime``: a Batch job's command as a local process;
- ``stepfunctions``: service-integration casing, stop semantics, execution names, Map errors;
- ``s3_post_policy``: browser form POSTs checked against their policy, as S3 does;
- ``s3_notifications``: S3 -> Lambda notifications delivered asynchronously, as S3 does;
- ``moto_check``: the start-up check of every moto internal the others rely on.

All of these are private, so moto is pinned and ``check_moto_internals()`` fails loudly at
start-up when one of them changed shape. Importing this package is cheap (standard library only):
Lambda worker processes start from ``lambda_runtime``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from posereel_local.hooks import (
    batch_runtime,
    lambda_runtime,
    moto_check,
    s3_notifications,
    s3_post_policy,
    stepfunctions,
)
from posereel_local.hooks.batch_runtime import BatchRunner
from posereel_local.hooks.lambda_runtime import LambdaRunner
from posereel_local.hooks.moto_check import MOTO_VERSION, MotoInternalsChangedError

_PIECES = (lambda_runtime, batch_runtime, stepfunctions, s3_post_policy, s3_notifications)

__all__ = [
    "MOTO_VERSION",
    "BatchRunner",
    "InstalledHooks",
    "LambdaRunner",
    "MotoInternalsChangedError",
    "Patcher",
    "check_moto_internals",
    "install_hooks",
]


def check_moto_internals() -> None:
    """Fail loudly, before anything runs, if moto is not the version whose internals we patch."""
    moto_check.check(
        [sig for piece in _PIECES for sig in piece.SIGNATURES],
        [attrs for piece in _PIECES for attrs in piece.ATTRIBUTES],
    )


@dataclass
class Patcher:
    """Replaces attributes of moto's classes and modules, remembering the originals."""

    originals: list[tuple[Any, str, Any]] = field(default_factory=list)

    def patch(self, owner: Any, name: str, replacement: Any) -> None:
        self.originals.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def restore(self) -> None:
        while self.originals:
            owner, name, original = self.originals.pop()
            setattr(owner, name, original)


@dataclass
class InstalledHooks:
    """The patches in place; ``uninstall()`` restores moto's originals."""

    lambda_runner: LambdaRunner
    batch_runner: BatchRunner
    patcher: Patcher

    def uninstall(self) -> None:
        global _installed
        self.patcher.restore()
        with _INSTALL_LOCK:
            if _installed is self:
                _installed = None


_INSTALL_LOCK = threading.Lock()
_installed: InstalledHooks | None = None


def install_hooks(*, lambda_runner: LambdaRunner, batch_runner: BatchRunner) -> InstalledHooks:
    """Patch this process's moto so Lambda and Batch run real code and Step Functions and S3 behave
    as in AWS. Call ``check_moto_internals()`` first. moto's backends are process-global, so at
    most one set of hooks can be installed at a time."""
    global _installed
    with _INSTALL_LOCK:
        if _installed is not None:
            raise RuntimeError("moto hooks are already installed in this process; uninstall them first")
        patcher = Patcher()
        _installed = InstalledHooks(lambda_runner, batch_runner, patcher)
    lambda_runtime.install(patcher, lambda_runner)
    batch_runtime.install(patcher, batch_runner)
    stepfunctions.install(patcher)
    s3_post_policy.install(patcher)
    s3_notifications.install(patcher)
    return _installed
