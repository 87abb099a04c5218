"""The page as a person uses it: Debian's chromium (Playwright) against the real server on loopback.

Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import CORPUS, make_settings
from tests.test_api import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
ANSWER_TIMEOUT_MS = 180_000
LIGHTHOUSE = """---
title: ミナミカゼ島の灯台
date: 2024-05-01
---
# 灯台の概要

ミナミカゼ島の灯台は1897年に建てられ、高さは32メートルである。灯台守の山田花子氏は2019年から勤務している。
"""
# Counts chat updates and notes whether a partial (streaming) answer was ever on screen.
WATCH_CHAT = """() => {
  window.__chatUpdates = 0; window.__sawStreaming = false;
  const target = document.querySelector('#chat');
  new MutationObserver(() => {
    window.__chatUpdates += 1;
    if (target.querySelector('.msg.streaming')) { window.__sawStreaming = true; }
  }).observe(target, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from assistant.core import make_assistant

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    settings = make_settings(tmp_path_factory.mktemp("web-data"), rate_limit_per_min=0)
    assistant = make_assistant(settings)
    assistant.ingest([CORPUS])
    with LiveServer(settings, assistant) as live:
        yield live


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="ja-JP")
        pg = context.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        pg.on("dialog", on_dialog)
        pg.goto(server.url + "/", wait_until="load")
        pg.locator("#question textarea").wait_for(timeout=60_000)
        yield pg
        assert dialogs == []
        browser.close()


def ask(page: Any, question: str) -> Any:
    """Types a question, sends it and waits for its answer; returns the answer's locator."""
    before = page.locator("#chat .msg.answer, #chat .msg.error").count()
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    answer = page.locator("#chat .msg.answer, #chat .msg.error").nth(before)
    answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return answer


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_page_has_bilingual_labels_and_examples(page: Any) -> None:
    page.get_by_text("How long did Trump postpone sanctions on Russia?").first.wait_for(timeout=30_000)
    body = page.locator("body").inner_text()
    for label in ("質問 / Question", "送信 / Send", "新しい会話 / New conversation", "出典 / Sources",
                  "文書 / Documents", "質問の例 / Example questions"):
        assert label in body, label
    assert "米ロ首脳会談はどこで行われましたか？" in body and "How long did Trump postpone sanctions on Russia?" in body
    shot(page, "01-empty")


def test_japanese_question_streams_and_cites(page: Any) -> None:
    page.evaluate(WATCH_CHAT)
    answer = ask(page, "米ロ首脳会談はどこで行われましたか？")
    assert page.evaluate("window.__sawStreaming") and page.evaluate("window.__chatUpdates") >= 2
    cite = answer.locator("a.cite").first
    assert cite.inner_text() == "[1]"
    shot(page, "02-japanese-answer")
    cite.click()
    card = page.locator("#sources .src-card.active")
    card.wait_for(timeout=10_000)
    assert card.is_visible()
    mark = card.locator("mark")
    assert mark.count() == 1 and mark.inner_text().strip()
    assert mark.inner_text() in card.locator(".passage").inner_text()
    assert "ロシア・ウクライナ" in card.locator(".src-title").inner_text()
    shot(page, "03-citation-clicked")
    href = card.locator("a.open-doc").get_attribute("href")
    assert href and href.startswith("/documents/") and "#chunk-" in href


def test_english_question_gets_an_english_answer(page: Any) -> None:
    answer = ask(page, "How long did Trump postpone sanctions on Russia?")
    assert "The documents say" in answer.inner_text() or "documents" in answer.inner_text()
    assert answer.locator("a.cite").count() >= 1
    answer.locator("a.cite").first.click()
    page.locator("#sources .src-card.active mark").wait_for(timeout=10_000)
    # The Japanese quote's dictionary glosses, under the passage and apart from the answer text.
    glosses = page.locator("#sources .src-card.active .glosses")
    assert glosses.is_visible() and "Dictionary glosses" in glosses.inner_text()
    assert "Dictionary glosses" not in answer.inner_text()
    shot(page, "04-english-answer")


def test_a_refusal_shows_the_closest_passages_as_pointers(page: Any) -> None:
    answer = ask(page, "日本銀行の政策金利は現在何％ですか。")
    assert answer.locator("a.cite").count() == 0
    assert "回答は出せませんでした" in answer.inner_text()
    near = page.locator("#sources .src-group:not([hidden]) .src-card.near")
    near.first.wait_for(timeout=10_000)
    assert 1 <= near.count() <= 3
    assert "回答ではありません" in page.locator("#sources .src-group:not([hidden]) .near-note").inner_text()
    mark = near.first.locator("mark")
    assert mark.count() == 1 and mark.inner_text() in near.first.locator(".passage").inner_text()
    shot(page, "05b-refusal-with-pointers")


def test_date_filter_on_the_page(page: Any) -> None:
    page.get_by_text("絞り込み / Filters").click()
    page.locator("#date-to input, #date-to textarea").first.fill("2020-01-01")
    answer = ask(page, "米ロ首脳会談はどこで行われましたか？")
    assert answer.locator("a.cite").count() == 0
    shot(page, "05-filtered-refusal")
    page.locator("#date-to input, #date-to textarea").first.fill("")


def test_new_conversation_clears_the_chat(page: Any) -> None:
    page.locator("#new-conversation").click()
    page.locator("#chat .chat-empty").wait_for(timeout=10_000)
    assert page.locator("#chat .msg").count() == 0


def test_upload_then_ask_about_it(page: Any, server: LiveServer, tmp_path: Path) -> None:
    doc = tmp_path / "lighthouse.md"
    doc.write_text(LIGHTHOUSE, encoding="utf-8")
    page.get_by_role("tab", name="文書 / Documents").click()
    page.locator("#upload-files input[type=file]").set_input_files(str(doc))
    page.locator("#upload-files").get_by_text("lighthouse.md").first.wait_for(timeout=30_000)
    page.locator("#upload-btn").click()
    report = page.locator("#ingest-report")
    report.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "追加 / Added (1)" in report.inner_text()
    page.locator("#docs-table").get_by_text("ミナミカゼ島の灯台").wait_for(timeout=10_000)
    shot(page, "06-documents-after-upload")
    page.get_by_role("tab", name="チャット / Chat").click()
    answer = ask(page, "ミナミカゼ島の灯台の高さは？")
    assert "32" in answer.inner_text()
    answer.locator("a.cite").first.click()
    card = page.locator("#sources .src-card.active")
    card.wait_for(timeout=10_000)
    assert "ミナミカゼ島の灯台" in card.locator(".src-title").inner_text()
    shot(page, "07-upload-answer")


def test_feedback_is_stored(page: Any, server: LiveServer) -> None:
    if page.locator("#chat .msg.answer").count() == 0:
        ask(page, "米ロ首脳会談はどこで行われましたか？")
    page.locator("#fb-rating").get_by_text("悪い / Bad").click()
    page.locator("#fb-comment textarea, #fb-comment input").first.fill("出典の位置がずれている")
    page.locator("#fb-send").click()
    page.locator("#fb-status").get_by_text("フィードバックを保存しました").wait_for(timeout=10_000)
    shot(page, "08-feedback")
    lines = httpx.get(server.url + "/api/feedback/export", timeout=30).text.splitlines()
    assert any('"channel": "web"' in ln and '"rating": "bad"' in ln and "出典の位置がずれている" in ln for ln in lines)


def test_document_viewer_opens_at_the_cited_chunk(page: Any, server: LiveServer) -> None:
    if page.locator("#sources .src-card").count() == 0:
        ask(page, "米ロ首脳会談はどこで行われましたか？")
    href = page.locator("#sources .src-card a.open-doc").first.get_attribute("href")
    viewer = page.context.new_page()
    viewer.goto(server.url + href, wait_until="load")
    target = viewer.locator(".chunk:target")
    assert target.count() == 1 and target.inner_text().strip()
    viewer.screenshot(path=str(ARTIFACTS / "09-document-viewer.png"), full_page=True)
    viewer.close()
