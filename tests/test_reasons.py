"""Why-questions: the sentence beside the best one that gives its reason is quoted with it."""

from __future__ import annotations

from pathlib import Path

from assistant.answering.extractive import SentenceScorer, select
from assistant.types import Passage
from tests.helpers import make_settings

MEMO = ("市立図書館の利用者は前年より2割減った。駅前に大型の民間学習施設が開業したことが背景にある。"
        "図書館は来年度から開館時間を延ばす。")
PLANT = ("第二工場では設備の更新が半年遅れていた。このため、今年の生産量は前年を下回った。"
         "来年は新しい生産ラインが稼働する。")


def _quotes(embedder: object, question: str, text: str) -> list[str]:
    passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="", section="", page=None, source="",
                      text=text, language="ja")
    return [s.text for s in select(SentenceScorer(embedder).score(question, [passage]))]


def test_the_cause_stated_after_the_fact_is_quoted_with_it(embedder: object) -> None:
    quotes = _quotes(embedder, "なぜ図書館の利用者は減ったのですか？", MEMO)
    assert any("利用者は前年より2割減った" in q for q in quotes), quotes
    assert any("背景にある" in q for q in quotes), quotes


def test_the_cause_a_result_starts_from_is_quoted_with_it(embedder: object) -> None:
    quotes = _quotes(embedder, "今年の生産量が前年を下回ったのはどうしてですか。", PLANT)
    assert any(q.startswith("このため") for q in quotes), quotes
    assert any("設備の更新が半年遅れていた" in q for q in quotes), quotes
    assert not any("新しい生産ライン" in q for q in quotes), quotes


def test_other_questions_quote_no_neighbour_for_its_own_sake(embedder: object) -> None:
    quotes = _quotes(embedder, "図書館の利用者は前年よりどれだけ減りましたか。", MEMO)
    assert quotes and "2割減った" in quotes[0]
    assert not any("背景にある" in q for q in quotes), quotes


BYLINE_MEMO = ("作成：エネルギー調査室　佐藤 美咲\n\n政府は2025年2月に第7次エネルギー基本計画を閣議決定した。"
               "再稼働した原子炉は14基にとどまる。")


def test_a_question_about_the_author_meets_the_byline(embedder: object, tmp_path: Path) -> None:
    from assistant.answering.chain import make_pipeline
    from tests.test_answering import assert_valid, briefing_passages, make_retrieve

    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([BYLINE_MEMO])))
    for question in ("このメモを書いたのは誰ですか。", "このメモの執筆者は？", "Who wrote this memo?"):
        a = pipe.ask(question)
        assert not a.refused, (question, a.refusal_reason)
        assert_valid(a)
        assert any("佐藤 美咲" in c.quote for c in a.citations), (question, a.answer)
