"""Hybrid fusion: per-language weights, and the rule that keeps each list's best hits near the top."""

from __future__ import annotations

from assistant.retrieval import (
    Candidate,
    FusionWeights,
    cross_weights,
    fuse,
    keep_leaders_around,
    keep_list_leaders,
    load_fusion_params,
)

JA = FusionWeights(keyword_weight=2.0, bm25_half=40.0, dense_floor=0.75)


def _cands(rows: list[tuple[str, float | None, float | None]]) -> dict[str, Candidate]:
    return {cid: Candidate(cid, dense=d, keyword=k) for cid, d, k in rows}


def test_strong_keyword_evidence_outranks_a_slightly_closer_vector() -> None:
    cands = _cands([("a", 0.86, 60.0), ("b", 0.87, 2.0)])
    assert [cid for cid, _ in fuse(cands, JA)] == ["a", "b"]


def test_the_dense_lists_best_hit_is_not_buried_by_keyword_noise() -> None:
    # Many chunks share a generic query word; the one the embedding clearly prefers has none of it.
    rows: list[tuple[str, float | None, float | None]] = [(f"n{i}", 0.80, 30.0 - i) for i in range(8)]
    rows.append(("best", 0.93, None))
    cands = _cands(rows)
    fused = fuse(cands, JA)
    assert [cid for cid, _ in fused].index("best") > 2
    kept = keep_list_leaders(fused, cands)
    order = [cid for cid, _ in kept]
    assert order.index("best") == 1
    assert order[0] == fused[0][0]  # the fused top result stays first
    assert sorted(kept) == sorted(fused)  # nothing is lost or rescored
    assert dict(kept)["best"] == dict(fused)["best"]


def test_each_lists_two_leaders_rank_within_the_first_three() -> None:
    rows: list[tuple[str, float | None, float | None]] = [(f"n{i}", 0.80 - i / 1000, 20.0) for i in range(10)]
    rows += [("k1", None, 90.0), ("k2", None, 80.0), ("d1", 0.95, None), ("d2", 0.94, None)]
    cands = _cands(rows)
    order = [cid for cid, _ in keep_list_leaders(fuse(cands, FusionWeights(0.1, 200.0, 0.9)), cands)]
    assert set(order[:4]) == {"k1", "k2", "d1", "d2"}
    assert order[0] == "d1"  # the fused best, left in place


# The re-ranker: lexical evidence in the candidates' texts, on top of the fused scores.

def _texts(cands: dict[str, Candidate], **texts: str) -> dict[str, str]:
    from assistant.rerank import candidate_text

    return {cid: candidate_text(texts[cid].split("|")[0], "", texts[cid].split("|")[1]) for cid in cands}


def test_passages_in_another_language_take_their_pairs_weights() -> None:
    fusion = {"ja": JA, "ja>en": FusionWeights(keyword_weight=1.0, bm25_half=1.0, dense_floor=0.5)}
    own = cross_weights(fusion, "ja", {"j": "ja", "e": "en", "x": "", "k": "ko"})
    assert own == {"e": fusion["ja>en"]}  # same language, unknown, or no fitted pair: the question's weights
    assert cross_weights(fusion, "en", {"j": "ja"}) == {}  # no "en>ja" weights here
    # An English passage's similarity to a Japanese question runs lower than a Japanese passage's:
    # under the Japanese weights alone it ranks below one with less of the question's words.
    cands = _cands([("j", 0.84, 1.0), ("e", 0.80, 3.0)])
    assert [cid for cid, _ in fuse(cands, JA)] == ["j", "e"]
    assert [cid for cid, _ in fuse(cands, JA, own)] == ["e", "j"]
    assert dict(fuse(cands, JA, own))["j"] == dict(fuse(cands, JA))["j"]  # the others keep their scores


def test_a_passage_in_another_language_keeps_its_place_when_list_leaders_move() -> None:
    # A Japanese question: the English passage "e" is second by its own weights; the Japanese
    # passages' raw similarities run higher, so the dense list's leaders are Japanese ones.
    rows: list[tuple[str, float | None, float | None]] = [("top", 0.86, 50.0), ("e", 0.80, 4.0)]
    rows += [(f"n{i}", 0.83 - i / 1000, 5.0) for i in range(4)] + [("d1", 0.90, None), ("d2", 0.89, None)]
    cands = _cands(rows)
    ranked = [("top", 3.0), ("e", 2.5)] + [(f"n{i}", 2.0 - i / 10) for i in range(4)] + [("d1", 1.0), ("d2", 0.9)]
    moved = [cid for cid, _ in keep_list_leaders(ranked, cands)]
    assert moved.index("e") > 2  # the leaders rule alone pushes it down
    kept = [cid for cid, _ in keep_leaders_around(ranked, cands, {"e"})]
    assert kept[:2] == ["top", "e"] and {"d1", "d2", "n0"} == set(kept[2:5])  # the leaders move up around it
    assert sorted(kept) == sorted(moved)
    assert keep_leaders_around(ranked, cands, set()) == keep_list_leaders(ranked, cands)


def test_shipped_fusion_weights_cover_japanese_questions_over_english_passages() -> None:
    fusion = load_fusion_params()
    assert {"ja", "en", "ja>en"} <= set(fusion)
    assert fusion["ja>en"] != fusion["ja"]


def test_shipped_rerank_params_cover_every_feature() -> None:
    from assistant.rerank import FEATURES, load_params

    params = load_params()
    assert params["features"] == FEATURES
    assert set(params["models"]) == {"ja"}
    assert set(params["models"]["ja"]["weights"]) == set(FEATURES)


def test_the_passage_that_holds_the_asked_words_moves_up() -> None:
    from assistant.rerank import load_params, rerank

    cands = _cands([("other", 0.86, 12.0), ("answer", 0.86, 11.5), ("third", 0.85, 5.0)])
    texts = _texts(cands, other="ラオス|ラオスは東南アジアの内陸国で、メコン川が国土を流れる。",
                   answer="ラオス|ラオスの首都はヴィエンチャンで、政治と経済の中心である。",
                   third="タイ|タイの首都はバンコクである。")
    fused = fuse(cands, JA)
    assert [cid for cid, _ in fused][0] == "other"
    out = rerank("ラオスの首都はどこか。", fused, cands, texts, load_params())
    assert [cid for cid, _ in out][0] == "answer"
    assert sorted(cid for cid, _ in out) == sorted(cid for cid, _ in fused)


def test_english_questions_keep_the_fused_order() -> None:
    from assistant.rerank import load_params, rerank

    cands = _cands([("a", 0.86, 12.0), ("b", 0.85, 11.0)])
    fused = fuse(cands, JA)
    assert rerank("What is the capital of Laos?", fused, cands, _texts(cands, a="x|a", b="y|b"), load_params()) is fused
    assert rerank("ラオスの首都はどこか。", fused, cands, _texts(cands, a="x|a", b="y|b"), {}) is fused
