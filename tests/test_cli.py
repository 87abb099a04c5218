"""The `assistant` command as users and scripts call it: a real process, JSON contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CORPUS, MODELS_DIR, REPO

RETRIEVE_KEYS = {"rank", "score", "chunk_id", "doc_id", "title", "section", "page", "source", "text"}


def run(args: list[str], data: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data), "ASSISTANT_MODELS_DIR": str(MODELS_DIR)}
    return subprocess.run([sys.executable, "-m", "assistant.interfaces.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, input=stdin, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-data")
    out = run(["ingest", str(CORPUS), "--json"], folder)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"added", "changed", "skipped", "removed", "failed", "chunks", "seconds"} <= set(report)
    assert report["added"] and report["chunks"] > 0
    return folder


def test_retrieve_json_shape(data: Path) -> None:
    out = run(["retrieve", "トランプ氏は制裁をどれだけ延期したか", "--k", "3", "--json"], data)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"id", "question", "passages"}
    assert len(result["passages"]) == 3
    for p in result["passages"]:
        assert RETRIEVE_KEYS <= set(p)
    assert "2～3週間の延期" in result["passages"][0]["text"]


def test_retrieve_jsonl(data: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "ロシアは何を確保したか"}\n{"id": "b", "question": "Who is the mediator?"}\n',
        encoding="utf-8")
    out = run(["retrieve", "--jsonl", str(questions), "--k", "2"], data)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert all(len(x["passages"]) == 2 for x in lines)


def test_docs_list_and_filters(data: Path) -> None:
    out = run(["docs", "list", "--json"], data)
    docs = json.loads(out.stdout)
    assert docs[0]["doc_id"] == "briefing-russia-ukraine-2025-08.txt" and docs[0]["chunks"] > 0
    out = run(["retrieve", "ロシア", "--doc", "missing-doc", "--json"], data)
    assert json.loads(out.stdout)["passages"] == []
    out = run(["retrieve", "ロシア", "--from", "2026-01-01", "--json"], data)
    assert json.loads(out.stdout)["passages"] == []


def test_empty_question_is_a_clear_error(data: Path) -> None:
    out = run(["retrieve", "   "], data)
    assert out.returncode == 2
    assert "question" in out.stderr.lower() and "Traceback" not in out.stderr
