"""A question about the author reaches the byline ("作成：…") through keyword search and scoring,
though neither shares a word with it."""

from __future__ import annotations

import pytest

from tests.helpers import make_settings

MEMO = """# 日本のエネルギー政策の現状と課題

作成：エネルギー調査室　佐藤 美咲

## 概要

政府は2025年2月に第7次エネルギー基本計画を閣議決定した。2040年度の電源構成で再生可能エネルギーを4〜5割程度とする目標を掲げた。

## 再生可能エネルギー

太陽光発電は導入量で世界3位の水準にあるが、適地の減少が進んでいる。洋上風力発電は北海道や秋田県沖を中心に案件形成が進む。

## 原子力

再稼働した原子炉は14基にとどまる。新規制基準への適合審査が長期化していることが背景にある。
"""


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant

    data = tmp_path_factory.mktemp("byline")
    docs = data / "docs"
    docs.mkdir()
    (docs / "energy.md").write_text(MEMO, encoding="utf-8")
    a = make_assistant(make_settings(data / "data", top_k=2))
    a.ingest([docs])
    return a


def test_keyword_search_looks_for_the_byline_words(assistant) -> None:  # type: ignore[no-untyped-def]
    found = assistant.retrieve("このメモを書いたのは誰ですか。", 1, mode="keyword")
    assert found and "作成：" in found[0].text


@pytest.mark.parametrize("question", ["このメモを書いたのは誰ですか。", "作成者は？", "Who wrote this memo?"])
def test_the_author_is_quoted_from_the_byline(assistant, question: str) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask(question)
    assert not a.refused, a.refusal_reason
    assert any("佐藤 美咲" in c.quote for c in a.citations), a.answer
    for c in a.citations:
        assert c.text[c.start:c.end] == c.quote
