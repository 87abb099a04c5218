"""Refusals point at the passages that came closest: in the answer's JSON, the CLI, Slack and the web page."""

from __future__ import annotations

import io
import json

from assistant.answering.chain import make_pipeline
from assistant.answering.refusal import NEAR_COUNT, NEAR_LABEL
from assistant.interfaces.cli import print_answer
from assistant.interfaces.slack_blocks import render_answer
from assistant.interfaces.web_assets import Turn, render_chat, render_sources
from assistant.settings import Settings
from assistant.types import Answer
from tests.test_answering import INJECTION_EN, INJECTION_JA, briefing_passages, make_retrieve

MEMO = "北海電機と南洋精工の統合協議は、これまでに複数回行われたが、条件面で折り合っていない。"
QUESTION = "北海電機と南洋精工の統合協議は何回行われましたか。"


def refused(settings: Settings, embedder: object, extra: list[str], question: str) -> Answer:
    pipe = make_pipeline(settings, embedder, make_retrieve(embedder, briefing_passages(extra)))
    a = pipe.ask(question, top_k=6)
    assert a.refused, a.answer
    return a


def test_a_refusal_points_at_the_closest_sentences_without_citing_them(settings: Settings, embedder: object) -> None:
    a = refused(settings, embedder, [MEMO], QUESTION)
    assert a.citations == [] and "[" not in a.answer
    assert 1 <= len(a.closest) <= NEAR_COUNT
    assert a.closest[0].quote == MEMO  # the sentence that came closest, though it lacks the number
    assert [c.n for c in a.closest] == list(range(1, len(a.closest) + 1))
    for c in a.closest:
        assert c.text[c.start:c.end] == c.quote
        assert any(p.chunk_id == c.chunk_id for p in a.passages)
    assert len({c.quote for c in a.closest}) == len(a.closest)  # overlapping chunks repeat sentences: once each
    data = json.loads(json.dumps(a.to_json(), ensure_ascii=False))
    assert data["closest"][0]["quote"] == MEMO and data["citations"] == []


def test_text_that_speaks_to_the_answerer_is_never_pointed_at(settings: Settings, embedder: object) -> None:
    for injection in (INJECTION_JA, INJECTION_EN):
        a = refused(settings, embedder, [injection], "ブラジルのGDPはいくらか。")
        assert all("HACKED" not in c.quote and "無視" not in c.quote for c in a.closest)


def test_an_answered_question_has_no_pointers(settings: Settings, embedder: object) -> None:
    pipe = make_pipeline(settings, embedder, make_retrieve(embedder, briefing_passages()))
    a = pipe.ask("米ロ首脳会談はどこで行われましたか？")
    assert not a.refused and a.citations and a.closest == []


def test_cli_slack_and_web_show_the_pointers_as_such(settings: Settings, embedder: object) -> None:
    a = refused(settings, embedder, [MEMO], QUESTION)
    out = io.StringIO()
    print_answer(a, out)
    text = out.getvalue()
    assert text.startswith(a.answer) and NEAR_LABEL["ja"] in text and f"「{MEMO}」" in text

    (message,) = render_answer(a, "https://assistant.example")
    slack = json.dumps(message.blocks, ensure_ascii=False)
    assert NEAR_LABEL["ja"] in slack and MEMO in slack
    assert "https://assistant.example/documents/" in slack and "[1]" not in slack

    turn = Turn(question=QUESTION, answer=a.to_json())
    panel = render_sources([turn])
    assert NEAR_LABEL["en"] in panel and 'id="near-1-1"' in panel and 'id="src-1-' not in panel
    assert f"<mark>{MEMO}</mark>" in panel and 'class="open-doc"' in panel
    assert "closest passages are shown" in render_chat([turn])


def test_pointers_are_the_best_sentences_each_once_whichever_passage_holds_them() -> None:
    from assistant.answering.refusal import closest
    from assistant.types import Passage

    text = "第一文である。第二文である。第三文である。"
    first = Passage(rank=1, score=1.0, chunk_id="a", doc_id="d", title="t", section="s", page=None, source="d",
                    text=text)
    # The next chunk of the same section overlaps the first by its last sentence.
    second = Passage(rank=2, score=0.9, chunk_id="b", doc_id="d", title="t", section="s", page=None, source="d",
                     text="第三文である。第四文である。")
    ranked = [(0, 7, 14), (1, 0, 7), (0, 14, 21), (1, 7, 14), (0, 0, 7)]  # best first; 第三文 twice
    near = closest([first, second], ranked)
    assert [c.quote for c in near] == ["第二文である。", "第三文である。", "第四文である。"]
    assert [c.chunk_id for c in near] == ["a", "b", "b"]
    assert all(c.text[c.start:c.end] == c.quote for c in near)
