"""Hybrid retrieval: dense (Chroma) and Japanese keyword (BM25) lists, fused by what each is good at.

The keyword list is strong when the question shares the passages' script (Japanese over Japanese)
and its BM25 score is high; the dense list carries questions across languages. The fusion turns
each list's raw score into evidence (dense cosine rescaled; BM25 saturated as s / (s + c)) and
weighs the two by the question's language, and by the passage's where it differs (`ja>en`: a
Japanese question's English passages, whose similarities and keyword scores run on other scales).
Weights are fitted on a fixed-seed half of the shared retrieval data (`eval/fit_fusion.py`) and
shipped in `fusion_params.json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from assistant import rerank as rr
from assistant.index import Index
from assistant.text.lang import detect_language
from assistant.text.normalize import normalize_query
from assistant.text.roles import BYLINE_WORDS, asks_author
from assistant.types import Chunk, Passage

Mode = Literal["hybrid", "dense", "keyword"]
MODES = ("hybrid", "dense", "keyword")


@dataclass
class FusionWeights:
    """Per question language: weight of the keyword evidence, and the BM25 half-saturation score."""

    keyword_weight: float
    bm25_half: float
    dense_floor: float = 0.70


DEFAULT_FUSION = {"ja": FusionWeights(1.0, 8.0), "en": FusionWeights(0.15, 12.0)}


def load_fusion_params() -> dict[str, FusionWeights]:
    try:
        raw = json.loads(resources.files("assistant").joinpath("fusion_params.json").read_text("utf-8"))
    except FileNotFoundError:
        return dict(DEFAULT_FUSION)
    return {lang: FusionWeights(**{k: float(v) for k, v in w.items()}) for lang, w in raw["weights"].items()}


@dataclass
class Candidate:
    chunk_id: str
    dense: float | None = None
    keyword: float | None = None
    dense_rank: int | None = None
    keyword_rank: int | None = None


def list_evidence(cands: dict[str, Candidate], dense_floor: float, bm25_half: float,
                  own: Mapping[str, FusionWeights] | None = None) -> dict[str, tuple[float, float]]:
    """Each candidate's (dense, keyword) evidence as fusion weighs it: the similarity above `dense_floor`,
    scaled to 1 (a candidate missing from the dense list takes just under the list's lowest), and the
    BM25 score saturated at `bm25_half`. `own` gives some candidates their own floor and half (a
    passage in another language than the question's: its similarities and scores run lower)."""
    dense_scores = [c.dense for c in cands.values() if c.dense is not None]
    dense_missing = (min(dense_scores) - 0.01) if dense_scores else dense_floor
    out = {}
    for c in cands.values():
        w = (own or {}).get(c.chunk_id)
        floor, half = (w.dense_floor, w.bm25_half) if w else (dense_floor, bm25_half)
        d = c.dense if c.dense is not None else dense_missing
        k = c.keyword or 0.0
        out[c.chunk_id] = (max(0.0, (d - floor) / (1.0 - floor)), k / (k + half) if k > 0 else 0.0)
    return out


def fuse(cands: dict[str, Candidate], weights: FusionWeights,
         own: Mapping[str, FusionWeights] | None = None) -> list[tuple[str, float]]:
    """Fused score per candidate, best first: dense evidence plus weighted keyword evidence.

    `own`: weights for some candidates by chunk id, used instead of `weights` (`cross_weights`)."""
    own = own or {}
    evidence = list_evidence(cands, weights.dense_floor, weights.bm25_half, own)
    out = [(cid, d_ev + (own[cid] if cid in own else weights).keyword_weight * k_ev)
           for cid, (d_ev, k_ev) in evidence.items()]
    out.sort(key=lambda x: -x[1])
    return out


def cross_weights(fusion: Mapping[str, FusionWeights], lang: str,
                  languages: Mapping[str, str]) -> dict[str, FusionWeights]:
    """The weights of candidates written in another language than the question's: `fusion["ja>en"]`
    for a Japanese question's English passages, and so on. `languages` maps chunk id to its language;
    a pair without fitted weights, or an unknown language, keeps the question language's weights."""
    out = {}
    for cid, chunk_lang in languages.items():
        w = fusion.get(f"{lang}>{chunk_lang}") if chunk_lang and chunk_lang != lang else None
        if w is not None:
            out[cid] = w
    return out


def keep_list_leaders(fused: list[tuple[str, float]], cands: dict[str, Candidate], leaders: int = 2,
                      first: int = 1) -> list[tuple[str, float]]:
    """Each list's `leaders` best chunks rank no lower than `first`, `first` + 1, ...: one list's noise
    (generic query words in BM25, a vague embedding match) cannot bury the other list's clear best hits.

    The fused top result is left alone; a moved chunk keeps its own fused score, so scores below the
    first rank need not fall monotonically. Chosen on the fit half of the shared retrieval data: it
    raised held-out jsquad R@5 from 0.975 to 0.977 and changed no other set's R@1, R@5 or MRR@10 by
    more than 0.001 (`eval/reports/retrieval_test.md`).
    """
    order = [cid for cid, _ in fused]
    for key in ("dense", "keyword"):
        ranked = sorted((c for c in cands.values() if getattr(c, key) is not None), key=lambda c: -getattr(c, key))
        for j, cand in enumerate(ranked[:leaders]):
            want = first + j
            at = order.index(cand.chunk_id)
            if at > want:
                order.insert(want, order.pop(at))
    score = dict(fused)
    return [(cid, score[cid]) for cid in order]


def keep_leaders_around(ranked: list[tuple[str, float]], cands: dict[str, Candidate], pinned: set[str],
                        leaders: int = 2) -> list[tuple[str, float]]:
    """`keep_list_leaders` among the candidates not `pinned`; a pinned one keeps its place.

    Pinned: passages in another language than the question's, placed by their own fusion weights
    (`cross_weights`). A list's leaders are chosen by raw score, and raw scores favour passages in the
    question's language: moving those leaders up would push a well-placed passage in another language
    down for no evidence."""
    if not pinned:
        return keep_list_leaders(ranked, cands, leaders)
    rest = [(cid, score) for cid, score in ranked if cid not in pinned]
    kept = iter(keep_list_leaders(rest, {cid: cands[cid] for cid, _ in rest}, leaders))
    return [(cid, score) if cid in pinned else next(kept) for cid, score in ranked]


def hybrid_rank(question: str, lang: str, cands: dict[str, Candidate], languages: Mapping[str, str],
                texts: Mapping[str, str] | None, fusion: Mapping[str, FusionWeights], rerank: Mapping[str, Any],
                rerank_fn: Any = rr.rerank) -> tuple[list[tuple[str, float]], dict[str, dict[str, float]]]:
    """The hybrid ranking of `cands` for a question in `lang`: fused (`cross_weights` for passages in
    another language), each list's leaders kept near the top, then re-ranked when `rerank` has a model
    for `lang` and `texts` (chunk id to `rr.candidate_text`) are given. `languages`: chunk id to its
    document's language. Returns (chunk id, fused score) best first, and each re-ranked chunk's own
    score as {chunk id: {"rerank": score}}."""
    cross = cross_weights(fusion, lang, languages)
    ranked = keep_leaders_around(fuse(cands, fusion.get(lang) or DEFAULT_FUSION[lang], cross), cands, set(cross))
    if texts is None or not rerank.get("models", {}).get(lang):
        return ranked, {}
    # Its features read the question's words in each candidate's text: a candidate written in another
    # language keeps its fused place and the others are re-ranked around it.
    own = [(cid, score) for cid, score in ranked if languages.get(cid, "") in ("", lang)]
    scored = iter(rerank_fn(question, own, cands, texts, rerank))
    own_ids = {cid for cid, _ in own}
    merged = [next(scored) if cid in own_ids else (cid, score) for cid, score in ranked]
    reranked = keep_leaders_around(merged, cands, set(cross), leaders=int(rerank.get("leaders", 2)))
    # The re-ranker sets the order; the score stays the fused score, its own is beside it.
    fused = dict(ranked)
    extra = {cid: {"rerank": score} for cid, score in merged if cid in own_ids}
    return [(cid, fused[cid]) for cid, _ in reranked], extra


class Retriever:
    """Dense, keyword or hybrid search over the index; results are hydrated from SQLite (active chunks only)."""

    def __init__(self, index: Index, vectors: Any, embedder: Any, candidates_k: int = 30,
                 fusion: dict[str, FusionWeights] | None = None, rerank: dict[str, Any] | None = None,
                 with_title: bool = True, lexicon: Any = None) -> None:
        """`rerank`: the re-ranker's parameters (default: the shipped ones; {} turns it off).
        `with_title`: whether ingestion indexes a title line with each chunk (`embed_with_title`)."""
        self.index = index
        self.vectors = vectors
        self.embedder = embedder
        self.candidates_k = candidates_k
        self.fusion = fusion or load_fusion_params()
        self.rerank = rr.load_params() if rerank is None else rerank
        self.with_title = with_title
        # The English-Japanese word list (`text.lexicon`): keyword search across the two languages.
        self.lexicon = lexicon

    def candidates(self, question: str, k: int, allowed: set[str] | None, mode: Mode,
                   timings: dict[str, float] | None = None) -> dict[str, Candidate]:
        cands: dict[str, Candidate] = {}
        query = normalize_query(question)
        if mode in ("hybrid", "dense"):
            t0 = time.perf_counter()
            vec = self.embedder.embed_queries([query])[0]
            t1 = time.perf_counter()
            for rank, (cid, score) in enumerate(self.vectors.search(vec.tolist(), k, allowed), 1):
                cands.setdefault(cid, Candidate(cid)).dense = score
                cands[cid].dense_rank = rank
            if timings is not None:
                timings["embed_query"] = (t1 - t0) * 1000
                timings["dense"] = (time.perf_counter() - t1) * 1000
        if mode in ("hybrid", "keyword"):
            t0 = time.perf_counter()
            renderings = self._renderings(question)
            for rank, (cid, score) in enumerate(self.index.keyword.search(query, k, allowed, renderings), 1):
                cands.setdefault(cid, Candidate(cid)).keyword = score
                cands[cid].keyword_rank = rank
            if timings is not None:
                timings["keyword"] = (time.perf_counter() - t0) * 1000
        return cands

    def _renderings(self, question: str) -> list[tuple[str, ...]]:
        """The question's words in the other language (`Lexicon.render`), so that keyword search
        reaches documents written in either; a Japanese question's katakana words with their kanji
        synonyms; for a question about the author, the words of bylines (`text.roles`)."""
        groups: list[tuple[str, ...]] = [BYLINE_WORDS] if asks_author(question) else []
        if self.lexicon is None:
            return groups
        lang = detect_language(question)
        if lang == "ja":
            # A katakana word also finds the kanji one a text uses for it (ヨーロッパ: 欧州).
            groups.extend(self.lexicon.synonym_groups(question))
        return [*(r.renderings for r in self.lexicon.render(question, lang)), *groups]

    def search(self, question: str, top_k: int = 5, allowed: set[str] | None = None, mode: Mode = "hybrid",
               timings: dict[str, float] | None = None) -> list[Passage]:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {MODES}")
        k = max(self.candidates_k, top_k)
        cands = self.candidates(question, k, allowed, mode, timings)
        chunks = self.index.load_chunks(list(cands))
        cands = {cid: c for cid, c in cands.items() if cid in chunks}  # vectors of uncommitted writes
        extra: dict[str, dict[str, float]] = {}
        if mode == "dense":
            ranked = sorted(((c.chunk_id, c.dense or 0.0) for c in cands.values() if c.dense is not None),
                            key=lambda x: -x[1])
        elif mode == "keyword":
            ranked = sorted(((c.chunk_id, c.keyword or 0.0) for c in cands.values() if c.keyword is not None),
                            key=lambda x: -x[1])
        else:
            lang = detect_language(question)
            texts = None
            if self.rerank.get("models", {}).get(lang):
                texts = {cid: rr.candidate_text(c.title, c.section, c.text, self.with_title)
                         for cid, c in chunks.items()}
            ranked, extra = hybrid_rank(question, lang, cands, {cid: c.language for cid, c in chunks.items()},
                                        texts, self.fusion, self.rerank)
        return [_passage(chunks[cid], rank, score, cands[cid], extra.get(cid))
                for rank, (cid, score) in enumerate(ranked[:top_k], 1)]


def _passage(chunk: Chunk, rank: int, score: float, cand: Candidate, extra: dict[str, float] | None = None) -> Passage:
    scores = {"fused": round(score, 6), **{k: round(v, 6) for k, v in (extra or {}).items()}}
    if cand.dense is not None:
        scores["dense"] = round(cand.dense, 6)
    if cand.keyword is not None:
        scores["keyword"] = round(cand.keyword, 6)
    return Passage.from_chunk(chunk, rank, round(score, 6), **scores)
