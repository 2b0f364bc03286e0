"""Shared fixtures. Real footage comes from ../shared beside the repository, the models from the
model directory `make models` fills (from ../shared/models and the detector's npm package); tests
that need them fail loudly (never skip) when they are missing, because CI always has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from posereel.modelstore import DETECTOR, MODELS
from posereel.settings import AnalysisSettings, RuntimeSettings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the repository")
    return path


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _need(MEDIA)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The model directory ($POSEREEL_MODEL_DIR), holding every model (run `make models`)."""
    model_dir = RuntimeSettings().model_dir
    for spec in MODELS.values():
        if not (model_dir / spec.filename).is_file():
            pytest.fail(f"{model_dir / spec.filename} is missing: run `make models`")
    return model_dir


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """../shared/models: the official pose bundles and their README (published sha256 and URL)."""
    return _need(SHARED / "models")


@pytest.fixture(scope="session")
def detector_model(models_dir: Path) -> Path:
    return models_dir / DETECTOR.filename


@pytest.fixture(scope="session")
def clip(media_dir: Path):
    """clip("hybrik_taiji") -> Path of that shared clip."""

    def get(name: str) -> Path:
        return _need(media_dir / f"{name}.mp4")

    return get


@pytest.fixture
def settings() -> AnalysisSettings:
    return AnalysisSettings()
