"""Fixtures shared by every test: a fresh `Settings` per test and one real embedder per session."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.settings import Settings, apply_offline_env
from tests.helpers import MODELS_DIR

if TYPE_CHECKING:
    from assistant.embedding import Embedder

apply_offline_env()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The set-up script's model folder when it holds a checked build, else an empty one for this session."""
    from assistant.embedding import is_built
    from assistant.modelbuild import MODEL_NAME

    # Building takes minutes and 900 MB; reuse the build `scripts/setup.sh` made, when it is sound.
    if is_built(MODELS_DIR / MODEL_NAME):
        return MODELS_DIR
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path) -> Settings:
    """Settings whose data directory is this test's `tmp_path`; no `.env` file is read."""
    return Settings(data_dir=tmp_path, models_dir=models_dir, _env_file=None)


@pytest.fixture(scope="session")
def embedder(models_dir: Path) -> Embedder:
    """The real embedder (default backend), built into `models_dir` if needed, loaded once."""
    from assistant.embedding import load_embedder

    return load_embedder(Settings(data_dir=models_dir.parent, models_dir=models_dir, _env_file=None))
