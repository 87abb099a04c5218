"""A list under a short label ("韓国") names its party only in the label: a question about the party is
still answered from it, even when running text that mentions the party ranks higher."""

from __future__ import annotations

import pytest

from tests.helpers import make_settings

POSITIONS = """# 半導体輸出規制を巡る各国の立場

## 概況

日本と韓国と中国は半導体材料の輸出規制を巡って協議を続けている。韓国の業界団体は協議の長期化を懸念している。
韓国政府は10月の協議で日本側と意見交換を行い、中国も協議の行方を注視している。
韓国と日本の局長級協議は年内にもう一度開かれる見通しで、韓国メディアは協議の行方を大きく報じている。

## 日本

- 輸出管理の厳格な運用の継続
- 個別許可の審査期間の短縮

## 韓国

- 規制の段階的な撤廃と優遇対象国への復帰
- 技術協力の枠組みの拡大

## 中国

- 第三国を巻き込まない規制の運用
"""
NEWS = """# 韓国経済の近況

## 輸出

韓国の輸出は10月に前年同月比で増加した。韓国の半導体輸出は回復基調にあり、韓国銀行は景気判断を据え置いた。

## 労働

韓国の労働組合は賃上げを要求している。韓国の経営者団体は要求に慎重な姿勢を示している。

## 財政

韓国政府は中小企業への支援策を発表し、韓国の野党は支援の拡充を要求した。韓国の消費者物価は安定している。
"""


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant

    data = tmp_path_factory.mktemp("labels")
    docs = data / "docs"
    docs.mkdir()
    (docs / "positions.md").write_text(POSITIONS, encoding="utf-8")
    (docs / "news.md").write_text(NEWS, encoding="utf-8")
    a = make_assistant(make_settings(data / "data", top_k=2))
    a.ingest([docs])
    return a


def test_a_labelled_list_is_given_to_the_answerer_though_it_ranks_low(assistant) -> None:  # type: ignore[no-untyped-def]
    question = "韓国の要求は何ですか"
    # Retrieval alone leaves the list under "韓国" out of the passages the answer is drawn from.
    assert all(p.section != "韓国" for p in assistant.retrieve(question, 2))
    a = assistant.ask(question)
    assert [p.section for p in a.passages].count("韓国") == 1 and len(a.passages) == 2
    for c in a.citations:
        assert c.text[c.start:c.end] == c.quote


def test_the_named_list_is_quoted_beside_running_text(assistant) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask("韓国の立場は？")
    assert not a.refused, a.answer
    quoted = " ".join(c.quote for c in a.citations)
    assert "段階的な撤廃" in quoted, a.answer
    assert "「韓国」の項には" in a.answer
    assert "輸出管理の厳格な運用" not in quoted  # another party's item


def test_a_question_that_names_no_label_keeps_its_passages(assistant) -> None:  # type: ignore[no-untyped-def]
    question = "半導体の輸出は回復していますか"
    assert [p.chunk_id for p in assistant.ask(question).passages] == [
        p.chunk_id for p in assistant.retrieve(question, 2)]


def test_a_question_about_a_named_list_is_answered_by_its_items(assistant) -> None:  # type: ignore[no-untyped-def]
    a = assistant.ask("一覧にある韓国の主張を教えてください。")
    assert not a.refused, a.refusal_reason
    assert a.citations and all(c.section == "韓国" for c in a.citations), a.answer
    # Every item of the list: each is a part of what it holds.
    assert {c.quote for c in a.citations} == {"規制の段階的な撤廃と優遇対象国への復帰", "技術協力の枠組みの拡大"}, a.answer
    # The structure answers what the list holds, not a figure it does not give, nor a party it lacks.
    figure = assistant.ask("一覧にある韓国の成長率は何％ですか。")
    assert figure.refused, figure.answer
    absent = assistant.ask("一覧にあるインドの主張を教えてください。")
    assert absent.refused, absent.answer


def test_every_item_of_the_named_list_is_quoted(embedder: object) -> None:
    from assistant.answering.extractive import SentenceScorer, select
    from assistant.types import Passage

    text = ("主張\n\nロシア\n• クリミアとドネツィク・ルハンシク州の割譲、ヘルソン・ザポリージャ州での戦闘停止\n"
            "• ウクライナへのNATO軍派遣を含むいかなるシナリオも明確に拒否\n\n"
            "米国\n• 現在の前線を踏まえた領土交換の可能性についても議論すべき\n• ウクライナの安全保障への関与は限定的")
    passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="和平交渉の現状", section="主張", page=None,
                      source="", text=text, language="ja")
    chosen = select(SentenceScorer(embedder).score("主張の表にあるロシアの要求を教えてください。", [passage]))
    assert [s.label for s in chosen] == ["ロシア", "ロシア"], [s.text for s in chosen]
    # An aspect the question names leaves out the items about another one.
    chosen = select(SentenceScorer(embedder).score("主張の表で、米国は領土についてどう主張していますか。", [passage]))
    assert [s.text for s in chosen] == ["現在の前線を踏まえた領土交換の可能性についても議論すべき"], [s.text for s in chosen]
