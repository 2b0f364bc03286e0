"""The pinned requirements of what ships, from the versions installed here (the ones the tests ran
with): the Lambda layer's third-party dependencies, the container-image functions' and the worker
images'. ``make lock`` writes them; a test fails when one is stale.

    python -m posereel_local.lock          write every file
    python -m posereel_local.lock --check  exit 1 naming the stale files

Each set is the closure of the project's core dependencies plus the extras it ships, walked through
the installed distributions' own requirements. trackers and supervision are pinned as leaves: they
are installed with --no-deps (see pyproject's ``worker`` extra), so their declared dependencies are
not followed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from posereel.resources import LAMBDA_PYTHON

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Shipment:
    """What one shipped thing installs: the project's core dependencies plus ``extras``, with
    ``leaves`` pinned but not followed and ``provided`` (and what they need) left out."""

    path: str
    what: str
    extras: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()
    provided: tuple[str, ...] = ()


# Installed with --no-deps (the Makefile pins them; see pyproject's ``worker`` extra): pinned as
# leaves, their declared dependencies not followed.
NO_DEPS = ("trackers", "supervision")

SHIPMENTS = (
    Shipment(
        "infra/layer/requirements.txt",
        "the Lambda layer of the zip functions (boto3 comes with the Lambda runtime)",
        provided=("boto3",),
    ),
    Shipment("containers/lambda/requirements.txt", "the container-image functions", extras=("media",)),
    Shipment(
        "containers/worker/requirements.txt",
        "the chunk worker images",
        extras=("worker",),
        leaves=NO_DEPS,
    ),
)
# Marker environment of the Lambda runtime and the images: Linux, CPython resources.LAMBDA_PYTHON.
_MARKERS = {
    "python_version": LAMBDA_PYTHON,
    "python_full_version": f"{LAMBDA_PYTHON}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _project() -> dict:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]


def _applies(req: Requirement, extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**_MARKERS, "extra": extra}) for extra in ("", *extras))


def direct_requirements(shipment: Shipment) -> list[Requirement]:
    """The project's own requirements for ``shipment``, its extras expanded (also those an extra
    names of the project itself, as ``posereel[media]``)."""
    project = _project()
    name = canonicalize_name(project["name"])
    found: list[Requirement] = []
    pending = [Requirement(r) for r in project["dependencies"]]
    extras, seen = list(shipment.extras), set()
    while extras:
        extra = extras.pop()
        if extra in seen:
            continue
        seen.add(extra)
        pending += [Requirement(r) for r in project["optional-dependencies"][extra]]
        for req in list(pending):
            if canonicalize_name(req.name) == name:
                pending.remove(req)
                extras += sorted(req.extras)
    found += pending
    return found


def pinned(shipment: Shipment) -> dict[str, str]:
    """Distribution name -> installed version of everything ``shipment`` installs."""
    provided: set[str] = set()
    for name in shipment.provided:
        provided |= set(closure([Requirement(name)], leaves=()))
    wanted = direct_requirements(shipment) + [Requirement(leaf) for leaf in shipment.leaves]
    return {k: v for k, v in closure(wanted, leaves=shipment.leaves).items() if k not in provided}


def closure(requirements: Iterable[Requirement], *, leaves: Iterable[str]) -> dict[str, str]:
    leaf_names = {canonicalize_name(n) for n in leaves}
    versions: dict[str, str] = {}
    queue = [(req, ()) for req in requirements]
    while queue:
        req, parent_extras = queue.pop()
        if not _applies(req, parent_extras):
            continue
        name = canonicalize_name(req.name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError as exc:
            raise SystemExit(f"{req.name} is required but not installed: run make setup") from exc
        if dist.version not in req.specifier and req.specifier:
            raise SystemExit(f"installed {req.name} {dist.version} does not satisfy {req}")
        first = name not in versions
        versions[name] = dist.version
        if name in leaf_names or not (first or req.extras):
            continue
        for raw in dist.requires or []:
            queue.append((Requirement(raw), tuple(req.extras)))
    return versions


def render(shipment: Shipment) -> str:
    lines = [
        f"# What {shipment.what} install: `make lock` writes this (posereel_local/lock.py)",
        "# from the versions the tests ran with. Install it with `pip install --no-deps -r`.",
    ]
    lines += [f"{name}=={version}" for name, version in sorted(pinned(shipment).items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posereel_local.lock", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which files are stale")
    args = parser.parse_args(argv)
    stale = []
    for shipment in SHIPMENTS:
        path = REPO / shipment.path
        text = render(shipment)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(shipment.path)
        if not args.check:
            path.write_text(text)
            print(f"wrote {shipment.path}")
    if args.check and stale:
        print("stale (run make lock): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
