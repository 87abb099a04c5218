"""Keyword search benchmark: retrieval quality on the shared retrieval set, build time, latency, 100k scale.

Run: .venv/bin/python bench/keyword_bench.py [--scale 100000] [--no-ablation]
Prints a table and writes bench/results/keyword.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.keyword import Analysis, Bm25Params, KeywordIndex, tokenize
from assistant.keyword.index import DEFAULT_PARAMS
from assistant.keyword.tokenize import DEFAULT_ANALYSIS

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "retrieval"
RESULTS = Path(__file__).resolve().parent / "results" / "keyword.json"
SETS = ("jsquad", "xling_ja2ja", "xling_en2ja")


def search_form(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    corpus = [json.loads(line) for line in (DATA / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (DATA / "queries.jsonl").open(encoding="utf-8")]
    return corpus, queries


def passage_text(p: dict[str, Any], with_title: bool) -> str:
    return search_form(f"{p['title']} {p['text']}" if with_title else p["text"])


def build(conn: sqlite3.Connection, corpus: list[dict[str, Any]], with_title: bool,
          analysis: Analysis = DEFAULT_ANALYSIS, params: Bm25Params = DEFAULT_PARAMS) -> tuple[KeywordIndex, float]:
    t0 = time.perf_counter()
    index = KeywordIndex(conn, analysis=analysis, params=params)
    with conn:
        index.add((p["pid"], p["pid"], passage_text(p, with_title)) for p in corpus)
    return index, time.perf_counter() - t0


def evaluate(index: KeywordIndex, queries: list[dict[str, Any]],
             sets: tuple[str, ...] = SETS) -> tuple[dict[str, dict[str, float]], list[float]]:
    metrics: dict[str, dict[str, float]] = {}
    latencies_ms: list[float] = []
    for name in sets:
        qs = [q for q in queries if q["set"] == name]
        r1 = r5 = r10 = mrr = 0.0
        for q in qs:
            t0 = time.perf_counter()
            hits = [cid for cid, _ in index.search(search_form(q["question"]), 10)]
            latencies_ms.append((time.perf_counter() - t0) * 1000)
            if q["gold_pid"] in hits:
                rank = hits.index(q["gold_pid"]) + 1
                r1 += rank == 1
                r5 += rank <= 5
                r10 += 1
                mrr += 1 / rank
        n = len(qs)
        metrics[name] = {"R@1": r1 / n, "R@5": r5 / n, "R@10": r10 / n, "MRR@10": mrr / n, "n": n}
    return metrics, latencies_ms


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {"median_ms": statistics.median(ordered), "p95_ms": ordered[int(0.95 * (len(ordered) - 1))]}


def print_metrics(label: str, metrics: dict[str, dict[str, float]]) -> None:
    cells = "  ".join(f"{s}: R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} R@10 {m['R@10']:.3f} MRR {m['MRR@10']:.3f}"
                      for s, m in metrics.items())
    print(f"{label:<34} {cells}", flush=True)


def main_runs(corpus: list[dict[str, Any]], queries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for with_title in (False, True):
        conn = sqlite3.connect(":memory:")
        index, build_s = build(conn, corpus, with_title)
        metrics, latencies = evaluate(index, queries)
        label = "default, title+text" if with_title else "default, text only"
        print_metrics(label, metrics)
        lat = latency_summary(latencies)
        print(f"{'':<34} build {build_s:.2f} s for {len(corpus)} passages; query median {lat['median_ms']:.2f} ms,"
              f" p95 {lat['p95_ms']:.2f} ms", flush=True)
        out["title+text" if with_title else "text"] = {"metrics": metrics, "build_s": build_s, "latency": lat}
        conn.close()
    return out


def ablation(corpus: list[dict[str, Any]], queries: list[dict[str, Any]]) -> dict[str, Any]:
    variants: dict[str, tuple[Analysis, Bm25Params]] = {
        "A, no bigrams": (Analysis("A", bigrams=False), Bm25Params()),
        "C, no bigrams": (Analysis("C", bigrams=False), Bm25Params()),
        "C+A, no bigrams": (Analysis("C+A", bigrams=False), Bm25Params()),
        "A + bigrams": (Analysis("A"), Bm25Params()),
        "C+A + bigrams k1=1.2 b=0.75": (Analysis(), Bm25Params(k1=1.2, b=0.75)),
        "C+A + bigrams, bigram w=1": (Analysis(), Bm25Params(bigram_weight=1.0)),
        "C+A + bigrams, corpus avg len": (Analysis(), Bm25Params(avg_words=70, avg_bigrams=140)),
    }
    out: dict[str, Any] = {}
    for label, (analysis, params) in variants.items():
        conn = sqlite3.connect(":memory:")
        index, _ = build(conn, corpus, True, analysis, params)
        metrics, _ = evaluate(index, queries, ("jsquad", "xling_ja2ja"))
        print_metrics(label + ", title+text", metrics)
        out[label] = metrics
        conn.close()
    return out


def synthetic_chunks(corpus: list[dict[str, Any]], n: int, seed: int = 0) -> Iterable[tuple[str, str, str]]:
    """Chunks of about 400 characters recombined from the corpus's sentences, deterministically."""
    sentences = [s + "。" for p in corpus for s in search_form(p["text"]).split("。") if s.strip()]
    rng = random.Random(seed)
    for i in range(n):
        parts: list[str] = []
        while sum(len(s) for s in parts) < 400:
            parts.append(rng.choice(sentences))
        yield f"syn-{i}", f"doc-{i // 20}", "".join(parts)


def scale_test(corpus: list[dict[str, Any]], queries: list[dict[str, Any]], n: int) -> dict[str, Any]:
    batch = 1_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.sqlite"
        conn = sqlite3.connect(path)
        index = KeywordIndex(conn)
        rows = list(synthetic_chunks(corpus, n))
        t0 = time.perf_counter()
        tokenize_s = 0.0
        for start in range(0, n, batch):
            part = rows[start:start + batch]
            t1 = time.perf_counter()
            for _, _, text in part[:50]:
                tokenize(text)
            tokenize_s += (time.perf_counter() - t1) * len(part) / 50
            with conn:
                index.add(part)
        add_s = time.perf_counter() - t0
        rng = random.Random(1)
        sample = rng.sample([q for q in queries if q["set"] == "jsquad"], 200)
        latencies = []
        filtered = []
        for q in sample:
            t1 = time.perf_counter()
            index.search(search_form(q["question"]), 10)
            latencies.append((time.perf_counter() - t1) * 1000)
            t1 = time.perf_counter()
            index.search(search_form(q["question"]), 10, doc_ids=[f"doc-{rng.randrange(n // 20)}" for _ in range(3)])
            filtered.append((time.perf_counter() - t1) * 1000)
        t1 = time.perf_counter()
        with conn:
            index.delete(f"syn-{i}" for i in range(1_000))
        delete_s = time.perf_counter() - t1
        conn.execute("VACUUM")
        conn.close()
        size_mb = path.stat().st_size / 1e6
    lat, lat_filtered = latency_summary(latencies), latency_summary(filtered)
    result = {"chunks": n, "add_s": add_s, "tokenize_s_estimate": tokenize_s, "delete_1000_s": delete_s,
              "db_mb": size_mb, "query": lat, "query_doc_filter": lat_filtered}
    print(f"scale {n} chunks: add {add_s:.1f} s (of which tokenising about {tokenize_s:.1f} s), "
          f"db {size_mb:.0f} MB, delete 1,000 chunks {delete_s:.2f} s; query median "
          f"{lat['median_ms']:.1f} ms p95 {lat['p95_ms']:.1f} ms; with a 3-document filter "
          f"median {lat_filtered['median_ms']:.1f} ms p95 {lat_filtered['p95_ms']:.1f} ms",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000, help="synthetic chunks for the scale test (0: skip)")
    parser.add_argument("--no-ablation", action="store_true")
    args = parser.parse_args()
    corpus, queries = load()
    results: dict[str, Any] = {"main": main_runs(corpus, queries)}
    if not args.no_ablation:
        results["ablation"] = ablation(corpus, queries)
    if args.scale:
        results["scale"] = scale_test(corpus, queries, args.scale)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
