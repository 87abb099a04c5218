"""Retrieval evaluation over the datasets folder's `retrieval/` through the normal ingestion path.

Every passage becomes a document file with a title sidecar, is ingested by `Assistant.ingest`, and each
query set is searched keyword-only, dense-only and hybrid. Relevance is the gold passage's document;
recall counts distinct documents. Run: `python -m assistant.evaluation.retrieval_eval [--sample N] [--split test]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from assistant.evaluation import metrics as m
from assistant.evaluation.datasets import DATASETS_HELP, SHARED_SETS, load_shared, sample_queries
from assistant.text.normalize import normalize_query

MODES = ("keyword", "dense", "hybrid")
KS = (1, 5, 10)
XLING_PREFIX = "xsquadja-"
# Targets from the retrieval issue (hybrid, the default); "never worse" is checked separately.
TARGETS: list[tuple[str, str, str, float]] = [
    ("jsquad", "hybrid", "r@5", 0.98),
    ("xling_ja2ja", "hybrid", "r@5", 0.985),
    ("xling_en2ja", "hybrid", "r@1", 0.93),
    ("xling_en2ja", "hybrid", "r@10", 0.98),
    ("xling_en2ja_no_titles", "dense", "r@1", 0.88),
    ("xling_en2ja_no_titles", "dense", "r@10", 0.97),
]


def file_name(index: int) -> str:
    """A neutral file name: a pid like `xsquadja-Super_Bowl_50-0` would leak the English title as a fallback title."""
    return f"p{index:05d}.txt"


def write_corpus(corpus: Mapping[str, Mapping[str, Any]], folder: Path, titles: bool = True,
                 untitled: Sequence[str] = ()) -> dict[str, str]:
    """Writes one `.txt` per passage with a `.meta.json` title sidecar (none for pids in `untitled`).

    Returns {file name: pid}. Rewriting an unchanged file is skipped so re-ingestion stays incremental.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    drop = set(untitled)
    for i, pid in enumerate(sorted(corpus)):
        p = corpus[pid]
        name = file_name(i)
        names[name] = pid
        _write_if_changed(folder / name, p["text"] + "\n")
        meta = {"title": p["title"]} if titles and pid not in drop else {}
        _write_if_changed(folder / f"{name}.meta.json", json.dumps(meta, ensure_ascii=False))
    return names


def index_shared(data_dir: Path, shared: Path, models_dir: Path) -> tuple[Any, dict[str, Any], list[dict[str, Any]],
                                                                         dict[str, str], Path]:
    """An assistant over `data_dir` with the shared passages written to `data_dir/corpus` and ingested.

    Returns (assistant, corpus, queries, {pid: file name}, corpus folder); used by the fitting scripts.
    """
    from assistant.core import make_assistant
    from assistant.settings import Settings

    a = make_assistant(Settings(data_dir=data_dir, models_dir=models_dir))
    folder = data_dir / "corpus"
    corpus, queries = load_shared(shared)
    pid_doc = {pid: name for name, pid in write_corpus(corpus, folder).items()}
    report = a.ingest([folder])
    print(f"ingest: added {len(report.added)} skipped {len(report.skipped)} in {report.seconds:.1f}s", flush=True)
    return a, corpus, queries, pid_doc, folder


def load_ja2en(datasets: Path) -> tuple[dict[str, tuple[str, str]], list[dict[str, Any]]] | None:
    """The 48 English SQuAD paragraphs ({file name: (pid, text)}) and their 327 questions in human
    Japanese translation, for the mixed-language set; None when the datasets folder lacks them."""
    path = Path(datasets) / "xling_squad_ja" / "squad_test_question_jap_context_en.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    passages: dict[str, tuple[str, str]] = {}
    questions: list[dict[str, Any]] = []
    for k, article in enumerate(data):
        for n, paragraph in enumerate(article["paragraphs"]):
            file, pid = f"e{k:02d}{n:02d}.txt", f"en-{article['title']}-{n}"
            passages[file] = (pid, paragraph["context"])
            questions += [{"qid": qa["id"] + "-ja2en", "question": qa["question"], "gold_pid": pid,
                           "answers": list(dict.fromkeys(a["text"] for a in qa.get("answers", []))),
                           "set": "xling_ja2en_mixed"} for qa in paragraph["qas"]]
    return passages, questions


def write_mixed(folder: Path, doc_map: Mapping[str, str], passages: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Puts the English paragraphs of `load_ja2en` in the place of their Japanese translations, which
    leave the folder: the answer must come from the English paragraph, among Japanese documents on
    other topics. Returns {file name: pid} of the English files; ingest with `prune` afterwards."""
    for file, pid in doc_map.items():
        if pid.startswith(XLING_PREFIX) and (folder / file).exists():
            (folder / file).unlink()
            (folder / f"{file}.meta.json").unlink()
    mixed_map = {}
    for file, (pid, text) in passages.items():
        _write_if_changed(folder / file, text + "\n")
        _write_if_changed(folder / f"{file}.meta.json", "{}")
        mixed_map[file] = pid
    return mixed_map


def unwrite_mixed(folder: Path, passages: Mapping[str, tuple[str, str]], corpus: Mapping[str, Mapping[str, Any]]) -> None:
    """Undoes `write_mixed`: the English files leave, the Japanese translations come back."""
    for file in passages:
        (folder / file).unlink()
        (folder / f"{file}.meta.json").unlink()
    write_corpus(corpus, folder)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def split_queries(rows: Sequence[dict[str, Any]], split: str, seed: int = 13) -> list[dict[str, Any]]:
    """The fixed-seed half `fit` or `test` of a query list (or all of it), in the data's order."""
    if split == "all":
        return list(rows)
    order = list(range(len(rows)))
    random.Random(f"split:{seed}").shuffle(order)
    fit = set(order[: len(order) // 2])
    return [q for i, q in enumerate(rows) if (i in fit) == (split == "fit")]


def doc_key(source: str, doc_map: Mapping[str, str]) -> str:
    name = PurePath(source).name
    return doc_map.get(name, name)


def answer_hits(passages: Sequence[Any], keys: Sequence[str], answers: Sequence[str]) -> list[bool]:
    """Per distinct document, in rank order: whether one of its returned passages holds one of the
    answer strings (compared in search form), as open-domain QA's "top-k accuracy" counts a hit."""
    wanted = [normalize_query(a) for a in answers if a.strip()]
    hits: dict[str, bool] = {}
    for key, p in zip(keys, passages, strict=True):
        text = normalize_query(p.text)
        found = any(a in text for a in wanted)
        hits[key] = hits.get(key, False) or found
    return list(hits.values())


def evaluate(assistant: Any, queries: Sequence[dict[str, Any]], mode: str, doc_map: Mapping[str, str],
             top_k: int = 10) -> dict[str, Any]:
    """Mean R@1/5/10, MRR@10 and nDCG@10 (by gold document) of one query list in one mode, with latency;
    and where the queries carry answers, A@1/A@5: a passage of the first 1 / 5 documents holds one."""
    per_query: list[dict[str, float]] = []
    answered: list[list[bool]] = []
    latencies: list[float] = []
    misses: list[str] = []
    for q in queries:
        t0 = time.perf_counter()
        passages = assistant.retrieve(q["question"], top_k=top_k, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000)
        keys = [doc_key(p.source or p.doc_id, doc_map) for p in passages]
        scores = m.ranking_metrics(m.doc_hits(keys, q["gold_pid"]), 1, KS)
        per_query.append(scores)
        if q.get("answers"):
            answered.append(answer_hits(passages, keys, q["answers"]))
        if scores["r@10"] < 1.0:
            misses.append(q["qid"])
    out: dict[str, Any] = {"queries": len(queries)}
    for key in [*(f"r@{k}" for k in KS), "mrr@10", "ndcg@10"]:
        out[key] = m.mean(s[key] for s in per_query)
    for k in (1, 5):
        out[f"a@{k}"] = m.mean(float(any(h[:k])) for h in answered) if answered else None
    out["latency_p50_ms"] = statistics.median(latencies) if latencies else None
    out["latency_p95_ms"] = m.percentile(latencies, 95)
    out["misses@10"] = misses
    return out


def never_worse(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per set and figure (R@1, R@5, MRR@10): hybrid against the better of keyword and dense."""
    out = []
    for name, modes in results.items():
        if not all(x in modes for x in MODES):
            continue
        for key in ("r@1", "r@5", "mrr@10"):
            best = max(modes["keyword"][key] or 0.0, modes["dense"][key] or 0.0)
            hyb = modes["hybrid"][key] or 0.0
            out.append({"set": name, "metric": key, "hybrid": hyb, "best_single": best, "ok": hyb >= best - 1e-9})
    return out


def target_status(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for name, mode, key, goal in TARGETS:
        value = results.get(name, {}).get(mode, {}).get(key)
        out.append({"set": name, "mode": mode, "metric": key, "goal": goal, "value": value,
                    "met": None if value is None else value >= goal})
    return out


def render(report: Mapping[str, Any]) -> str:
    """The Markdown table of a report."""
    meta = report["meta"]
    intro = (f"Split `{meta['split']}` (seed {meta['seed']}), sample per set: {meta['sample'] or 'all'}, "
             f"top_k {meta['top_k']}; {meta['documents_ingested']} of {meta['passages']} passages ingested in "
             f"{meta['ingest_s']:.1f} s ({meta['passages_per_s']:.1f} passages/s; model loading "
             f"{meta['load_s']:.1f} s, separate).")
    lines = ["# Retrieval evaluation (shared data)", "", intro, "",
             "| set | mode | queries | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | A@1 | A@5 | p50 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, modes in report["results"].items():
        for mode, r in modes.items():
            figures = " | ".join("–" if r.get(k) is None else f"{r[k]:.3f}"
                                 for k in ("r@1", "r@5", "r@10", "mrr@10", "ndcg@10", "a@1", "a@5"))
            lat = "–" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.1f}"
            lines.append(f"| {name} | {mode} | {r['queries']} | {figures} | {lat} |")
    lines += ["", "## Hybrid never worse than the better single list", "", "| set | metric | hybrid | best single | ok |",
              "|---|---|---|---|---|"]
    for c in report["never_worse"]:
        lines.append(f"| {c['set']} | {c['metric']} | {c['hybrid']:.3f} | {c['best_single']:.3f} | "
                     f"{'yes' if c['ok'] else 'NO'} |")
    lines += ["", "## Targets", "", "| set | mode | metric | goal | measured | met |", "|---|---|---|---|---|---|"]
    for t in report["targets"]:
        v = "–" if t["value"] is None else f"{t['value']:.3f}"
        lines.append(f"| {t['set']} | {t['mode']} | {t['metric']} | >= {t['goal']} | {v} | "
                     f"{'–' if t['met'] is None else ('yes' if t['met'] else 'NO')} |")
    lines += ["", ("`xling_en2ja_no_titles`: the 48 cross-lingual passages re-ingested without their English "
                   "titles. Files are named `p00000.txt` (mapped back to pids), since a pid would leak the "
                   "title as the fallback title."), "",
              ("`xling_ja2en_mixed`: the 48 English SQuAD paragraphs put in the place of their Japanese "
               "translations (untitled) and asked about by the 327 human Japanese translations of their "
               "questions: Japanese questions over English documents among 1,145 Japanese ones on other "
               "topics. `jsquad_mixed_corpus`: JSQuAD's questions asked over that same corpus, hybrid only "
               "(compare with `jsquad`): English passages, weighed as a Japanese question's English ones, must "
               "not take a Japanese answer's place."), "",
              ("Data: JGLUE JSQuAD (Yahoo Japan, CC BY-SA 4.0) and human Japanese translations of SQuAD dev "
               "(CC BY-SA 4.0), via the datasets folder's `retrieval/`.")]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from assistant.core import make_assistant
    from assistant.settings import Settings

    corpus, queries = load_shared(args.datasets)
    sets = sample_queries(queries, args.sample, args.seed)
    sets = {name: split_queries(rows, args.split, args.seed) for name, rows in sets.items()}
    tmp = None
    if args.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="retrieval-eval-")
        root = Path(tmp.name)
    else:
        root = Path(args.data_dir)
    folder = root / "corpus"
    doc_map = write_corpus(corpus, folder)
    (root / "docmap.json").write_text(json.dumps(doc_map, ensure_ascii=False), encoding="utf-8")
    t0 = time.perf_counter()
    # a fresh data directory, but the model already built for the usual one
    assistant = make_assistant(Settings(data_dir=root / "data", models_dir=Settings().model_dir))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ingest = assistant.ingest([folder])
    ingest_s = time.perf_counter() - t0
    print(f"ingested {len(ingest.added) + len(ingest.changed)} new/changed documents, "
          f"{len(ingest.failed)} failed, in {ingest_s:.1f} s")
    results: dict[str, dict[str, Any]] = {}
    for name in SHARED_SETS:
        results[name] = {}
        for mode in args.modes:
            results[name][mode] = evaluate(assistant, sets[name], mode, doc_map, args.top_k)
            print(f"{name:>22} {mode:>8}: " + " ".join(f"{k} {results[name][mode][k]:.3f}"
                                                    for k in ("r@1", "r@5", "r@10", "mrr@10")))
    if not args.skip_no_titles:
        xling = [pid for pid in corpus if pid.startswith(XLING_PREFIX)]
        write_corpus(corpus, folder, untitled=xling)
        assistant.ingest([folder])  # a changed title re-embeds its passages
        name = "xling_en2ja_no_titles"
        results[name] = {}
        for mode in args.modes:
            results[name][mode] = evaluate(assistant, sets["xling_en2ja"], mode, doc_map, args.top_k)
            print(f"{name:>22} {mode:>8}: " + " ".join(f"{k} {results[name][mode][k]:.3f}"
                                                    for k in ("r@1", "r@5", "r@10", "mrr@10")))
        write_corpus(corpus, folder)  # leave a kept data dir in its titled state
        assistant.ingest([folder])  # a changed title re-embeds its passages
    if not args.skip_mixed:
        name = "xling_ja2en_mixed"
        english = load_ja2en(args.datasets)
        if english:
            passages, questions = english
            mixed_map = write_mixed(folder, doc_map, passages)
            assistant.ingest([folder], prune=True)
            rows = split_queries(sample_queries(questions, args.sample, args.seed, sets=(name,))[name], args.split,
                                 args.seed)
            results[name] = {}
            for mode in args.modes:
                results[name][mode] = evaluate(assistant, rows, mode, {**doc_map, **mixed_map}, args.top_k)
                print(f"{name:>22} {mode:>8}: " + " ".join(f"{k} {results[name][mode][k]:.3f}"
                                                        for k in ("r@1", "r@5", "r@10", "mrr@10")))
            # JSQuAD's questions over the same mixed corpus: English passages weighed as English
            # must not take a Japanese answer's place (compare with jsquad, hybrid).
            if "hybrid" in args.modes:
                results["jsquad_mixed_corpus"] = {"hybrid": evaluate(assistant, sets["jsquad"], "hybrid", doc_map,
                                                                     args.top_k)}
                print(f"{'jsquad_mixed_corpus':>22} {'hybrid':>8}: " + " ".join(
                    f"{k} {results['jsquad_mixed_corpus']['hybrid'][k]:.3f}" for k in ("r@1", "r@5", "r@10", "mrr@10")))
            unwrite_mixed(folder, passages, corpus)  # leave a kept data dir as it was
            assistant.ingest([folder], prune=True)
    report: dict[str, Any] = {
        "meta": {"split": args.split, "seed": args.seed, "sample": args.sample, "top_k": args.top_k,
                 "modes": list(args.modes), "passages": len(corpus), "ingest_s": ingest_s, "load_s": load_s,
                 "documents_ingested": len(ingest.added) + len(ingest.changed),
                 "passages_per_s": (len(ingest.added) + len(ingest.changed)) / ingest_s if ingest_s else 0.0,
                 "ingest_failed": [f.source for f in ingest.failed]},
        "results": results,
    }
    report["never_worse"] = never_worse(results)
    report["targets"] = target_status(results)
    if tmp is not None:
        tmp.cleanup()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the evaluation and writes `<out>.json` and `<out>.md`."""
    p = argparse.ArgumentParser(prog="python -m assistant.evaluation.retrieval_eval")
    p.add_argument("--datasets", type=Path, required=True, help=DATASETS_HELP)
    p.add_argument("--sample", type=int, help="queries per set, fixed seed (default: all)")
    p.add_argument("--split", choices=("fit", "test", "all"), default="all", help="fixed-seed 50/50 halves")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--data-dir", type=Path, help="keep the corpus and index here (default: a temporary folder)")
    p.add_argument("--skip-no-titles", action="store_true", help="skip the run without English titles")
    p.add_argument("--skip-mixed", action="store_true",
                   help="skip the run with the 48 English paragraphs added, asked in Japanese")
    p.add_argument("--out", type=Path, help="output base (default eval/reports/retrieval[_<split>])")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        report = run(args)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    out = args.out or Path("eval/reports") / ("retrieval" if args.split == "all" else f"retrieval_{args.split}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    out.with_name(out.name + ".md").write_text(render(report), encoding="utf-8")
    print(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
