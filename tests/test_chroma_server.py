"""The same code path against a real `chroma run` server on loopback, and a server that is down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.core import make_assistant
from assistant.errors import ServiceUnavailable
from tests.helpers import CORPUS, INGEST_SCRIPT, REPO, free_port, make_settings

CHROMA = REPO / ".venv" / "bin" / "chroma"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    if not exe:
        pytest.skip("the chroma command is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen([exe, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_ingest_and_retrieve_through_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    a = make_assistant(make_settings(tmp_path / "data", chroma_url=chroma_server, collection="test_server"))
    report = a.ingest([CORPUS])
    assert report.added and not report.failed
    assert not (tmp_path / "data" / "chroma").exists()  # vectors went to the server
    assert a.vectors.count() == report.chunks
    hits = a.retrieve("ロシア外務省報道官は何を拒否したか", top_k=3)
    assert any("NATO軍派遣" in p.text for p in hits)
    en = a.retrieve("What did the Russian foreign ministry spokesperson reject?", top_k=3)
    assert any("NATO軍派遣" in p.text for p in en)


def test_a_chroma_server_that_is_down_gives_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    # The data directory opens (the server is connected on first use); what needs vectors fails clearly.
    a = make_assistant(make_settings(tmp_path / "data", chroma_url=url))
    assert a.list_documents() == []
    with pytest.raises(ServiceUnavailable) as err:
        a.retrieve("ロシア", top_k=2)
    assert err.value.code == "chroma_unavailable"
    assert url in err.value.message and "接続できません" in err.value.message_ja


def test_a_chroma_server_that_goes_down_gives_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    exe = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    if not exe:
        pytest.skip("the chroma command is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "chroma server did not start"
                time.sleep(0.2)
        a = make_assistant(make_settings(tmp_path / "data", chroma_url=url))
        a.ingest([CORPUS])
        assert a.retrieve("ロシア", top_k=2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with pytest.raises(ServiceUnavailable) as err:
        a.retrieve("ロシア", top_k=2)
    assert err.value.status == 503 and err.value.code == "chroma_unavailable"


def test_two_processes_ingesting_at_once_stay_consistent(tmp_path: Path, chroma_server: str) -> None:
    """Several processes share one data directory through a Chroma server (the supported layout)."""
    folders = []
    for name in ("left", "right"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(25):
            text = "\n\n".join(f"{name}側の文書{i}の第{j}文は、北極海航路と資源開発の論点{j}を述べる。" for j in range(20))
            (folder / f"{name}{i:02d}.txt").write_text(text, encoding="utf-8")
        folders.append(folder)
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO), "ASSISTANT_CHROMA_URL": chroma_server,
           "ASSISTANT_COLLECTION": "two_writers"}
    procs = [subprocess.Popen([sys.executable, "-c", INGEST_SCRIPT, str(data), str(f)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for f in folders]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    a = make_assistant(make_settings(data, chroma_url=chroma_server, collection="two_writers"))
    assert len(a.list_documents()) == 50
    counts = a.index.counts()
    assert a.vectors.count() == counts["chunks"] == a.index.keyword.count()
    for name in ("left", "right"):
        hits = a.retrieve(f"{name}側の文書7の第3文", top_k=5, mode="dense")
        assert hits and all(p.chunk_id in set(a.index.chunk_ids(p.doc_id)) for p in hits)
