"""Plain helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"
# The set-up script builds the embedding model here; tests reuse it instead of building it again.
MODELS_DIR = REPO / ".data" / "models"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own data directory, the shared built model."""
    return Settings(data_dir=data_dir, models_dir=MODELS_DIR, _env_file=None, **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

# Ingests the folder argv[2] into the data directory argv[1], printing progress: a separate process.
INGEST_SCRIPT = """
import sys
from pathlib import Path
from assistant.core import make_assistant
from tests.helpers import make_settings
a = make_assistant(make_settings(Path(sys.argv[1])))
def progress(done, total, what):
    print(done, flush=True)
a.ingest([Path(sys.argv[2])], progress=progress)
print("finished", flush=True)
"""
