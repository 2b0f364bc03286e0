"""The worker images hold what a Batch job needs (no Docker engine here, so their Dockerfiles are
read): the worker as ENTRYPOINT, mediapipe without its GUI OpenCV, the models baked in, ffmpeg,
the EGL/GLES libraries libmediapipe.so links, and on the GPU image what its GPU delegate needs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from posereel.resources import WORKER_COMMAND, WORKER_ENTRYPOINT

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "containers" / "worker"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, pending = [], ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def runs(dockerfile: Path) -> str:
    return "\n".join(args for instr, args in instructions(dockerfile) if instr == "RUN")


def env(dockerfile: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for instr, args in instructions(dockerfile):
        if instr == "ENV":
            values.update(part.split("=", 1) for part in shlex.split(args))  # type: ignore[arg-type]
    return values


def makefile_mediapipe_version() -> str:
    match = re.search(r"^MEDIAPIPE_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile pins mediapipe"
    return match[1]


@pytest.fixture(params=["Dockerfile.gpu", "Dockerfile.cpu"])
def dockerfile(request: pytest.FixtureRequest) -> Path:
    return IMAGES / request.param


def test_the_entrypoint_is_the_worker_and_batch_gives_only_its_arguments(dockerfile: Path) -> None:
    [entrypoint] = [args for instr, args in instructions(dockerfile) if instr == "ENTRYPOINT"]
    assert json.loads(entrypoint) == WORKER_ENTRYPOINT
    assert WORKER_COMMAND[0].startswith("--"), "Batch's command replaces CMD, never the ENTRYPOINT"


def test_mediapipe_goes_in_without_its_dependencies_then_the_worker_extra(dockerfile: Path) -> None:
    commands = runs(dockerfile)
    pinned = f"pip install --no-cache-dir --no-deps mediapipe=={makefile_mediapipe_version()}"
    assert pinned in commands
    assert '".[worker]"' in commands
    assert commands.index(pinned) < commands.index('".[worker]"')
    assert "owners == {'opencv-python-headless'}" in commands, "the build checks that one package owns cv2"


def test_the_models_are_fetched_at_build_time_where_the_worker_reads_them(dockerfile: Path) -> None:
    assert env(dockerfile)["POSEREEL_MODEL_DIR"] == "/opt/models"
    assert "posereel models fetch --model-dir /opt/models" in runs(dockerfile)


def test_ffmpeg_and_the_gl_libraries_mediapipe_links_are_installed(dockerfile: Path) -> None:
    commands = runs(dockerfile)
    for package in ("ffmpeg", "libegl1", "libgles2"):
        assert re.search(rf"\b{package}\b", commands), package


def test_jobs_run_as_an_unprivileged_user(dockerfile: Path) -> None:
    users = [args for instr, args in instructions(dockerfile) if instr == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_the_gpu_image_can_reach_the_driver_through_egl() -> None:
    dockerfile = IMAGES / "Dockerfile.gpu"
    [base] = [args for instr, args in instructions(dockerfile) if instr == "FROM"]
    assert base.startswith("nvidia/cuda:") and "runtime" in base
    assert "graphics" in env(dockerfile)["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    commands = runs(dockerfile)
    assert re.search(r"\blibgl1\b", commands) and "python3.11" in commands
    assert "egl_vendor.d/10_nvidia.json" in commands and "libEGL_nvidia.so.0" in commands


def test_the_cpu_image_is_slim_python_311() -> None:
    [base] = [args for instr, args in instructions(IMAGES / "Dockerfile.cpu") if instr == "FROM"]
    assert base.startswith("python:3.11-slim")
