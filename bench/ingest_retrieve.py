"""Ingestion speed, retrieve latency and peak memory over the shared retrieval corpus.

Usage: .venv/bin/python bench/ingest_retrieve.py [--runs 3] [--queries 200] [--passages N]
Each run ingests the 1,193 shared passages (as documents, through the normal path) into a fresh data
directory, then times `retrieve` (query embedding included), with and without the Japanese re-ranker
(alternating per question), and English questions with and without the English-Japanese lexicon
(alternating likewise). Model loading is timed separately.
Prints medians and writes bench/results/ingest_retrieve.json. Targets: >= 50 passages/s;
retrieve median <= 40 ms, p95 <= 80 ms; peak memory <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.settings import Settings, apply_offline_env


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def write_corpus(src: Path, folder: Path, limit: int | None) -> int:
    folder.mkdir(parents=True)
    n = 0
    with src.open(encoding="utf-8") as fp:
        for line in fp:
            row = json.loads(line)
            (folder / f"{row['pid']}.txt").write_text(row["text"], encoding="utf-8")
            (folder / f"{row['pid']}.txt.meta.json").write_text(json.dumps({"title": row["title"]}), encoding="utf-8")
            n += 1
            if limit and n >= limit:
                break
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--passages", type=int, default=None)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets" / "retrieval")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest_retrieve.json")
    args = ap.parse_args()
    apply_offline_env()

    t0 = time.perf_counter()
    from assistant.core import make_assistant
    from assistant.embedding import load_embedder

    models = REPO / ".data" / "models"
    load_embedder(Settings(data_dir=REPO / ".data", models_dir=models))
    model_load_s = time.perf_counter() - t0

    queries = [json.loads(x) for x in (args.shared / "queries.jsonl").open(encoding="utf-8")]
    random.Random(7).shuffle(queries)
    english = [q for q in queries if q["lang"] == "en"][: args.queries // 2]
    queries = queries[: args.queries]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        n = write_corpus(args.shared / "corpus.jsonl", corpus, args.passages)
        for run in range(args.runs):
            a = make_assistant(Settings(data_dir=Path(tmp) / f"data{run}", models_dir=models))
            t = time.perf_counter()
            report = a.ingest([corpus])
            ingest_s = time.perf_counter() - t
            assert len(report.added) == n, report.failed[:3]
            for q in queries[:10]:  # warm-up
                a.retrieve(q["question"], top_k=10)
            # The baseline in the same run: each question also without the re-ranker, in alternating order.
            shipped = a.retriever.rerank
            lat, base = [], []
            for i, q in enumerate(queries):
                for on in ((True, False) if i % 2 == 0 else (False, True)):
                    a.retriever.rerank = shipped if on else {}
                    t = time.perf_counter()
                    a.retrieve(q["question"], top_k=10)
                    (lat if on else base).append((time.perf_counter() - t) * 1000)
            a.retriever.rerank = shipped
            # English questions with and without the English-Japanese lexicon, alternating likewise.
            lexicon = a.retriever.lexicon
            en_lat, en_base = [], []
            for i, q in enumerate(english):
                for on in ((True, False) if i % 2 == 0 else (False, True)):
                    a.retriever.lexicon = lexicon if on else None
                    t = time.perf_counter()
                    a.retrieve(q["question"], top_k=10)
                    (en_lat if on else en_base).append((time.perf_counter() - t) * 1000)
            a.retriever.lexicon = lexicon
            runs.append({"passages": n, "chunks": report.chunks, "ingest_s": round(ingest_s, 2),
                         "passages_per_s": round(n / ingest_s, 1), "retrieve_median_ms": round(statistics.median(lat), 2),
                         "retrieve_p95_ms": round(percentile(lat, 0.95), 2),
                         "retrieve_median_ms_without_rerank": round(statistics.median(base), 2),
                         "retrieve_p95_ms_without_rerank": round(percentile(base, 0.95), 2),
                         "english_retrieve_median_ms": round(statistics.median(en_lat), 2),
                         "english_retrieve_median_ms_without_lexicon": round(statistics.median(en_base), 2)})
            print(json.dumps(runs[-1]), flush=True)
            a.index.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "model_load_s": round(model_load_s, 2),
        "embedder": load_embedder(Settings(data_dir=REPO / ".data", models_dir=models)).version,
        "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs)
                   for k in ("passages_per_s", "retrieve_median_ms", "retrieve_p95_ms",
                             "retrieve_median_ms_without_rerank", "retrieve_p95_ms_without_rerank",
                             "english_retrieve_median_ms", "english_retrieve_median_ms_without_lexicon")},
        "peak_rss_mb": round(peak_mb, 1),
        "targets": {"passages_per_s": ">= 50", "retrieve_median_ms": "<= 40", "retrieve_p95_ms": "<= 80",
                    "peak_rss_mb": "<= 1536"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["median"]), f"peak RSS {peak_mb:.0f} MB, model load {model_load_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
