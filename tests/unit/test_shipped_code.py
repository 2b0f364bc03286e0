"""What ships is what runs. Each shipped thing (the Lambda layer of the zip functions, the
container-image functions, the worker images) installs a pinned requirements file (``make lock``)
and copies the runtime packages; nothing here can build an image, so its layout is checked
through what can run here:

- the pinned sets are the ones the tests ran with (they are regenerated from this environment);
- every module the shipped code imports, following its own imports from each entry point (the
  handlers, the worker), comes from the standard library, the shipped packages or a pinned
  distribution, so the harness (posereel_local, moto) and test tools never reach an image;
- the worker's cv2 comes from opencv-python-headless alone.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from posereel.resources import FUNCTIONS, WORKER_ENTRYPOINT
from posereel_local import lock
from tests.support import imports_of

REPO = Path(__file__).resolve().parents[2]
# The source folders of the shipped packages (the layer's python/, the functions, the worker).
SOURCES = {
    "posereel": REPO / "layers" / "shared" / "python" / "posereel",
    "posereel_functions": REPO / "functions" / "posereel_functions",
    "posereel_worker": REPO / "containers" / "worker" / "posereel_worker",
}
# rich is not here: trackers imports it (the worker ships it), the command line uses it too.
TOOLING = {"moto", "pytest", "aws-cdk-lib", "constructs", "selenium", "ruff", "mypy", "cdk-nag", "mediapipe"}
WORKER_MODULE = WORKER_ENTRYPOINT[-1]  # python -m posereel_worker

# requirements file -> the modules its shipment starts from
ENTRY_POINTS = {
    "infra/layer/requirements.txt": sorted(
        spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS.values() if not spec.tools
    ),
    "containers/lambda/requirements.txt": sorted(
        spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS.values() if spec.tools
    ),
    "containers/worker/requirements.txt": [f"{WORKER_MODULE}.__main__"],
}


def module_file(name: str) -> Path | None:
    top, *rest = name.split(".")
    if top not in SOURCES:
        return None
    base = SOURCES[top].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable(entries: list[str]) -> tuple[set[str], set[str]]:
    """(our modules, third-party top-level modules) that importing ``entries`` may run."""
    ours: set[str] = set()
    theirs: set[str] = set()
    pending = list(entries)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a module's parent packages run first
            prefix = ".".join(parts[:i])
            path = module_file(prefix)
            if path is None:
                if i == 1 and parts[0] not in SOURCES and parts[0] not in sys.stdlib_module_names:
                    theirs.add(parts[0])
                continue
            if prefix in ours:
                continue
            ours.add(prefix)
            pending.extend(imports_of(path))
    return ours, theirs


def pinned(requirements: str) -> set[str]:
    lines = (REPO / requirements).read_text().splitlines()
    return {canonicalize_name(line.split("==")[0]) for line in lines if line and not line.startswith("#")}


def test_the_pinned_sets_are_the_tested_versions() -> None:
    for shipment in lock.SHIPMENTS:
        assert (REPO / shipment.path).read_text() == lock.render(shipment), f"{shipment.path}: run make lock"


@pytest.mark.parametrize("requirements", sorted(ENTRY_POINTS))
def test_everything_the_shipped_code_imports_is_shipped(requirements: str) -> None:
    # Given what the shipment installs (and, for the layer, what the Lambda runtime provides)
    shipment = next(s for s in lock.SHIPMENTS if s.path == requirements)
    provided = set(lock.closure([lock.Requirement(n) for n in shipment.provided], leaves=()))
    available = pinned(requirements) | provided
    # When its code is followed from its entry points
    ours, theirs = reachable(ENTRY_POINTS[requirements])
    # Then it never reaches the tooling, and every other module it imports is installed
    assert not any(name.split(".")[0] == "posereel_local" for name in ours)
    owners = md.packages_distributions()
    missing = {
        module: owners.get(module, ["(no distribution)"])
        for module in theirs
        if not {canonicalize_name(d) for d in owners.get(module, [])} & available
    }
    assert not missing, f"{requirements} lacks what its code imports: {missing}"


@pytest.mark.parametrize("requirements", sorted(ENTRY_POINTS))
def test_no_tooling_is_shipped(requirements: str) -> None:
    assert not pinned(requirements) & {canonicalize_name(n) for n in TOOLING}


def test_the_worker_gets_its_models_runtimes_the_tracker_and_exactly_one_cv2() -> None:
    worker = pinned("containers/worker/requirements.txt")
    assert {"onnxruntime", "ai-edge-litert", "trackers", "supervision"} <= set(worker)
    assert "mediapipe" not in worker and "av" not in worker
    assert {name for name in worker if name.startswith("opencv")} == {"opencv-python-headless"}


def test_the_container_functions_find_no_people_only_faces() -> None:
    # The reels blur faces (LiteRT runs BlazeFace there); finding and tracking people is the
    # workers' alone
    ours, theirs = reachable(ENTRY_POINTS["containers/lambda/requirements.txt"])
    assert not {"posereel.pose", "posereel.tracking", "posereel.detection"} & ours
    assert not {"onnxruntime", "trackers", "supervision"} & theirs
    assert not {"onnxruntime", "trackers"} & set(pinned("containers/lambda/requirements.txt"))
    assert "posereel.framing" in ours
