"""A question that asks what a section heading names ("再発防止策は何ですか", "…が止まった原因は？") is answered
from that section of the document its other words point to, whatever running text elsewhere shares
more of its words."""

from __future__ import annotations

import pytest

from assistant.answering.extractive import question_focus
from tests.helpers import make_settings

OUTAGE = """<html><head><title>障害報告書：受注システムの停止</title></head><body>
<h1>障害報告書：受注システムの停止</h1>
<p>作成日：2026年9月14日　情報システム部</p>
<h2>発生状況</h2>
<p>2026年9月10日午前9時20分、受注システムが停止し、約3時間にわたって注文を受け付けられなくなった。影響を受けた取引先は約120社だった。</p>
<h2>原因</h2>
<p>データベースサーバーの証明書の有効期限が切れていたことが直接の原因である。更新作業は担当者の異動に伴い引き継がれていなかった。</p>
<h2>再発防止策</h2>
<p>証明書の有効期限を自動で監視し、期限の30日前に通知する仕組みを導入する。あわせて、運用手順書を改訂し、引き継ぎの確認項目を追加する。</p>
</body></html>
"""
FIRE = """# 北工場の火災について

## 概要

10月2日未明、北工場の倉庫で火災が発生し、在庫の一部が焼失した。けが人はいなかった。

## 原因

倉庫内の配電盤の老朽化による漏電が原因とみられる。消防による調査は継続中である。
"""


@pytest.mark.parametrize(("question", "focus"), [
    ("受注システムが止まった原因は何ですか？", "原因"), ("再発防止策は？", "再発防止策"),
    ("育児休業の改定の目的を教えてください", "目的"), ("在宅勤務について教えて", "在宅勤務"),
    # A clause made a noun by の names no noun; an English question has no such phrase.
    ("安全保障の枠組みに参加しうる国として名前を挙げたのはどこ？", ""), ("What caused the outage?", "")])
def test_the_focus_is_the_noun_before_the_question_word(question: str, focus: str) -> None:
    assert question_focus(question) == focus


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant

    data = tmp_path_factory.mktemp("focus")
    docs = data / "docs"
    docs.mkdir()
    (docs / "outage.html").write_text(OUTAGE, encoding="utf-8")
    (docs / "fire.md").write_text(FIRE, encoding="utf-8")
    a = make_assistant(make_settings(data / "data", top_k=4))
    a.ingest([docs])
    return a


def test_a_section_named_by_the_question_answers_it(assistant) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask("再発防止策は何ですか？")
    assert not a.refused, a.refusal_reason
    assert a.citations and all(c.section == "再発防止策" for c in a.citations), a.answer
    assert any("自動で監視" in c.quote for c in a.citations), a.answer
    for c in a.citations:
        assert c.text[c.start:c.end] == c.quote


def test_the_section_of_the_document_the_question_points_to(assistant) -> None:  # type: ignore[no-untyped-def]
    outage = assistant.ask("受注システムが止まった原因は何ですか？")
    assert not outage.refused, outage.refusal_reason
    # Not the sentence that says the system stopped, though it shares more of the question's words.
    assert outage.citations and all(c.section == "原因" and c.title.startswith("障害報告書") for c in outage.citations)
    assert "証明書の有効期限" in outage.citations[0].quote, outage.answer
    fire = assistant.ask("北工場の火災の原因は何ですか？")
    assert not fire.refused, fire.refusal_reason
    assert "漏電" in fire.citations[0].quote and all(c.title == "北工場の火災について" for c in fire.citations), fire.answer


def test_a_heading_alone_does_not_answer_a_question_about_something_else(assistant) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask("円安の原因は何ですか？")
    assert a.refused, a.answer


@pytest.mark.parametrize("question", ["なぜ受注システムは止まったのですか？", "北工場ではなぜ火災が起きたのですか"])
def test_a_why_question_is_answered_under_the_cause_heading(assistant, question: str) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask(question)
    assert not a.refused, a.refusal_reason
    assert a.citations and all(c.section == "原因" for c in a.citations), a.answer
    for c in a.citations:
        assert c.text[c.start:c.end] == c.quote


@pytest.mark.parametrize("question", ["なぜ円安が進んだのですか？", "なぜ南工場は閉鎖されたのですか"])
def test_a_cause_heading_does_not_answer_why_something_else_happened(assistant, question: str) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask(question)
    assert a.refused or all(c.section != "原因" for c in a.citations), a.answer
