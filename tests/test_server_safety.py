"""Safety of the server: escaped rendering in a real browser, uploads, errors, authentication, binding,
rate limits and the query log. Real server on loopback, real assistant."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.auth import Authenticator, add_token, add_user, hash_password, verify_password
from assistant.errors import UserError
from assistant.interfaces.server import check_bind, querylog_path, serve
from assistant.querylog import QueryLog
from assistant.ratelimit import RateLimiter
from tests.helpers import CORPUS, make_settings
from tests.test_api import LiveServer, assert_error_shape, read_sse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
MDLINK = "[x](javascript:alert(1))"
HOSTILE_DOC = f"""{SCRIPT} ハルシオン社の安全報告書

ハルシオン社の試験コードは {SCRIPT} と記録された。検査票の画像欄には {IMG} と書かれていた。参考リンクは {MDLINK} である。
"""
HOSTILE_TITLE_MD = f"""---
title: {SCRIPT} {IMG} 危険な題名
---
危険な題名の文書：本文は普通の文章である。
"""
HOSTILE_QUESTION = "ハルシオン社の試験コードは何と記録されましたか？"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from assistant.core import make_assistant

    a = make_assistant(make_settings(tmp_path_factory.mktemp("safety-data")))
    a.ingest([CORPUS])
    return a


@pytest.fixture(scope="module")
def plain(assistant: Any) -> Iterator[LiveServer]:
    settings = make_settings(assistant.settings.data_dir, rate_limit_per_min=0, max_upload_mb=0.05)
    with LiveServer(settings, assistant) as server:
        yield server


@pytest.fixture(scope="module")
def authed(assistant: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    folder = tmp_path_factory.mktemp("auth")
    add_user(folder / "users", "hanako", PASSWORD)
    token = add_token(folder / "tokens", "script")
    settings = make_settings(folder / "data", auth_file=folder / "users", api_tokens_file=folder / "tokens",
                             rate_limit_per_min=0)
    with LiveServer(settings, assistant) as server:
        yield server, token


@pytest.fixture()
def client(plain: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain.url, timeout=120) as c:
        yield c


# Escaping, in a real browser -------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
def test_hostile_document_is_shown_as_text_in_the_browser(plain: LiveServer, client: httpx.Client) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    files = [("files", ("hostile.txt", HOSTILE_DOC.encode(), "text/plain")),
             ("files", ("hostile-title.md", HOSTILE_TITLE_MD.encode(), "text/markdown"))]
    report = client.post("/api/documents", files=files).json()
    assert len(report["added"]) == 2, report
    doc_id = report["added"][0]
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(plain.url + "/", wait_until="load")
        page.locator("#question textarea").fill(HOSTILE_QUESTION)
        page.locator("#send").click()
        page.locator("#chat .msg.answer").first.wait_for(timeout=120_000)
        page.locator("#chat a.cite").first.click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "safety-chat.png"), full_page=True)
        sources = page.locator("#sources").inner_text()
        for literal in (SCRIPT, IMG, MDLINK):
            assert literal in sources, literal
        for area in ("#chat", "#sources"):
            assert page.locator(f"{area} script, {area} img, {area} iframe").count() == 0
        assert page.locator("a[href^='javascript:']").count() == 0
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        # The documents tab and the document pickers show the hostile title as text too.
        page.get_by_role("tab", name="文書 / Documents").click()
        page.locator("#docs-table").wait_for(timeout=30_000)
        assert f"{SCRIPT} {IMG} 危険な題名" in page.locator("#docs-table").inner_text()
        page.locator("#delete-choice input").click()
        page.get_by_role("option", name=re.compile("危険な題名")).wait_for(timeout=10_000)
        assert page.locator("#docs script, #docs img, [role=option] img, [role=option] script").count() == 0
        page.screenshot(path=str(ARTIFACTS / "safety-documents.png"), full_page=True)
        # The whole-document viewer.
        page.goto(f"{plain.url}/documents/{doc_id}", wait_until="load")
        assert SCRIPT in page.locator("body").inner_text() and MDLINK in page.locator("body").inner_text()
        assert page.locator("body script, body img").count() == 0
        page.screenshot(path=str(ARTIFACTS / "safety-viewer.png"), full_page=True)
        browser.close()
    assert dialogs == []
    for added in report["added"]:
        client.delete(f"/api/documents/{added}")


def test_viewer_escapes_document_text(client: httpx.Client) -> None:
    report = client.post("/api/documents", files=[("files", ("hostile2.txt", (HOSTILE_DOC + "\n二").encode(),
                                                              "text/plain"))]).json()
    doc_id = report["added"][0]
    r = client.get(f"/documents/{doc_id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    assert "<script" not in r.text.lower() and "<img" not in r.text.lower()
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none' forbids scripts
    client.delete(f"/api/documents/{doc_id}")


# Uploads ---------------------------------------------------------------------------------------------
def _multipart(filename: bytes, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "----boundary7MA4YWxkTrZu0gW"
    body = (f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="files"; filename="'
            + filename + b'"\r\nContent-Type: text/plain\r\n\r\n' + data + f"\r\n--{boundary}--\r\n".encode())
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("name", [b"../../escape-one.txt", b"..\\..\\escape-two.txt", b"/etc/escape-three.txt",
                                  b"nul\x00escape.txt", b"....//....//escape-four.txt"])
def test_upload_names_cannot_escape_the_documents_folder(plain: LiveServer, client: httpx.Client,
                                                        name: bytes) -> None:
    body, headers = _multipart(name, f"逃走防止の試験文書 {name!r}。".encode())
    r = client.post("/api/documents", content=body, headers=headers)
    assert r.status_code in (200, 400, 415), r.text
    data_dir = Path(plain.assistant.settings.data_dir)
    docs_dir = plain.assistant.settings.documents_dir.resolve()
    for found in data_dir.parent.rglob("*escape*"):
        assert found.resolve().is_relative_to(docs_dir), found
    if r.status_code == 200:
        for doc_id in r.json()["added"]:
            client.delete(f"/api/documents/{doc_id}")


def test_upload_without_a_known_type_is_refused(client: httpx.Client) -> None:
    assert_error_shape(client.post("/api/documents", files=[("files", ("../../etc/passwd", b"root:x:0:0", "text/plain"))]),
                       415, "unsupported_type")
    assert_error_shape(client.post("/api/documents", files=[("files", ("tool.exe", b"MZ", "application/x-msdownload"))]),
                       415, "unsupported_type")


def test_upload_over_the_size_limit_is_413(client: httpx.Client) -> None:
    big = ("大" * 30_000).encode()  # 90 KB, over the 0.05 MB limit of this server
    assert_error_shape(client.post("/api/documents", files=[("files", ("big.txt", big, "text/plain"))]), 413,
                       "upload_too_large")


def test_duplicate_upload_is_skipped(client: httpx.Client) -> None:
    data = "重複検出の試験：同じ内容のファイルを二度送る。".encode()
    first = client.post("/api/documents", files=[("files", ("dup-a.txt", data, "text/plain"))]).json()
    second = client.post("/api/documents", files=[("files", ("dup-b.txt", data, "text/plain"))]).json()
    assert first["added"] and second["skipped"] == first["added"] and not second["added"]
    client.delete(f"/api/documents/{first['added'][0]}")


# Errors ----------------------------------------------------------------------------------------------
def test_unexpected_errors_are_500_without_details(plain: LiveServer, client: httpx.Client,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret-internal-detail /etc/shadow")

    def boom_stream(*args: Any, **kwargs: Any) -> Iterator[str]:
        yield "partial "
        raise RuntimeError("secret-internal-detail in stream")

    monkeypatch.setattr(plain.assistant, "retrieve", boom)
    monkeypatch.setattr(plain.assistant, "ask_stream", boom_stream)
    r = client.post("/api/retrieve", json={"question": "和平"})
    err = assert_error_shape(r, 500, "internal_error")
    assert "secret" not in r.text and "RuntimeError" not in r.text and err["message_ja"]
    with client.stream("POST", "/api/ask/stream", json={"question": "和平"}) as s:
        events = read_sse(s)
    assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == "internal_error"
    assert "secret" not in json.dumps(events)


# Authentication --------------------------------------------------------------------------------------
def test_files_hold_hashes_not_secrets(authed: tuple[LiveServer, str]) -> None:
    server, token = authed
    assert PASSWORD not in Path(server.settings.auth_file or "").read_text()
    assert token not in Path(server.settings.api_tokens_file or "").read_text()
    stored = hash_password("pw")
    assert verify_password("pw", stored) and not verify_password("pW", stored)
    assert hash_password("pw") != stored  # salted


def test_auth_guards_the_page_and_the_api(authed: tuple[LiveServer, str]) -> None:
    server, token = authed
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.get("/", headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login")
        assert c.get("/config").status_code == 401
        assert c.post("/gradio_api/queue/join", json={}).status_code == 401
        assert c.get("/documents/x").status_code == 401
        r = c.get("/api/documents")
        assert_error_shape(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/api/documents", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/documents", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        bad = c.post("/auth/login", data={"username": "hanako", "password": "nope", "next": "/"})
        assert bad.status_code == 401 and "assistant_session" not in bad.cookies
        evil = c.post("/auth/login", data={"username": "hanako", "password": PASSWORD, "next": "//evil.example/"})
        assert evil.status_code == 303 and evil.headers["location"] == "/"
        assert c.get("/", headers={"accept": "text/html"}).status_code == 200
        assert c.get("/api/documents").status_code == 200  # the logged-in session works for the API too
        c.cookies.set("assistant_session", c.cookies["assistant_session"][:-2] + "00")
        assert c.get("/api/documents").status_code == 401


@pytest.mark.browser
@pytest.mark.slow
def test_logging_in_on_the_page_then_chatting(authed: tuple[LiveServer, str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    server, _ = authed
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(server.url + "/", wait_until="load")
        assert "/auth/login" in page.url
        page.fill("input[name=username]", "hanako")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.locator("#question textarea").fill("米ロ首脳会談はどこで行われましたか？")
        page.locator("#send").click()
        page.locator("#chat .msg.answer a.cite").first.wait_for(timeout=120_000)
        page.locator("#fb-rating").get_by_text("良い / Good").click()
        page.locator("#fb-send").click()
        page.locator("#fb-status").get_by_text("フィードバックを保存しました").wait_for(timeout=10_000)
        browser.close()
    from assistant.feedback import FeedbackStore
    assert FeedbackStore(server.settings.feedback_db).list(channel="web")[0].user == "hanako"


def test_sessions_expire_and_resist_tampering(tmp_path: Path) -> None:
    add_user(tmp_path / "users", "taro", PASSWORD)
    auth = Authenticator(tmp_path / "users", None, b"k" * 32)
    cookie = auth.make_session("taro", now=1000.0)
    assert auth.read_session(cookie, now=1001.0) == "taro"
    assert auth.read_session(cookie, now=1000.0 + 13 * 3600) is None
    assert Authenticator(tmp_path / "users", None, b"x" * 32).read_session(cookie, now=1001.0) is None
    assert auth.check_password("taro", PASSWORD) and not auth.check_password("jiro", PASSWORD)


def test_refuses_to_bind_beyond_loopback_without_auth(tmp_path: Path) -> None:
    open_settings = make_settings(tmp_path)
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(open_settings, host)
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(UserError):
            check_bind(open_settings, host)
    check_bind(make_settings(tmp_path, allow_unauthenticated=True), "0.0.0.0")
    check_bind(make_settings(tmp_path, auth_file=tmp_path / "users"), "0.0.0.0")
    with pytest.raises(SystemExit) as exc:
        serve(open_settings, host="0.0.0.0", port=1)  # refuses before loading anything
    assert exc.value.code == 2


# Rate limit and query log ----------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(assistant: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_min=3, query_log=False)
    with LiveServer(settings, assistant) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        assert c.post("/api/ask", json={"question": "アラスカでの会談は？"}).status_code == 200
        assert [c.get("/api/documents").status_code for _ in range(2)] == [200, 200]
        r = c.get("/api/documents")
        assert_error_shape(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200  # only /api is limited
    assert not querylog_path(settings).exists(), "query_log=False writes no log"


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.check("a") == 0 for _ in range(60))
    assert limiter.check("a") == 1 and limiter.check("b") == 0
    now[0] += 1.0
    assert limiter.check("a") == 0
    assert RateLimiter(0).check("a") == 0


def test_query_log_prunes_old_records(tmp_path: Path) -> None:
    log = QueryLog(tmp_path / "q.sqlite3", retention_days=30)
    log.record("古い質問", "a1", channel="api")
    assert log.prune(now=datetime.now(UTC) + timedelta(days=29)) == 0
    assert log.prune(now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert log.recent() == []
    off = QueryLog(tmp_path / "off.sqlite3", enabled=False)
    off.record("q", "a")
    assert not (tmp_path / "off.sqlite3").exists()

