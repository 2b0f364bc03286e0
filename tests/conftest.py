"""Shared fixtures. Real footage and models come from ../shared beside the repository; tests that
need them fail loudly (never skip) when it is missing, because CI always has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from posereel.settings import AnalysisSettings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"
MODELS = SHARED / "models"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the repository")
    return path


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _need(MEDIA)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _need(MODELS)


@pytest.fixture(scope="session")
def clip(media_dir: Path):
    """clip("hybrik_taiji") -> Path of that shared clip."""

    def get(name: str) -> Path:
        return _need(media_dir / f"{name}.mp4")

    return get


@pytest.fixture
def settings() -> AnalysisSettings:
    return AnalysisSettings()
