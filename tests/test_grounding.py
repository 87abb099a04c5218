"""The grounding check: sentence splitting, framing, verbatim quotes, lexical and cross-lingual support."""

from __future__ import annotations

import pytest

from assistant.grounding import (
    SUPPORT_THRESHOLD,
    check_answer,
    parse_claim,
    split_answer,
    support_score,
)

PASSAGE = (
    "一方、15日の米ロ首脳会談後、トランプ氏は対ロ経済制裁発動の2～3週間の延期を表明。停戦や制\n"
    "裁が先送りされたことで、ロシアは一定の時間と交渉優位性を確保した。"
)
PASSAGE_NATO = (
    "また安全保障についてロシア外務省報道官は「ウクライナへのNATO軍派遣を含むいかなるシナリオも明確に拒否する」"
    "と述べ、こちらも米・欧・宇との意見の隔たりは大きい。"
)


def test_split_keeps_markers_and_quoted_full_stops() -> None:
    text = "文書によると、「延期を表明。停戦」[1]。また、「確保した」[2]。 The documents say: \"x. y\" [3]. Done."
    assert split_answer(text) == [
        "文書によると、「延期を表明。停戦」[1]。",
        "また、「確保した」[2]。",
        "The documents say: \"x. y\" [3].",
        "Done.",
    ]


def test_markers_after_a_full_stop_stay_with_their_sentence() -> None:
    assert split_answer("Trump delayed sanctions. [1] Russia gained time. [2]") == [
        "Trump delayed sanctions. [1]", "Russia gained time. [2]"]


def test_parse_claim_strips_framing_and_markers() -> None:
    claim = parse_claim("2025-08時点の文書によると、「延期を表明」[1, 2]。")
    assert claim.citations == [1, 2]
    assert claim.claim == "「延期を表明」。"
    assert parse_claim("According to the documents as of 2025-08: 「延期」 [3].").claim == "「延期」."


def test_framing_and_refusals_assert_nothing() -> None:
    g = check_answer("資料にはこの質問に答える情報がありません。", {})
    assert g.checked == 1 and g.supported == 1
    assert g.sentences[0]["kind"] == "framing"


def test_verbatim_quote_is_supported_across_line_breaks() -> None:
    assert support_score("文書によると、「停戦や制裁が先送りされたことで」[1]。", PASSAGE) == 1.0


def test_quote_not_in_passage_is_never_supported() -> None:
    assert support_score("「トランプ氏は制裁を撤回した」[1]。", PASSAGE) == 0.0


def test_lexical_support_for_a_faithful_japanese_claim() -> None:
    assert support_score("トランプ氏は対ロ経済制裁発動の延期を表明した[1]。", PASSAGE) >= SUPPORT_THRESHOLD


def test_invented_fact_and_changed_number_are_unsupported() -> None:
    assert support_score("ブラジルのGDPは1.2兆ドルである[1]。", PASSAGE) < SUPPORT_THRESHOLD
    assert support_score("トランプ氏は対ロ経済制裁発動の5週間の延期を表明した[1]。", PASSAGE) < SUPPORT_THRESHOLD


def test_check_answer_counts_and_needs_a_valid_citation() -> None:
    answer = "トランプ氏は対ロ経済制裁発動の延期を表明した[1]。ブラジルのGDPは1.2兆ドルである[1]。ロシアは時間を確保した。"
    g = check_answer(answer, {1: PASSAGE})
    assert g.checked == 3
    assert [s["supported"] for s in g.sentences] == [True, False, False]
    assert g.sentences[0]["citations"] == [1]


def test_citation_to_a_passage_not_given_is_unsupported() -> None:
    g = check_answer("トランプ氏は対ロ経済制裁発動の延期を表明した[9]。", {1: PASSAGE})
    assert g.supported == 0


def test_english_claims_over_japanese_passages_use_the_embedding(embedder: object) -> None:
    true_claim = "Russia's foreign ministry spokesperson rejected any scenario including sending NATO troops to Ukraine [1]."
    false_claim = "The GDP of Brazil is $1.2 trillion [1]."
    # Lexical overlap alone (only "NATO" is shared) cannot support an English claim.
    assert support_score(true_claim, PASSAGE_NATO) < SUPPORT_THRESHOLD
    assert support_score(true_claim, PASSAGE_NATO, embedder) >= SUPPORT_THRESHOLD  # type: ignore[arg-type]
    assert support_score(false_claim, PASSAGE_NATO, embedder) < SUPPORT_THRESHOLD  # type: ignore[arg-type]


@pytest.mark.parametrize("claim", [
    "Trump announced a delay of two to three weeks in imposing sanctions on Russia [1].",
])
def test_english_paraphrase_of_the_sanctions_sentence(embedder: object, claim: str) -> None:
    assert support_score(claim, PASSAGE, embedder) >= SUPPORT_THRESHOLD  # type: ignore[arg-type]
