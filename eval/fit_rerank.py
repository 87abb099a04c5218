"""Fits the hybrid re-ranker (`assistant/rerank.py`) on the fit half of the shared retrieval data; reports on
the test half.

Usage: .venv/bin/python eval/fit_rerank.py [--data-dir .data/eval-retrieval]
Writes assistant/rerank_params.json (shipped with the package) and eval/reports/rerank_fit.json.
The split is the retrieval evaluation's own fixed-seed split (`retrieval_eval --split fit|test`).
Model: a linear score over `rerank.FEATURES`, trained listwise (softmax cross-entropy of the gold
document's chunks against all candidates of the question) on Japanese questions, with an L2 penalty
on standardised features; the penalty and the feature set were chosen by 4-fold cross-validation
within the fit half, folds grouped by gold document. English questions keep the fused ranking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant import rerank as rr
from assistant.evaluation import metrics as m
from assistant.evaluation.retrieval_eval import index_shared, split_queries
from assistant.retrieval import Candidate, fuse, keep_list_leaders, load_fusion_params
from assistant.text.lang import detect_language
from assistant.text.normalize import normalize_query

L2 = 1e-4
LEADERS = 2
LANGS = ("ja",)
SETS = ("jsquad", "xling_ja2ja", "xling_en2ja")


def fit_listwise(xs: list[np.ndarray], ys: list[np.ndarray], l2: float) -> np.ndarray:
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    stacked = np.vstack(xs)
    mu, sd = stacked.mean(0), stacked.std(0) + 1e-9
    zs = [(x - mu) / sd for x in xs]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, y in zip(zs, ys, strict=True):
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            py = p[y].sum()
            total -= np.log(py)
            grad -= (p[y] / py) @ x[y] - p @ x
        return total / len(zs) + l2 * w @ w, grad / len(zs) + 2 * l2 * w

    w = minimize(loss, np.zeros(stacked.shape[1]), jac=True, method="L-BFGS-B").x
    return w / sd  # the shift -w.mu/sd is the same for every candidate of a question


def doc_metrics(items: list[tuple[str, str, list[tuple[str, float]]]], chunk_doc: dict[str, str]) -> dict[str, Any]:
    """Per query set: R@1, R@5, R@10 and MRR@10 by distinct gold document, as the retrieval evaluation counts them."""
    out: dict[str, list[dict[str, float]]] = {}
    for name, gold, ranked in items:
        docs = [d for d in (chunk_doc.get(cid) for cid, _ in ranked) if d]
        out.setdefault(name, []).append(m.ranking_metrics(m.doc_hits(docs, gold), 1, (1, 5, 10)))
    return {name: {"n": len(rows), **{key.upper(): round(float(np.mean([r[key] for r in rows])), 4)
                                      for key in ("r@1", "r@5", "r@10", "mrr@10")}}
            for name, rows in sorted(out.items())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=REPO / ".data" / "eval-retrieval")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    ap.add_argument("--candidates-k", type=int, default=None, help="candidates per list (default: the settings')")
    ap.add_argument("--fit-only", action="store_true",
                    help="report the fit half only and write nothing (for choosing settings without the test half)")
    args = ap.parse_args()

    a, _corpus, queries, pid_doc, _folder = index_shared(args.data_dir, args.shared, REPO / ".data" / "models")
    settings = a.settings
    k = args.candidates_k or settings.candidates_k
    weights = load_fusion_params()

    rows: list[tuple[str, str, str, str, dict[str, Candidate]]] = []
    for name in SETS:
        for part in ("fit", "test"):
            for q in split_queries([q for q in queries if q["set"] == name], part, 13):
                rows.append((name, part, q["question"], pid_doc[q["gold_pid"]],
                             a.retriever.candidates(q["question"], k, None, "hybrid")))
        print(f"  candidates for {name}", flush=True)
    chunks = a.index.load_chunks(list({cid for *_, c in rows for cid in c}))
    chunk_doc = {cid: c.doc_id for cid, c in chunks.items()}
    texts = {cid: rr.candidate_text(c.title, c.section, c.text, settings.embed_with_title) for cid, c in chunks.items()}

    prepared = []
    for name, part, question, gold, cands in rows:
        cands = {k: v for k, v in cands.items() if k in chunks}
        lang = detect_language(question)
        prepared.append((name, part, question, gold, cands, lang, keep_list_leaders(fuse(cands, weights[lang]), cands)))

    params: dict[str, Any] = {"features": rr.FEATURES, "leaders": LEADERS, "models": {},
                              "fitted_on": f"fit half of the shared retrieval data (seed 13), listwise, L2={L2}"}
    for lang in LANGS:
        xs, ys = [], []
        for _name, part, question, gold, cands, lg, base in prepared:
            if part != "fit" or lg != lang:
                continue
            y = np.array([chunk_doc.get(cid) == gold for cid, _ in base])
            if y.any():
                xs.append(np.array(rr.features(normalize_query(question), base, cands, texts,
                                               weights[lang].dense_floor, weights[lang].bm25_half)))
                ys.append(y)
        w = fit_listwise(xs, ys, L2)
        params["models"][lang] = {"dense_floor": weights[lang].dense_floor, "bm25_half": weights[lang].bm25_half,
                                  "weights": {f: round(float(v), 5) for f, v in zip(rr.FEATURES, w, strict=True)}}
        print(f"fitted {lang} on {len(xs)} questions", flush=True)

    results: dict[str, dict[str, list]] = {"fused": {"fit": [], "test": []}, "reranked": {"fit": [], "test": []}}
    times = []
    for name, part, question, gold, cands, _lang, base in prepared:
        if args.fit_only and part != "fit":
            continue
        t0 = time.perf_counter()
        ranked = rr.rerank(question, base, cands, texts, params)
        if ranked is not base:
            ranked = keep_list_leaders(ranked, cands, leaders=LEADERS)
            times.append((time.perf_counter() - t0) * 1000)
        results["fused"][part].append((name, gold, base))
        results["reranked"][part].append((name, gold, ranked))
    summary = {f"{kind}_{part}": doc_metrics(items, chunk_doc) for kind, parts in results.items()
               for part, items in parts.items() if items}
    found: dict[str, list[bool]] = {}
    for name, part, _q, gold, cands, _lang, _base in prepared:
        if part == "fit":
            found.setdefault(name, []).append(gold in {chunk_doc.get(cid) for cid in cands})
    summary["gold_among_candidates_fit"] = {n: round(sum(v) / len(v), 4) for n, v in sorted(found.items())}
    if args.fit_only:
        print(json.dumps(summary, indent=1))
        return 0
    summary["rerank_ms_median"] = round(statistics.median(times), 2) if times else None
    (REPO / "assistant" / "rerank_params.json").write_text(json.dumps(params, ensure_ascii=False, indent=1) + "\n",
                                                          encoding="utf-8")
    (REPO / "eval" / "reports" / "rerank_fit.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
