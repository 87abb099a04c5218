"""The regression gate: the fast evaluation on the project's own question set must stay above its floors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import MODELS_DIR, REPO


def test_fast_evaluation_meets_the_floors(tmp_path: Path) -> None:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp_path / "data"), "ASSISTANT_MODELS_DIR": str(MODELS_DIR)}
    out = subprocess.run(
        [sys.executable, "-m", "assistant.interfaces.cli", "eval", "--fast", "--no-charts", "--out", str(tmp_path / "r")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert len(report["questions"]) >= 60
    assert out.returncode == 0, f"figures fell below eval/floors.json: {report['floors_broken']}\n{out.stdout[-2000:]}"
    assert report["floors_broken"] == []
