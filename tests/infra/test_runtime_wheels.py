"""What ships installs on the Python the functions and images run (resources.LAMBDA_PYTHON),
which this machine does not have: pip resolves every pinned requirements file for that
interpreter on Linux x86-64, binary wheels only (as the layer's bundling does), and every wheel it
picks carries a tag that interpreter loads. Needs the package index (PyPI or its mirror)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from infra.functions import LAYER_REQUIREMENTS
from posereel.resources import LAMBDA_PYTHON

REPO = Path(__file__).resolve().parents[2]
VERSION = tuple(int(part) for part in LAMBDA_PYTHON.split("."))
# Amazon Linux 2023 (the python3.13 runtime) has glibc 2.34; the images' Debian and Ubuntu more.
PLATFORMS = ["manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 35))]
ABI = f"cp{VERSION[0]}{VERSION[1]}"
LOADABLE = {
    *cpython_tags(VERSION, abis=[ABI, "abi3", "none"], platforms=PLATFORMS),
    *compatible_tags(VERSION, interpreter=ABI, platforms=PLATFORMS),
}
SHIPPED = {
    "layer": LAYER_REQUIREMENTS,
    "lambda-image": REPO / "containers" / "lambda" / "requirements.txt",
    "worker-images": REPO / "containers" / "worker" / "requirements.txt",
}


def resolve(requirements: list[str], tmp_path: Path) -> list[str]:
    """The wheel file names pip picks for ``requirements`` on the runtime's Python (no install)."""
    report = tmp_path / "report.json"
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
            "--no-deps", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", LAMBDA_PYTHON, "--abi", ABI, *platform_args,
            "--target", str(tmp_path / "target"), "--report", str(report), *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [
        item["download_info"]["url"].rsplit("/", 1)[-1] for item in json.loads(report.read_text())["install"]
    ]


def pinned(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


@pytest.mark.parametrize("shipment", sorted(SHIPPED))
def test_every_pinned_requirement_has_a_wheel_the_runtime_python_loads(shipment: str, tmp_path: Path) -> None:
    requirements = pinned(SHIPPED[shipment])
    if shipment == "worker-images":  # the GPU image swaps in onnxruntime-gpu at the same version
        requirements += [
            r.replace("onnxruntime==", "onnxruntime-gpu==")
            for r in requirements
            if r.startswith("onnxruntime==")
        ]
    wheels = resolve(requirements, tmp_path)
    assert len(wheels) == len(requirements)
    for wheel in wheels:
        tags = parse_wheel_filename(wheel)[3]
        assert tags & LOADABLE, f"{wheel} does not load on CPython {LAMBDA_PYTHON} on Linux x86-64"
