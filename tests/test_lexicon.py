"""The English-to-Japanese lexicon built from jamdict-data, and English keyword search over Japanese text."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core import make_assistant
from assistant.keyword.index import KeywordIndex
from assistant.keyword.memory import MemoryKeywordStore
from assistant.text.lexicon import LEXICON_FILE, Lexicon, ensure_lexicon, normalize_gloss
from assistant.text.normalize import search_form
from tests.helpers import CORPUS, make_settings


@pytest.fixture(scope="module")
def lexicon(models_dir: Path) -> Lexicon:
    path = ensure_lexicon(models_dir)
    assert path is not None, "jamdict-data is a dependency: the set-up installs it"
    return Lexicon(path)


def rendered(lexicon: Lexicon, question: str) -> dict[str, tuple[str, ...]]:
    return {r.word: r.renderings for r in lexicon.translate(question)}


def test_gloss_keys_drop_parentheticals_articles_and_to() -> None:
    assert normalize_gloss("to postpone (a meeting)") == "postpone"
    assert normalize_gloss("the Crimea") == "crimea"
    assert normalize_gloss("Nuclear Power") == "nuclear power"


def test_words_and_phrases_get_their_common_renderings(lexicon: Lexicon) -> None:
    r = rendered(lexicon, "How long did Trump delay economic sanctions against Russia?")
    assert r["economic sanctions"][0] == "経済制裁"  # the phrase wins over its words
    assert "ロシア" in r["russia"]
    assert "トランプ" in r["trump"]  # capitalised: a name, not the card game's verb
    assert "how" not in r and "did" not in r
    assert "原子力" in rendered(lexicon, "What is the target share of nuclear power?")["nuclear power"]
    # Inflected forms find their base form.
    assert any("制裁" in ja for ja in rendered(lexicon, "the sanctions")["sanctions"])


def test_an_acronym_is_no_function_word(lexicon: Lexicon) -> None:
    """"US" is the country, "us" the pronoun and a function word."""
    assert "米国" in rendered(lexicon, "How involved will the US be in Ukraine's security?")["us"]
    assert "us" not in rendered(lexicon, "Tell us about Ukraine's security.")


def test_a_second_build_is_skipped(models_dir: Path) -> None:
    path = models_dir / LEXICON_FILE
    before = path.stat().st_mtime_ns
    assert ensure_lexicon(models_dir) == path
    assert path.stat().st_mtime_ns == before


def test_renderings_share_their_word_weight() -> None:
    """A word with three renderings found in the documents counts a third for each, so an ambiguous
    word weighs no more than a plain one."""
    index = KeywordIndex(store=MemoryKeywordStore())
    index.add([("a", "d1", search_form("経済制裁を延期した。").text),
               ("b", "d2", search_form("原子力の発電所。").text),
               ("c", "d3", search_form("天気は晴れ。").text)])
    one = dict(index.search("", 3, renderings=[["延期"]]))
    three = dict(index.search("", 3, renderings=[["延期", "発電所", "晴れ"]]))
    assert set(one) == {"a"} and set(three) == {"a", "b", "c"}
    assert three["a"] == pytest.approx(one["a"] / 3)
    # A rendering no document holds takes no share.
    assert dict(index.search("", 3, renderings=[["延期", "存在しない語"]]))["a"] == pytest.approx(one["a"])
    assert index.search("", 3, renderings=[["存在しない語"]]) == []


def test_english_keyword_search_finds_japanese_passages(tmp_path: Path) -> None:
    """Keyword-only retrieval of an English question over the Japanese briefing, with and without the lexicon."""
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([CORPUS])
    question = "How many weeks did Trump postpone the economic sanctions on Russia?"
    found = a.retrieve(question, top_k=3, mode="keyword")
    assert found and "経済制裁" in found[0].text and "延期" in found[0].text
    a.retriever.lexicon = None
    assert not any("経済制裁" in p.text for p in a.retrieve(question, top_k=3, mode="keyword"))


def test_an_english_question_finds_its_japanese_sentence_through_the_renderings(
        lexicon: Lexicon, embedder: object) -> None:
    from assistant.answering.extractive import SentenceScorer
    from assistant.types import Passage

    text = ("政府は2040年度の電源構成で再生可能エネルギーを4〜5割程度とする目標を掲げた。"
            "原子力は2割程度とし、最大限活用する方針を明記した。最大の課題は電力需要の増加である。"
            "蓄電池の導入支援を拡充する。")
    passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="エネルギー政策", section="概要", page=None,
                      source="energy.md", text=text, language="ja")
    question = "What is the target share of nuclear power?"
    plain = SentenceScorer(embedder).score(question, [passage])  # type: ignore[arg-type]
    with_lexicon = SentenceScorer(embedder, lexicon=lexicon).score(question, [passage])  # type: ignore[arg-type]
    assert with_lexicon.ranked()[0].text.startswith("原子力は2割程度")
    assert with_lexicon.ranked()[0].rendered > 0 and not plain.ranked()[0].rendered
    # The refusal rule reads the features it was fitted on: the renderings only order the sentences.
    assert with_lexicon.features == plain.features


def test_verbs_bring_their_nouns_and_phrasal_verbs_keep_their_particle(lexicon: Lexicon) -> None:
    assert "延期" in rendered(lexicon, "Did he postpone it?")["postpone"]  # via "postponement"
    assert "合意" in rendered(lexicon, "Will they agree?")["agree"]  # via "agreement"
    assert "侵攻" in rendered(lexicon, "Did they invade?")["invade"]  # via "invasion"
    assert "give up" in rendered(lexicon, "Which regions would Ukraine have to give up?")


def test_japanese_words_get_english_glosses(lexicon: Lexicon) -> None:
    from assistant.text.normalize import normalize_query

    glosses = {r.word: r.renderings for r in lexicon.translate_ja(normalize_query("市議会は図書館の予算をいつ承認したか"))}
    assert "library" in glosses["図書館"] and "budget" in glosses["予算"]
    assert "いつ" not in glosses  # question words are not topics


def test_a_japanese_question_finds_an_english_document(tmp_path: Path) -> None:
    """In a corpus of Japanese and English documents, a Japanese question about the English one."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "library.txt").write_text(
        "Library funding\n\nThe city council approved a new budget for the public libraries in March. "
        "The budget adds two reading rooms and longer opening hours.\n", encoding="utf-8")
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([CORPUS, docs])
    question = "市議会は図書館の予算をいつ承認しましたか"
    for mode in ("keyword", "hybrid"):
        assert a.retrieve(question, top_k=3, mode=mode)[0].doc_id == "library.txt", mode
    a.retriever.lexicon = None
    assert not any(p.doc_id == "library.txt" for p in a.retrieve(question, top_k=3, mode="keyword"))


def test_a_japanese_question_quotes_the_english_sentence_that_answers_it(tmp_path: Path) -> None:
    """The sentences of an English passage are ranked for a Japanese question through the glosses of
    its words, so the quote is the sentence that answers it rather than the passage's first one."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "library.txt").write_text(
        "Library funding\n\nThe city council approved a new budget for the public libraries in March 2026. "
        "The budget adds two reading rooms and extends opening hours until 9 p.m. on weekdays.\n\n"
        "The mayor said the plan would cost 4.2 million dollars over three years.\n", encoding="utf-8")
    a = make_assistant(make_settings(tmp_path / "data"))
    a.ingest([CORPUS, docs])
    answer = a.ask("図書館の計画の費用はいくらですか")  # every sentence holds a number
    assert answer.language == "ja" and answer.citations, answer.answer
    assert "4.2 million dollars" in answer.citations[0].quote


def test_an_english_answer_carries_dictionary_glosses_of_its_japanese_quotes(tmp_path: Path) -> None:
    """A reading aid beside the quote, apart from the answer text: the question's own word where it
    glosses a quoted word, and no dictionary sense for a name (トランプ is not "playing cards")."""
    from assistant.answering.extractive import glosses
    from assistant.interfaces.web_assets import Turn, render_sources

    a = make_assistant(make_settings(tmp_path))
    a.ingest([CORPUS])
    lexicon = a.pipeline.scorer.lexicon
    quote = "しかし領土についてゼレンスキー氏は現在の前線を交渉の開始地点とみなすとし、従来の発言からは譲歩がみられる"
    found = {g["ja"]: g["en"] for g in glosses(lexicon, quote, "What did Zelensky say about territory?")}
    assert found["領土"] == "territory"  # the question's word, not the first sense ("dominion")
    assert found["譲歩"] == "concession"
    assert "ゼレンスキー" not in found  # a name the word list does not render from the question
    order = [quote.index(w) for w in found]
    assert order == sorted(order)
    assert "トランプ" not in {g["ja"] for g in glosses(lexicon, "トランプ大統領は和平を優先した", "What did he prefer?")}
    assert glosses(lexicon, "Trump postponed the sanctions.", "What did Trump postpone?") == []

    english = a.ask("What did Zelensky say about territory?")
    assert english.citations and all(c.glosses for c in english.citations)
    assert english.answer.count("territory") == 0  # the glosses stay out of the answer text
    page = render_sources([Turn(question=english.question, answer=english.to_json())])
    assert "Dictionary glosses" in page and "territory" in page
    japanese = a.ask("ゼレンスキー氏は領土について何と言っていますか")
    assert japanese.citations and not any(c.glosses for c in japanese.citations)


def test_a_katakana_word_stands_for_its_kanji_synonym(lexicon: Lexicon) -> None:
    assert lexicon.kanji_synonym("ヨーロッパ") == "欧州"
    assert lexicon.kanji_synonym("アメリカ") == "米国"
    assert lexicon.kanji_synonym("スペシャリスト") == "専門家"
    # Names and words without a kanji twin stay themselves; kanji words are never mapped.
    assert lexicon.kanji_synonym("トランプ") is None
    assert lexicon.kanji_synonym("ウクライナ") is None
    assert lexicon.kanji_synonym("欧州") is None
    assert lexicon.synonym_groups("ヨーロッパでは何をしようとしていますか。") == [("ヨーロッパ", "欧州")]


def test_a_katakana_question_word_meets_the_kanji_word_of_a_sentence(lexicon: Lexicon, embedder: object) -> None:
    from assistant.answering.extractive import SentenceScorer
    from assistant.types import Passage

    text = "北海電機は欧州での販売網の拡大に向け、現地の販売会社の買収を検討している。国内では工場の自動化を進める。"
    passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="", section="", page=None, source="",
                      text=text, language="ja")
    question = "ヨーロッパで何をしようとしていますか。"
    with_list = SentenceScorer(embedder, lexicon=lexicon).score(question, [passage]).ranked()[0]
    without = SentenceScorer(embedder).score(question, [passage]).ranked()[0]
    assert "欧州" in with_list.text and with_list.keyword == 1.0
    assert without.keyword == 0.0


def test_an_english_figure_meets_the_same_figure_in_japanese(lexicon: Lexicon, embedder: object) -> None:
    from assistant.answering.extractive import SentenceScorer, rendered_overlap

    scorer = SentenceScorer(embedder, lexicon=lexicon)  # type: ignore[arg-type]
    question = "What did Trump say on the 19th?"
    q_tokens, renderings, _ = scorer.question_terms(question)
    assert ("19",) in renderings
    said = rendered_overlap(renderings, "19日にトランプ氏は地上部隊の派遣を否定した。")
    other_day = rendered_overlap(renderings, "2019年にトランプ氏は地上部隊の派遣を否定した。")
    assert said > other_day > 0  # "19" in "19日", not inside "2019年"
