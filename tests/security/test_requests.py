"""Hostile requests against a real server on loopback: files the client did not upload, other hosts
and other sites, oversized and endless bodies, rate-limit buckets, framing, sessions, file modes."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.interfaces.gate import LOOPBACK_HOSTS, ClientAddress, HostPolicy, foreign_paths
from assistant.settings import Settings
from tests.helpers import CORPUS, make_settings
from tests.test_api import LiveServer, assert_error_shape

pytestmark = pytest.mark.slow

SECRET = "社外秘メモ：金庫の暗証番号は4721である。"
NOTE_MD = "# 灯台の記録\n\nミナミカゼ島の灯台は1897年に建てられた。\n"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from assistant.core import make_assistant

    a = make_assistant(make_settings(tmp_path_factory.mktemp("requests-data")))
    a.ingest([CORPUS])
    return a


@pytest.fixture(scope="module")
def live(assistant: Any) -> Iterator[LiveServer]:
    settings = make_settings(assistant.settings.data_dir, rate_limit_per_min=0, upload_rate_limit_per_min=0,
                             slack_signing_secret="s3cret", slack_bot_token="xoxb-test",
                             slack_api_url="http://127.0.0.1:9/api/")
    with LiveServer(settings, assistant) as server:
        yield server


@pytest.fixture()
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home") / "notes.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def gradio_events(client: httpx.Client) -> list[dict[str, Any]]:
    """Every event handler of the page, with its input components' types."""
    config = client.get("/config").json()
    types = {c["id"]: c["type"] for c in config["components"]}
    return [{"fn_index": i, "inputs": [types[k] for k in dep["inputs"]]}
            for i, dep in enumerate(config["dependencies"])]


def file_data(path: str) -> dict[str, Any]:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def documents_hold(live: LiveServer, text: str) -> bool:
    folder = Path(live.settings.data_dir) / "documents"
    return folder.is_dir() and any(text in p.read_text(errors="ignore") for p in folder.rglob("*") if p.is_file())


def run_event(client: httpx.Client, fn_index: int, data: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    """Joins Gradio's queue like the page does and reads the event's messages to the end."""
    session = uuid.uuid4().hex
    r = client.post("/gradio_api/queue/join", json={"fn_index": fn_index, "data": data, "session_hash": session,
                                                     "event_data": None, "trigger_id": None})
    if r.status_code != 200:
        return r.status_code, []
    messages: list[dict[str, Any]] = []
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]))
                if messages[-1].get("msg") in ("process_completed", "close_stream"):
                    break
    return 200, messages


# Files the client did not upload ------------------------------------------------------------------
def test_no_event_handler_takes_a_server_path(client: httpx.Client, live: LiveServer, secret_file: Path) -> None:
    events = gradio_events(client)
    assert len(events) >= 8 and any("file" in e["inputs"] for e in events)
    for event in events:
        # Every input slot gets the file object: a dropdown or a textbox too, as the attack did.
        data = [[file_data(str(secret_file))] if t == "file" else file_data(str(secret_file))
                for t in event["inputs"]] or [file_data(str(secret_file))]
        for route in ("/gradio_api/queue/join", "/gradio_api/run/predict"):
            body = {"fn_index": event["fn_index"], "data": data, "session_hash": uuid.uuid4().hex}
            r = client.post(route, json=body)
            assert_error_shape(r, 403, "file_not_uploaded")
    for url in (f"/gradio_api/file={secret_file}", f"/gradio_api/file={secret_file.as_posix()}"):
        assert SECRET not in client.get(url).text
    assert not documents_hold(live, SECRET)
    assert SECRET not in client.post("/api/ask", json={"question": "金庫の暗証番号は？"}).text
    # A URL would make Gradio fetch it: refused the same way.
    r = client.post("/gradio_api/queue/join", json={
        "fn_index": next(e["fn_index"] for e in events if "file" in e["inputs"]),
        "data": [[file_data("http://127.0.0.1:9/secret")]], "session_hash": "s"})
    assert_error_shape(r, 403, "file_not_uploaded")


def test_gradio_checks_paths_itself_behind_the_gate(client: httpx.Client, live: LiveServer, secret_file: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Second line: with the gate's filter off, Gradio's own check (switched on for a mounted app) and
    the upload handler still refuse the path."""
    import assistant.interfaces.gate as gate

    monkeypatch.setattr(gate, "foreign_paths", lambda *_a, **_k: [])
    fn_index = next(e["fn_index"] for e in gradio_events(client) if e["inputs"] == ["file"])
    status, messages = run_event(client, fn_index, [[file_data(str(secret_file))]])
    assert status == 200 and messages[-1]["msg"] == "process_completed" and not messages[-1]["success"]
    assert not documents_hold(live, SECRET)


def test_the_upload_handler_reads_only_the_upload_cache(live: LiveServer, secret_file: Path) -> None:
    from assistant.interfaces.api import Services
    from assistant.interfaces.web import Page

    services = Services(settings=live.settings, assistant=live.assistant, feedback=None,  # type: ignore[arg-type]
                        querylog=None)  # type: ignore[arg-type]
    report, *_ = Page(services).upload([str(secret_file)], progress=lambda *a, **k: None)  # type: ignore[arg-type]
    assert "アップロードしたもの" in report and not documents_hold(live, SECRET)


def test_a_file_uploaded_through_gradio_is_ingested(client: httpx.Client, live: LiveServer) -> None:
    uploaded = client.post("/gradio_api/upload", files=[("files", ("lighthouse.md", NOTE_MD.encode(),
                                                                    "text/markdown"))])
    assert uploaded.status_code == 200, uploaded.text
    path = uploaded.json()[0]
    fn_index = next(e["fn_index"] for e in gradio_events(client) if e["inputs"] == ["file"])
    status, messages = run_event(client, fn_index, [[file_data(path)]])
    assert status == 200
    assert messages[-1]["msg"] == "process_completed" and messages[-1]["success"], messages[-1]
    assert any(d["doc_id"] == "uploads/lighthouse.md" for d in client.get("/api/documents").json())
    client.delete("/api/documents/uploads/lighthouse.md")


def test_path_filter_reads_nested_payloads(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    inside = cache / "abc" / "a.txt"
    payload = {"data": [[file_data(str(inside)), file_data("/etc/passwd")], {"x": {"path": "../../etc/shadow"}}]}
    assert foreign_paths(payload, cache.resolve()) == ["/etc/passwd", "../../etc/shadow"]
    assert foreign_paths({"path": str(cache / ".." / "escape.txt")}, cache.resolve())
    assert foreign_paths({"data": ["plain text", 3, None]}, cache.resolve()) == []


# Other hosts, other sites ---------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("GET", "/"), ("GET", "/api/documents"), ("GET", "/healthz"),
                                         ("GET", "/api/feedback/export"), ("POST", "/api/ask"),
                                         ("GET", "/config"), ("GET", "/documents/briefing-russia-ukraine-2025-08.txt")])
def test_other_host_names_are_refused(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path, headers={"Host": "evil.example"}, json={"question": "x"})
    assert_error_shape(r, 403, "host_not_allowed")
    for host in ("localhost:7860", "127.0.0.1", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_host_policy_settings() -> None:
    policy = HostPolicy.from_settings(Settings(_env_file=None, host="0.0.0.0",  # type: ignore[call-arg]
                                               allowed_hosts="chat.example.org, *.corp.example",
                                               public_url="https://assistant.example.net/"))
    assert all(policy.allows(h) for h in ("chat.example.org", "chat.example.org:443", "a.corp.example",
                                          "assistant.example.net", "localhost:1", "[::1]"))
    assert not any(policy.allows(h) for h in ("evil.example", "corp.example.evil", "", "chat.example.org.evil"))
    assert HostPolicy.from_settings(Settings(_env_file=None, allowed_hosts="*")).allows("any.where")  # type: ignore[call-arg]
    # Listening on every interface: the machine's own name and addresses are what clients type.
    import socket

    everywhere = HostPolicy.from_settings(Settings(_env_file=None, host="0.0.0.0"))  # type: ignore[call-arg]
    assert everywhere.allows(f"{socket.gethostname()}:7860") and not everywhere.allows("evil.example")
    loopback_only = HostPolicy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert not loopback_only.allows(socket.gethostname()) or socket.gethostname() in LOOPBACK_HOSTS


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Origin": "null"}, {"Origin": "http://localhost:9999"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
def test_writes_from_other_sites_are_refused(client: httpx.Client, live: LiveServer, headers: dict[str, str]
                                             ) -> None:
    before = client.get("/api/documents").json()
    files = [("files", ("planted.md", "# 偽情報\n\n本部は火星にある。\n".encode(), "text/markdown"))]
    assert_error_shape(client.post("/api/documents", files=files, headers=headers), 403, "cross_site_request")
    doc = before[0]["doc_id"]
    assert_error_shape(client.delete(f"/api/documents/{doc}", headers=headers), 403, "cross_site_request")
    feedback = {"answer_id": "x", "rating": "bad", "comment": "planted"}
    assert_error_shape(client.post("/api/feedback", json=feedback, headers=headers), 403, "cross_site_request")
    assert_error_shape(client.get("/api/feedback/export", headers=headers), 403, "cross_site_request")
    join = {"fn_index": 9, "data": [], "session_hash": "s"}
    assert_error_shape(client.post("/gradio_api/queue/join", json=join, headers=headers), 403)
    upload = client.post("/gradio_api/upload", files=[("files", ("a.txt", b"x", "text/plain"))], headers=headers)
    assert_error_shape(upload, 403, "cross_site_request")
    assert client.get("/api/documents").json() == before


def test_same_site_requests_pass(client: httpx.Client, live: LiveServer) -> None:
    own = {"Origin": live.url, "Sec-Fetch-Site": "same-origin"}
    r = client.post("/api/feedback", json={"answer_id": "same-site", "rating": "good"}, headers=own)
    assert r.status_code == 200, r.text
    assert client.get("/api/feedback/export", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_no_cors_unless_configured(client: httpx.Client, assistant: Any) -> None:
    preflight = {"Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    for path in ("/api/ask", "/gradio_api/queue/join", "/config"):
        r = client.options(path, headers=preflight)
        assert_error_shape(r, 403, "cross_site_request")
        assert not [h for h in r.headers if h.startswith("access-control-")], (path, r.headers)
        assert "access-control-allow-origin" not in client.get("/config", headers={"Origin": EVIL}).headers
    trusted = "https://portal.example.org"
    settings = make_settings(assistant.settings.data_dir, rate_limit_per_min=0, cors_origins=trusted)
    with LiveServer(settings, assistant) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.options("/api/ask", headers={**preflight, "Origin": trusted})
        assert r.headers.get("access-control-allow-origin") == trusted
        r = c.post("/api/feedback", json={"answer_id": "cors", "rating": "good"}, headers={"Origin": trusted})
        assert r.status_code == 200 and r.headers.get("access-control-allow-origin") == trusted
        assert_error_shape(c.post("/api/feedback", json={"answer_id": "x", "rating": "good"},
                                  headers={"Origin": EVIL}), 403)


# Bodies -----------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _flood(total_mb: int) -> Iterator[bytes]:
    block = b"x" * (1 << 20)
    for _ in range(total_mb):
        yield block


@pytest.mark.parametrize("path", ["/slack/events", "/api/ask", "/api/feedback", "/gradio_api/queue/join"])
def test_chunked_floods_are_cut_off(client: httpx.Client, path: str) -> None:
    before = _rss_mb()  # the server runs in this process
    try:
        r = client.post(path, content=_flood(64), headers={"Content-Type": "application/json"})
        status = r.status_code
        assert_error_shape(r, 413, "too_large")
    except httpx.RemoteProtocolError:
        status = 413  # the server answered and closed while the client was still sending
    assert status == 413
    assert _rss_mb() - before < 60
    assert client.get("/healthz").status_code == 200


def test_absurdly_nested_gradio_payloads_are_refused(client: httpx.Client) -> None:
    body = '{"fn_index": 9, "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_error_shape(client.post("/gradio_api/queue/join", content=body,
                                   headers={"Content-Type": "application/json"}), 403, "file_not_uploaded")
    assert client.get("/healthz").status_code == 200


def test_declared_oversized_bodies_are_refused_before_reading(client: httpx.Client) -> None:
    r = client.post("/slack/events", content=b"x" * (1024 * 1024 + 1))
    assert_error_shape(r, 413, "too_large")


def test_too_many_files_is_explained_in_japanese(client: httpx.Client) -> None:
    files = [("files", (f"f{i}.txt", b"x", "text/plain")) for i in range(25)]
    err = assert_error_shape(client.post("/api/documents", files=files), 400)
    assert "Too many files" in err["message"] and "ファイルが多すぎます" in err["message_ja"]


def test_an_upload_where_every_file_fails_is_422(client: httpx.Client) -> None:
    files = [("files", ("a.exe", b"MZ", "application/octet-stream")),
             ("files", ("b.txt", b"", "text/plain"))]
    err = assert_error_shape(client.post("/api/documents", files=files), 422, "nothing_ingested")
    assert len(err["failed"]) == 2 and all(f["reason"] and f["reason_ja"] for f in err["failed"])


# Rate limits ------------------------------------------------------------------------------------------
def test_asking_and_uploading_have_separate_budgets(assistant: Any) -> None:
    settings = make_settings(assistant.settings.data_dir, rate_limit_per_min=2, upload_rate_limit_per_min=2)
    with LiveServer(settings, assistant) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        statuses = [c.post("/api/retrieve", json={"question": "会談の場所"}).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        upload = c.post("/api/documents", files=[("files", ("budget.md", NOTE_MD.encode(), "text/markdown"))])
        assert upload.status_code == 200, upload.text
        # Another client behind a proxy we do not trust shares the peer's bucket; X-Forwarded-For is ignored.
        r = c.post("/api/retrieve", json={"question": "会談"}, headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 429
        c.delete("/api/documents/uploads/budget.md")


def test_forwarded_addresses_only_from_trusted_proxies() -> None:
    from starlette.datastructures import Headers

    trusting = ClientAddress.from_settings(Settings(_env_file=None, trusted_proxies="127.0.0.1, 10.0.0.0/8"))  # type: ignore[call-arg]
    xff = Headers({"x-forwarded-for": "198.51.100.7, 10.1.2.3"})
    assert trusting({"client": ("127.0.0.1", 5000)}, xff) == "198.51.100.7"
    assert trusting({"client": ("192.0.2.1", 5000)}, xff) == "192.0.2.1"
    spoofed = Headers({"x-forwarded-for": "10.9.9.9"})
    assert trusting({"client": ("127.0.0.1", 5000)}, spoofed) == "127.0.0.1"
    assert ClientAddress.from_settings(Settings(_env_file=None))({"client": ("127.0.0.1", 1)}, xff) == "127.0.0.1"  # type: ignore[call-arg]


# Page, docs, sessions, files ----------------------------------------------------------------------------
def test_page_refuses_framing_and_docs_work_offline(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    for asset in ("/api/docs-assets/swagger-ui-bundle.js", "/api/docs-assets/swagger-ui.css"):
        assert asset in docs.text and client.get(asset).status_code == 200


def test_logging_out_revokes_the_session(assistant: Any, tmp_path: Path) -> None:
    from assistant.auth import add_user

    users = tmp_path / "users"
    add_user(users, "hanako", "correct horse battery")
    settings = make_settings(assistant.settings.data_dir, rate_limit_per_min=0, auth_file=users)
    with LiveServer(settings, assistant) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/auth/login", data={"username": "hanako", "password": "correct horse battery", "next": "/"})
        assert r.status_code == 303
        cookie = c.cookies["assistant_session"]
        assert c.get("/api/documents").status_code == 200
        c.get("/auth/logout")
        stolen = httpx.Client(base_url=server.url, timeout=60, cookies={"assistant_session": cookie})
        with stolen:
            assert_error_shape(stolen.get("/api/documents"), 401, "unauthorized")
            assert_error_shape(stolen.get("/api/feedback/export"), 401, "unauthorized")


def test_data_files_are_private(live: LiveServer) -> None:
    data = Path(live.settings.data_dir)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.rglob("*"):
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
    assert os.umask(0o077) == 0o077
