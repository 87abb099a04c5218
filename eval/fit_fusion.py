"""Fits the hybrid fusion weights on the fit half of the shared retrieval data; reports on the test half.

Weights per question language (`ja`, `en`) are fitted on the sets asked in that language, the mixed
one aside; then `ja>en`, the weights of a Japanese question's English passages, on the mixed set
(`xling_ja2en_mixed`: Japanese questions over English paragraphs among Japanese ones), with the
Japanese weights fixed, and with JSQuAD's questions asked over that same mixed corpus held to the
Japanese weights' own figures (`jsquad_mixed_corpus`): favouring English passages must not cost a
Japanese question its Japanese answer.

Usage: .venv/bin/python eval/fit_fusion.py [--data-dir .data/eval-retrieval] [--jsquad-sample 1500]
Writes assistant/fusion_params.json (shipped with the package) and eval/reports/fusion_fit.json.
The split is the retrieval evaluation's own fixed-seed split (`retrieval_eval --split fit|test`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant import rerank as rr
from assistant.evaluation.datasets import sample_queries
from assistant.evaluation.retrieval_eval import (
    XLING_PREFIX,
    index_shared,
    load_ja2en,
    split_queries,
    unwrite_mixed,
    write_corpus,
    write_mixed,
)
from assistant.retrieval import Candidate, FusionWeights, cross_weights, fuse, hybrid_rank

KW_WEIGHTS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e3]
BM25_HALF = [2.0, 4.0, 8.0, 12.0, 20.0, 40.0]
DENSE_FLOOR = [0.6, 0.7, 0.75, 0.8]
# Another language's passages: their BM25 scores (through the word list) and similarities run lower.
CROSS_BM25_HALF = [0.5, 1.0, *BM25_HALF]
CROSS_DENSE_FLOOR = [0.4, 0.5, *DENSE_FLOOR]


def metrics(ranked: list[str], gold: str) -> dict[str, float]:
    rank = ranked.index(gold) + 1 if gold in ranked else None
    return {
        "R@1": float(rank == 1), "R@5": float(rank is not None and rank <= 5),
        "R@10": float(rank is not None and rank <= 10), "MRR@10": 1.0 / rank if rank and rank <= 10 else 0.0,
    }


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(sum(r[k] for r in rows) / max(1, len(rows)), 4) for k in rows[0]} if rows else {}


def doc_of(chunk_doc: dict[str, str], cid: str) -> str:
    return chunk_doc[cid]


def rank_docs(pairs: list[tuple[str, float]], chunk_doc: dict[str, str], k: int = 10) -> list[str]:
    out: list[str] = []
    for cid, _ in pairs:
        d = chunk_doc[cid]
        if d not in out:
            out.append(d)
        if len(out) == k:
            break
    return out


def collect(args: argparse.Namespace) -> tuple[list, dict[str, str], dict[str, str], dict[str, str], dict[str, str],
                                               dict[str, str]]:
    """Every query's candidates (both lists' scores), with its split half and gold document, and each
    candidate chunk's document, language and text as the re-ranker reads it:
    (cache, split, gold, chunk_doc, chunk_lang, texts)."""
    a, corpus, all_queries, pid_doc, folder = index_shared(args.data_dir, args.shared, REPO / ".data" / "models")
    split: dict[str, str] = {}
    queries = []
    for rows in sample_queries(all_queries, args.sample, 13).values():
        for part in ("fit", "test"):
            for q in split_queries(rows, part, 13):
                split[q["qid"] + q["set"]] = part
                queries.append(q)

    cache: list[tuple[dict, dict[str, Candidate]]] = []
    for n, q in enumerate(queries, 1):
        cands = a.retriever.candidates(q["question"], 30, None, "hybrid")
        cache.append((q, cands))
        if n % 500 == 0:
            print(f"  {n}/{len(queries)} queries", flush=True)
    # Real corpora have Japanese titles: English questions are also fitted with the 48 cross-lingual
    # passages' English titles left out, so the English weights do not lean on that leak.
    xling = [pid for pid in corpus if pid.startswith(XLING_PREFIX)]
    write_corpus(corpus, folder, untitled=xling)
    a.ingest([folder])
    for q in [q for q in queries if q["set"] == "xling_en2ja"]:
        untitled = {**q, "set": "xling_en2ja_no_titles"}
        split[untitled["qid"] + untitled["set"]] = split[q["qid"] + q["set"]]
        cache.append((untitled, a.retriever.candidates(q["question"], 30, None, "hybrid")))
    write_corpus(corpus, folder)
    a.ingest([folder])
    chunks = a.index.load_chunks([cid for _, cs in cache for cid in cs])
    gold = {q["qid"] + q["set"]: pid_doc[q["gold_pid"]] for q, _ in cache}
    mixed = load_ja2en(args.shared)
    if mixed:  # Japanese questions over English paragraphs, which stand in for their translations
        passages, questions = mixed
        mixed_map = write_mixed(folder, {name: pid for pid, name in pid_doc.items()}, passages)
        a.ingest([folder], prune=True)
        rows = sample_queries(questions, args.sample, 13, sets=("xling_ja2en_mixed",))["xling_ja2en_mixed"]
        pid_file = {pid: file for file, pid in mixed_map.items()}
        for part in ("fit", "test"):
            for q in split_queries(rows, part, 13):
                split[q["qid"] + q["set"]] = part
                gold[q["qid"] + q["set"]] = pid_file[q["gold_pid"]]
                cache.append((q, a.retriever.candidates(q["question"], 30, None, "hybrid")))
        for q in [q for q in queries if q["set"] == "jsquad"]:
            same = {**q, "set": "jsquad_mixed_corpus"}
            split[same["qid"] + same["set"]] = split[q["qid"] + q["set"]]
            gold[same["qid"] + same["set"]] = pid_doc[q["gold_pid"]]
            cache.append((same, a.retriever.candidates(q["question"], 30, None, "hybrid")))
        chunks.update(a.index.load_chunks([cid for _, cs in cache for cid in cs if cid not in chunks]))
        unwrite_mixed(folder, passages, corpus)
        a.ingest([folder], prune=True)
    chunk_doc = {cid: c.doc_id for cid, c in chunks.items()}
    chunk_lang = {cid: c.language for cid, c in chunks.items()}
    texts = {cid: rr.candidate_text(c.title, c.section, c.text, a.settings.embed_with_title) for cid, c in chunks.items()}
    return cache, split, gold, chunk_doc, chunk_lang, texts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=REPO / ".data" / "eval-retrieval")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    ap.add_argument("--sample", type=int, default=None, help="queries per set (default: all)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the candidates in this file and read them from it on the next run")
    ap.add_argument("--guard-cost", type=float, default=10.0,
                    help="how much more a shortfall of JSQuAD over the mixed corpus costs than one of the mixed set")
    args = ap.parse_args()

    if args.cache and args.cache.exists():
        with args.cache.open("rb") as f:
            cache, split, gold, chunk_doc, chunk_lang, texts = pickle.load(f)
    else:
        cache, split, gold, chunk_doc, chunk_lang, texts = collect(args)
        if args.cache:
            with args.cache.open("wb") as f:
                pickle.dump((cache, split, gold, chunk_doc, chunk_lang, texts), f)

    from assistant.text.lang import detect_language

    rerank_params = rr.load_params()
    reranked: dict[tuple[str, tuple[str, ...]], list[tuple[str, float]]] = {}

    def rerank_once(question: str, own: list[tuple[str, float]], *rest: Any) -> list[tuple[str, float]]:
        """The re-ranker does not depend on the weights of the other language's passages, only on the
        order of its own: one call per order."""
        key = (question, tuple(cid for cid, _ in own))
        if key not in reranked:
            reranked[key] = rr.rerank(question, own, *rest)
        return reranked[key]

    def evaluate(items: list[tuple[dict, dict[str, Candidate]]], w: FusionWeights | str,
                 cross: dict[str, FusionWeights] | None = None, product: bool = False) -> dict[str, float]:
        """Mean metrics of `items` ranked by one list, or fused by `w` (and `cross`); with `product`,
        ranked as the retriever ranks them (`hybrid_rank`: list leaders kept, re-ranked)."""
        rows = []
        for q, cands in items:
            cands = {k: v for k, v in cands.items() if k in chunk_doc}
            if w == "dense":
                pairs = sorted(((c.chunk_id, c.dense) for c in cands.values() if c.dense is not None), key=lambda x: -x[1])
            elif w == "keyword":
                pairs = sorted(((c.chunk_id, c.keyword) for c in cands.values() if c.keyword is not None),
                               key=lambda x: -x[1])
            elif product:
                assert isinstance(w, FusionWeights)
                lang = detect_language(q["question"])
                pairs, _ = hybrid_rank(q["question"], lang, cands, {cid: chunk_lang[cid] for cid in cands}, texts,
                                       {**(cross or {}), lang: w},
                                       rerank_params, rerank_once)
            else:
                assert isinstance(w, FusionWeights)
                lang = detect_language(q["question"])
                own = cross_weights(cross or {}, lang, {cid: chunk_lang[cid] for cid in cands})
                pairs = fuse(cands, w, own)
            rows.append(metrics(rank_docs(pairs, chunk_doc), gold[q["qid"] + q["set"]]))
        return mean(rows)

    def best_weights(fit: list, make: Any, halves: list[float] = BM25_HALF, floors: list[float] = DENSE_FLOOR,
                     guard: Any = None) -> FusionWeights:
        """The grid's best weights on `fit`: never worse than the better list on R@1, R@5 and MRR@10
        (shortfalls cost heavily), then the most R@1 + R@5 + MRR@10 + R@10 / 2. `guard(w)`: a further
        shortfall, costed the same."""
        base_d, base_k = evaluate(fit, "dense"), evaluate(fit, "keyword")
        best, best_score = None, -math.inf
        for kw, half, floor in itertools.product(KW_WEIGHTS, halves, floors):
            w = FusionWeights(kw, half, floor)
            m = make(w)
            short = sum(max(0.0, max(base_d[k], base_k[k]) - m[k]) for k in ("R@1", "R@5", "MRR@10"))
            short += guard(w) if guard else 0.0
            score = m["R@1"] + m["R@5"] + m["MRR@10"] + 0.5 * m["R@10"] - 10 * short
            if score > best_score:
                best, best_score = w, score
        assert best is not None
        return best

    def as_dict(w: FusionWeights) -> dict[str, float]:
        return {"keyword_weight": w.keyword_weight, "bm25_half": w.bm25_half, "dense_floor": w.dense_floor}

    by_lang: dict[str, dict[str, list]] = {}
    for q, cands in cache:
        if q["set"] in ("xling_ja2en_mixed", "jsquad_mixed_corpus"):
            continue
        lang: str = detect_language(q["question"])
        part = split[q["qid"] + q["set"]]
        by_lang.setdefault(lang, {"fit": [], "test": []})[part].append((q, cands))

    fitted: dict[str, FusionWeights] = {}
    out: dict[str, dict] = {"weights": {}, "fit": {}, "test": {}}
    for lang, parts in by_lang.items():
        fit = parts["fit"]
        best = fitted[lang] = best_weights(fit, lambda w, fit=fit: evaluate(fit, w))
        out["fit"][lang] = {"n": len(fit), "dense": evaluate(fit, "dense"), "keyword": evaluate(fit, "keyword"),
                            "hybrid": evaluate(fit, best)}
        test = parts["test"]
        out["test"][lang] = {"n": len(test), "dense": evaluate(test, "dense"), "keyword": evaluate(test, "keyword"),
                             "hybrid": evaluate(test, best)}
        print(lang, as_dict(best), json.dumps(out["test"][lang]), flush=True)

    def fit_half(set_name: str) -> list:
        return [(q, c) for q, c in cache if q["set"] == set_name and split[q["qid"] + q["set"]] == "fit"]

    mixed_fit, guard_fit = fit_half("xling_ja2en_mixed"), fit_half("jsquad_mixed_corpus")
    if mixed_fit:
        guard_base = evaluate(guard_fit, fitted["ja"], product=True)

        def guard(w: FusionWeights) -> float:
            g = evaluate(guard_fit, fitted["ja"], {"ja>en": w}, product=True)
            return args.guard_cost * sum(max(0.0, guard_base[k] - g[k]) for k in ("R@1", "R@5", "MRR@10"))

        fitted["ja>en"] = best_weights(mixed_fit, lambda w: evaluate(mixed_fit, fitted["ja"], {"ja>en": w}, product=True),
                                       CROSS_BM25_HALF, CROSS_DENSE_FLOOR, guard)
        print("ja>en", as_dict(fitted["ja>en"]), "guard fit", evaluate(guard_fit, fitted["ja"], fitted, product=True),
              "without", guard_base, flush=True)
    out["weights"] = {k: as_dict(w) for k, w in fitted.items()}
    per_set: dict[str, dict] = {}
    for set_name in sorted({q["set"] for q, _ in cache}):
        items = [(q, c) for q, c in cache if q["set"] == set_name and split[q["qid"] + q["set"]] == "test"]
        lang = detect_language(items[0][0]["question"])
        per_set[set_name] = {"n": len(items), "dense": evaluate(items, "dense"), "keyword": evaluate(items, "keyword"),
                             "hybrid": evaluate(items, fitted[lang], fitted),
                             "product": evaluate(items, fitted[lang], fitted, product=True)}
        print(set_name, json.dumps(per_set[set_name]), flush=True)
    out["test_by_set"] = per_set
    params = {"weights": out["weights"], "fitted_on": "fit half (seed 13) of the shared retrieval queries, "
              f"sample per set: {args.sample or 'all'}"}
    (REPO / "assistant" / "fusion_params.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    (REPO / "eval" / "reports").mkdir(parents=True, exist_ok=True)
    (REPO / "eval" / "reports" / "fusion_fit.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
