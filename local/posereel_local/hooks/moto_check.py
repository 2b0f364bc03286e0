"""The start-up check of the moto internals the hooks patch or call.

Every hook module declares what it relies on (``SIGNATURES``: callables and their parameter
names; ``ATTRIBUTES``: instance attributes an ``__init__`` sets); ``check_moto_internals`` checks
them all before anything runs, so an upgrade of moto is a deliberate change, never a silent one.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

MOTO_VERSION: Final = "5.2.5"


class MotoInternalsChangedError(RuntimeError):
    """A moto internal that PoseReel hooks is missing or has a different shape."""


@dataclass(frozen=True)
class Signature:
    """``module.qualname`` is a callable taking exactly ``parameters``."""

    module: str
    qualname: str
    parameters: tuple[str, ...]


@dataclass(frozen=True)
class Attributes:
    """``module.class_name.__init__`` sets every one of ``names`` on self."""

    module: str
    class_name: str
    names: tuple[str, ...]


def resolve(module_name: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def problems(signatures: Iterable[Signature], attributes: Iterable[Attributes]) -> list[str]:
    """Every mismatch between moto as installed and what the hooks expect."""
    import moto

    found: list[str] = []
    if moto.__version__ != MOTO_VERSION:
        found.append(f"moto.__version__ is {moto.__version__!r}, expected {MOTO_VERSION!r}")
    for sig in signatures:
        name = f"{sig.module}.{sig.qualname}"
        try:
            target = resolve(sig.module, sig.qualname)
        except (ImportError, AttributeError) as exc:
            found.append(f"{name} is missing ({exc})")
            continue
        try:
            params = tuple(inspect.signature(target).parameters)
        except (TypeError, ValueError) as exc:
            found.append(f"{name} has no inspectable signature ({exc})")
            continue
        if params != sig.parameters:
            found.append(f"{name} takes ({', '.join(params)}), expected ({', '.join(sig.parameters)})")
    for attrs in attributes:
        try:
            source = inspect.getsource(resolve(attrs.module, attrs.class_name).__init__)
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            found.append(f"cannot read {attrs.module}.{attrs.class_name}.__init__ ({exc})")
            continue
        missing = [n for n in attrs.names if f"self.{n}" not in source]
        if missing:
            found.append(f"{attrs.module}.{attrs.class_name}.__init__ no longer sets: {', '.join(missing)}")
    return found


def check(signatures: Iterable[Signature], attributes: Iterable[Attributes]) -> None:
    """Raise MotoInternalsChangedError listing every mismatch (version, missing attribute, changed
    signature)."""
    found = problems(signatures, attributes)
    if found:
        raise MotoInternalsChangedError(
            "PoseReel's local AWS patches private moto internals and pins moto=="
            f"{MOTO_VERSION}; these changed:\n  - "
            + "\n  - ".join(found)
            + "\nPin moto back, or update posereel_local/hooks for the new version."
        )
