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


REPORT = ("北海電機　2025年度第2四半期決算の概要\n\n2025年11月5日\n経営企画部 IR担当\n\n業績の概要\n"
          "北海電機の第2四半期の売上高は前年同期比8%増の1,250億円となった。営業利益は同15%増の96億円だった。\n")


def test_a_text_file_is_titled_by_its_first_line_and_its_lines_stay_apart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.loaders import load_document
    from assistant.text.normalize import build_display

    path = tmp_path / "results.txt"
    path.write_text(REPORT, encoding="utf-8")
    loaded = load_document(path, 10_000_000)
    assert loaded.meta.title == "北海電機 2025年度第2四半期決算の概要"
    text = build_display(loaded.blocks).text
    assert "2025年11月5日\n\n経営企画部 IR担当" in text
    assert "業績の概要\n\n北海電機の第2四半期" in text  # the heading is not glued to its paragraph


def test_short_lines_count_only_when_they_share_something_with_the_question(embedder: object) -> None:
    from assistant.answering.extractive import SentenceScorer
    from assistant.types import Passage

    text = "北海電機　2025年度第2四半期決算の概要\n\n2025年11月5日\n\n経営企画部 IR担当\n\n営業利益は同15%増の96億円だった。"
    passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="北海電機 2025年度第2四半期決算の概要",
                      section="北海電機 2025年度第2四半期決算の概要", page=None, source="", text=text, language="ja")
    scorer = SentenceScorer(embedder)
    unrelated = [s.text for s in scorer.score("純利益はいくらでしたか。", [passage]).sentences]
    assert unrelated == ["営業利益は同15%増の96億円だった。"]  # neither the title nor the bare lines
    dated = [s.text for s in scorer.score("この資料はいつ出されましたか？", [passage]).sentences]
    assert "2025年11月5日" in dated  # it gives the date asked for
    by = [s.text for s in scorer.score("IR担当の部署はどこですか", [passage]).sentences]
    assert "経営企画部 IR担当" in by


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant

    data = tmp_path_factory.mktemp("header")
    docs = data / "docs"
    docs.mkdir()
    (docs / "results.txt").write_text(REPORT, encoding="utf-8")
    (docs / "energy.md").write_text(MEMO.replace("# 日本のエネルギー政策の現状と課題", "# 日本のエネルギー政策の現状と課題（2025年10月）"),
                                    encoding="utf-8")
    a = make_assistant(make_settings(data / "data", top_k=3))
    a.ingest([docs])
    return a


def test_a_document_without_metadata_is_dated_by_its_header(results) -> None:  # type: ignore[no-untyped-def]
    dates = {p.source.rsplit("/", 1)[-1]: p.date for p in results.retrieve("北海電機の売上高とエネルギー政策", 10)}
    assert dates["results.txt"] == "2025-11-05"
    assert dates["energy.md"] == "2025-10"  # from the title's "（2025年10月）"


@pytest.mark.parametrize(("question", "quote"), [
    ("北海電機のこの資料はいつ出されましたか？", "2025年11月5日"),
    ("When was this quarterly earnings report issued?", "2025年11月5日"),
    ("北海電機のこの資料を作ったのはどこの部署ですか。", "経営企画部 IR担当"),
    ("北海電機の決算資料を作ったのはどこの部署ですか。", "経営企画部 IR担当"),
    ("エネルギー政策のこの資料はいつ作成されましたか？", "日本のエネルギー政策の現状と課題（2025年10月）"),
])
def test_the_documents_own_date_and_maker_are_quoted_from_its_header(  # type: ignore[no-untyped-def]
        results, question: str, quote: str) -> None:
    a = results.ask(question)
    assert not a.refused, a.refusal_reason
    assert [c.quote for c in a.citations] == [quote], a.answer
    for c in a.citations:
        assert c.text[c.start:c.end] == c.quote


def test_a_header_answers_only_what_it_holds(results) -> None:  # type: ignore[no-untyped-def]
    a = results.ask("北海電機の従業員数は何人ですか？")
    assert a.refused and not a.citations


def test_which_questions_ask_for_the_documents_date_or_maker() -> None:
    from assistant.answering.header import asks

    assert asks("この資料はいつ出されましたか？") == "date"
    assert asks("When was this memo written?") == "date"
    assert asks("このレポートを作成したのはどの部署ですか") == "author"
    assert asks("Who wrote this briefing?") == "author"
    assert asks("執筆者は誰ですか") == "author"
    assert asks("北海電機の決算資料はいつ公表されましたか") == "date"
    assert asks("北海電機の資料を作ったのはどこの部署ですか") == "author"
    # About the author's life, or about the topic: not the header.
    assert asks("When did the author join the institute?") is None
    assert asks("執筆者の研究分野は何ですか") is None
    assert asks("第7次エネルギー基本計画はいつ閣議決定されましたか？") is None
    assert asks("資料によると、停戦はいつ始まりましたか") is None


@pytest.mark.parametrize(("line", "iso"), [
    ("2025年11月5日", "2025-11-05"), ("2025年11月5日（水）現在", "2025-11-05"), ("発行日：2025/11/05", "2025-11-05"),
    ("令和7年11月5日", "2025-11-05"), ("令和元年5月1日", "2019-05-01"), ("November 5, 2025", "2025-11-05"),
    ("Updated: 3 March 2024", "2024-03-03"), ("日本のエネルギー政策の現状と課題（2025年10月）", "2025-10"),
    ("2025年度第2四半期決算の概要", ""), ("経営企画部 IR担当", ""), ("北海電機 2025年11月", ""),
    ("May the talks succeed in 2025", ""),
])
def test_a_header_line_is_a_date_only_when_it_is_nothing_else(line: str, iso: str) -> None:
    from assistant.loaders.meta import header_line_date

    assert header_line_date(line) == iso
