"""A vector store that is silent, stopped or down never hangs a request or loses track of vectors.

Every call to a Chroma server is bounded by the Chroma time-outs and gives `chroma_unavailable` (503
over HTTP, one line from the command); a delete succeeds once SQLite has committed and journals the
vectors it could not delete; a flush interrupted at any step leaves, after reopening, exactly one
vector per chunk. Real Chroma (a `chroma run` server, or embedded in `tmp_path`), real HTTP server on
loopback; the one fake is the silent store: a TCP listener that accepts connections and never answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.core import Assistant, make_assistant
from assistant.vectorstore import RETRY_AFTER_S
from tests.helpers import CORPUS, MODELS_DIR, REPO, free_port, make_settings
from tests.test_api import LiveServer

pytestmark = pytest.mark.slow

CONNECT_S = 1.0
SILENT_TIMEOUT_S = 1.0
# A real server must answer each read within its time-out on a busy two-core machine: more room.
SERVER_TIMEOUT_S = 3.0
BRIEFING = "briefing-russia-ukraine-2025-08.txt"
Q_JA = "ロシア外務省報道官は何を拒否したか"
CHROMA = REPO / ".venv" / "bin" / "chroma"
ASSISTANT = REPO / ".venv" / "bin" / "assistant"


def hang_bound_s(timeout_s: float) -> float:
    """Generous: detects a hang, not a slow answer (one connect and one read are what a call waits for)."""
    return 3 * (CONNECT_S + timeout_s)


# The silent store and the real one ------------------------------------------------------------------
class SilentStore:
    """Accepts TCP connections on a free loopback port and never answers (a hung or wedged server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.held.append(conn)

    def __enter__(self) -> SilentStore:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown wakes the accepting thread on Linux; close alone may not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()


class ChromaServer:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """SIGSTOP: the server keeps its port and accepts connections, and answers nothing until SIGCONT."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    exe = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    if not exe:
        pytest.skip("the chroma command is not installed")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    with (folder / "server.log").open("w") as log:
        proc = subprocess.Popen([exe, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT)
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
            yield ChromaServer(proc, url)
        finally:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.wait(timeout=20)


def server_settings(data: Path, server: ChromaServer, collection: str, **overrides: Any) -> Any:
    return make_settings(data, chroma_url=server.url, collection=collection, chroma_connect_timeout_s=CONNECT_S,
                         chroma_timeout_s=SERVER_TIMEOUT_S, rate_limit_per_min=0, **overrides)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_store_unavailable(live: LiveServer, bound_s: float) -> dict[str, float]:
    """ask, retrieve and /healthz each answer 503 `chroma_unavailable` within `bound_s`; returns their seconds."""
    seconds: dict[str, float] = {}
    with httpx.Client(base_url=live.url, timeout=60) as client:
        for path in ("/api/ask", "/api/retrieve"):
            r, seconds[path] = timed(lambda p=path: client.post(p, json={"question": Q_JA}))
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "chroma_unavailable" and error["message"] and error["message_ja"]
            assert seconds[path] < bound_s
        r, seconds["/healthz"] = timed(lambda: client.get("/healthz"))
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable" and body["vector_store"] == "unavailable"
        assert body["error"]["code"] == "chroma_unavailable"
        assert seconds["/healthz"] < bound_s
    return seconds


def run_cli(args: list[str], data: Path, chroma_url: str, timeout_s: float, cwd: Path,
            lang: str = "C.UTF-8") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data), "ASSISTANT_MODELS_DIR": str(MODELS_DIR),
           "ASSISTANT_CHROMA_URL": chroma_url, "ASSISTANT_CHROMA_TIMEOUT_S": str(timeout_s),
           "ASSISTANT_CHROMA_CONNECT_TIMEOUT_S": str(CONNECT_S), "LC_ALL": lang, "LANG": lang}
    return subprocess.run([str(ASSISTANT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess[str], prefix: str, words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, done
    assert len(lines) == 1 and lines[0].startswith(prefix) and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr


# A silent store ---------------------------------------------------------------------------------------
def test_a_silent_store_gives_503_within_the_timeout_and_the_documents_still_list(tmp_path: Path) -> None:
    with SilentStore() as silent:
        settings = make_settings(tmp_path / "data", chroma_url=silent.url, chroma_connect_timeout_s=CONNECT_S,
                                 chroma_timeout_s=SILENT_TIMEOUT_S, rate_limit_per_min=0)
        started = time.monotonic()
        a = make_assistant(settings)  # opens: the store is connected on first use
        assert time.monotonic() - started < 60
        with LiveServer(settings, a) as live:
            assert_store_unavailable(live, hang_bound_s(SILENT_TIMEOUT_S))
            r = httpx.get(f"{live.url}/api/documents", timeout=60)
            assert r.status_code == 200 and r.json() == []  # SQLite alone answers


def test_while_the_store_is_down_one_request_at_a_time_tries_it(tmp_path: Path) -> None:
    """The others fail at once: a burst of questions does not hold every thread for the time-out."""
    from concurrent.futures import ThreadPoolExecutor

    with SilentStore() as silent:
        settings = make_settings(tmp_path / "data", chroma_url=silent.url, chroma_connect_timeout_s=CONNECT_S,
                                 chroma_timeout_s=SILENT_TIMEOUT_S, rate_limit_per_min=0)
        with LiveServer(settings, make_assistant(settings)) as live:
            first = httpx.post(f"{live.url}/api/retrieve", json={"question": Q_JA}, timeout=60)
            assert first.status_code == 503  # the store is known to be down from here
            tried_before = len(silent.held)
            with ThreadPoolExecutor(8) as pool:
                burst = list(pool.map(lambda _: httpx.post(f"{live.url}/api/retrieve", json={"question": Q_JA},
                                                           timeout=60), range(8)))
            assert all(r.status_code == 503 and r.json()["error"]["code"] == "chroma_unavailable" for r in burst)
            # Eight requests, but only those that probed the store opened a connection to it.
            assert len(silent.held) - tried_before <= 3, len(silent.held) - tried_before


def test_the_command_reports_a_silent_store_in_one_line(tmp_path: Path) -> None:
    with SilentStore() as silent:
        ja = run_cli(["ask", "米ロ首脳会談はどこで行われましたか？"], tmp_path / "data", silent.url, SILENT_TIMEOUT_S,
                     tmp_path)
        assert_one_line_error(ja, "エラー: ", "接続できません")
        # No question: the locale's language (C here, so English); --json keeps the progress bar off stderr.
        en = run_cli(["ingest", "--json", str(CORPUS)], tmp_path / "data", silent.url, SILENT_TIMEOUT_S, tmp_path)
        assert_one_line_error(en, "error: ", "cannot be reached (ReadTimeout)")
        listed = run_cli(["docs", "list"], tmp_path / "data", silent.url, SILENT_TIMEOUT_S, tmp_path)
        assert listed.returncode == 0 and not listed.stdout.strip(), listed


# A real server stopped mid-run ----------------------------------------------------------------------
def test_a_server_stopped_mid_run_gives_503_then_answers_again(tmp_path: Path, chroma_server: ChromaServer) -> None:
    data = tmp_path / "data"
    make_assistant(make_settings(data, chroma_url=chroma_server.url, collection="stopped")).ingest([CORPUS])
    settings = server_settings(data, chroma_server, "stopped")
    a = make_assistant(settings)
    with LiveServer(settings, a) as live:
        assert httpx.post(f"{live.url}/api/ask", json={"question": Q_JA}, timeout=60).status_code == 200
        with chroma_server.stopped():
            assert_store_unavailable(live, hang_bound_s(SERVER_TIMEOUT_S))
            done = run_cli(["ask", Q_JA], data, chroma_server.url, SERVER_TIMEOUT_S, tmp_path)
            assert_one_line_error(done, "エラー: ", "接続できません")
        r = httpx.post(f"{live.url}/api/ask", json={"question": Q_JA}, timeout=60)
        assert r.status_code == 200 and r.json()["citations"]
        assert httpx.get(f"{live.url}/healthz", timeout=60).json()["status"] == "ok"


def test_a_delete_while_the_store_is_down_succeeds_and_reopening_removes_the_vectors(
        tmp_path: Path, chroma_server: ChromaServer) -> None:
    data = tmp_path / "data"
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    (folder / "note.md").write_text("# 北極海航路\n\n北極海航路の通航量は2024年に増えた。砕氷船の不足が課題である。\n",
                                    encoding="utf-8")
    make_assistant(make_settings(data, chroma_url=chroma_server.url, collection="delete_down")).ingest([folder])
    settings = server_settings(data, chroma_server, "delete_down")
    a = make_assistant(settings)
    chunks = len(a.index.chunk_ids(BRIEFING))
    with LiveServer(settings, a) as live:
        with chroma_server.stopped():
            r, seconds = timed(lambda: httpx.delete(f"{live.url}/api/documents/{BRIEFING}", timeout=60))
            assert r.status_code == 200, r.text
            assert r.json() == {"deleted": BRIEFING, "vectors_pending": chunks}
            assert seconds < hang_bound_s(SERVER_TIMEOUT_S)
            assert [d["doc_id"] for d in httpx.get(f"{live.url}/api/documents", timeout=60).json()] == ["note.md"]
        time.sleep(RETRY_AFTER_S)  # calls fail at once for this long after a failure, then try the store again
        assert a.vectors.count() == a.index.counts()["chunks"] + chunks  # the store was down: still there
        assert len(a.index.journal_orphans()) == chunks
        b = make_assistant(settings)  # the store is back: opening the data directory deletes them
        assert b.vectors.count() == b.index.counts()["chunks"]
        assert b.vectors.all_ids() == b.index.all_chunk_ids()
        assert not b.index.journal_orphans()


def test_a_delete_while_the_store_is_down_is_finished_when_health_sees_the_store_back(
        tmp_path: Path, chroma_server: ChromaServer) -> None:
    data = tmp_path / "data"
    make_assistant(make_settings(data, chroma_url=chroma_server.url, collection="health_back")).ingest([CORPUS])
    settings = server_settings(data, chroma_server, "health_back")
    with LiveServer(settings, make_assistant(settings)) as live:
        with chroma_server.stopped():
            deleted = httpx.delete(f"{live.url}/api/documents/{BRIEFING}", timeout=60).json()
            assert deleted["vectors_pending"] > 0
            assert httpx.get(f"{live.url}/healthz", timeout=60).status_code == 503
        time.sleep(RETRY_AFTER_S)
        health = httpx.get(f"{live.url}/healthz", timeout=60).json()
        assert health["status"] == "ok" and health["vectors"] == health["chunks"] == 0, health


# A flush interrupted at each step (embedded Chroma) ------------------------------------------------
class Crash(BaseException):
    """Stands for the process dying: no `except Exception` handles it, and SQLite rolls back."""


def crash_after(obj: Any, name: str, monkeypatch: pytest.MonkeyPatch, when: Callable[[], bool] = lambda: True
                ) -> None:
    real = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if when():
            raise Crash(name)
        return result

    monkeypatch.setattr(obj, name, wrapper)


STEPS = ["journal_written", "vectors_added", "sqlite_committed", "stale_vectors_deleted"]


@pytest.mark.parametrize("step", STEPS)
def test_a_flush_interrupted_at_any_step_leaves_one_vector_per_chunk_after_reopening(
        tmp_path: Path, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    settings = make_settings(tmp_path / "data")
    a = make_assistant(settings)
    a.ingest([folder])
    old = set(a.index.chunk_ids(BRIEFING))
    path = folder / BRIEFING
    text = path.read_text(encoding="utf-8")
    assert "NATO軍派遣" in text
    path.write_text(text.replace("NATO軍派遣", "NATO部隊の派遣"), encoding="utf-8")  # some chunks change, not all

    committed = {"done": False}
    real_replace = a.index.replace_documents

    def replace(*args: Any, **kwargs: Any) -> Any:
        result = real_replace(*args, **kwargs)
        committed["done"] = True
        return result

    monkeypatch.setattr(a.index, "replace_documents", replace)
    if step == "journal_written":
        crash_after(a.index, "journal_add", monkeypatch)
    elif step == "vectors_added":
        crash_after(a.vectors, "add", monkeypatch)
    elif step == "sqlite_committed":
        crash_after(a.index, "replace_documents", monkeypatch)
    else:
        crash_after(a.vectors, "delete", monkeypatch, when=lambda: committed["done"])
    with pytest.raises(Crash):
        a.ingest([folder])
    monkeypatch.undo()

    new = set(a.index.chunk_ids(BRIEFING))
    if step in ("journal_written", "vectors_added"):
        assert new == old  # not committed: the previous version stands
    else:
        assert old - new  # committed: some old chunks are stale
    if step in ("vectors_added", "sqlite_committed"):
        assert a.vectors.count() > len(new)  # what the interrupted flush left behind

    b = make_assistant(settings)
    assert b.vectors.count() == b.index.counts()["chunks"] == len(b.index.all_chunk_ids())
    assert b.vectors.all_ids() == b.index.all_chunk_ids()  # one vector per chunk, none without one
    assert not b.index.journal_orphans()
    answer = b.ask(Q_JA)
    assert answer.citations and all(c.doc_id == BRIEFING for c in answer.citations)
    again = b.ingest([folder])  # the next run finishes the change
    assert not again.failed and "NATO部隊の派遣" in (b.get_document(BRIEFING) or ("", [], ""))[2]
    assert b.vectors.all_ids() == b.index.all_chunk_ids()


def test_prune_removes_vectors_no_chunk_knows(tmp_path: Path) -> None:
    """`ingest --prune` also compares the stores: vectors whose journal was lost are found and deleted."""
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    a: Assistant = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([folder])
    a.vectors.add(["lost-1", "lost-2"], ["迷子のベクトル", "journal のない残骸"],
                  [{"doc_id": "gone.txt", "date": "", "ordinal": 0}, {"doc_id": "gone.txt", "date": "", "ordinal": 1}])
    assert a.vectors.count() == a.index.counts()["chunks"] + 2
    report = a.ingest([folder], prune=True)
    assert report.skipped == [BRIEFING] and any("removed 2 vectors" in w["warning"] for w in report.warnings)
    assert a.vectors.all_ids() == a.index.all_chunk_ids()
