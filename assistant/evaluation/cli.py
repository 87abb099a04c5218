"""`assistant eval`: run a question set and report; subcommands build-shared, grounding-check, retrieval."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.evaluation import harness, report
from assistant.evaluation.datasets import load_questions, validate_questions

USAGE = """assistant eval [--set FILE] [--url URL] [--out BASE] [--compare OLD.json] [--fast] [--k N]
assistant eval build-shared --datasets DIR [--per-set N] [--out FILE]
assistant eval grounding-check --datasets DIR [--out BASE]
assistant eval retrieval --datasets DIR [--sample N] [--split fit|test|all]"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assistant eval", usage=USAGE,
                                description="Measure retrieval, citations, grounding, refusals and language.")
    p.add_argument("--set", type=Path, default=Path("eval/questions/briefing.jsonl"), help="question set (JSONL)")
    p.add_argument("--url", help="a running server (uses /api/ask and /api/retrieve) instead of this process")
    p.add_argument("--token", help="API token for --url")
    p.add_argument("--out", type=Path, help="output base name (default eval/reports/<set>[-fast])")
    p.add_argument("--compare", type=Path, help="an earlier result JSON: print what got better and worse")
    p.add_argument("--fast", action="store_true",
                   help="CI gate: retrieval and the extractive answerer; exits 1 below eval/floors.json")
    p.add_argument("--k", type=int, default=10, help="retrieval cutoff: R@1, R@5 and R@k are reported")
    p.add_argument("--top-k", type=int, help="passages given to the answerer (default: the settings')")
    p.add_argument("--floors", type=Path,
                   help="regression floors to enforce (with --fast: eval/floors.json unless given)")
    p.add_argument("--data-dir", type=Path, help="data directory of the in-process assistant")
    p.add_argument("--ingest", type=Path, action="append", default=[],
                   help="ingest this path before running (repeatable); corpus/ is ingested if the index is empty")
    p.add_argument("--doc-map", type=Path, help="JSON {file name: gold document id} for sets with gold_doc")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--no-checker", action="store_true", help="skip the grounding checker")
    p.add_argument("--no-charts", action="store_true")
    return p


def make_backend(args: argparse.Namespace) -> tuple[harness.Backend, Any]:
    """The backend to ask, and an embedder for the grounding checker (None when unavailable)."""
    if args.url:
        backend: harness.Backend = harness.HttpBackend(args.url, args.token)
        embedder = None
        if not args.no_checker:
            try:
                from assistant.embedding import load_embedder
                from assistant.settings import Settings

                embedder = load_embedder(Settings(**({"data_dir": args.data_dir} if args.data_dir else {})))
            except Exception as exc:  # noqa: BLE001 - without a model the checker still runs, lexically
                print(f"note: no local embedder for the grounding checker ({exc}); lexical support only")
        return backend, embedder
    from assistant.core import make_assistant
    from assistant.settings import Settings

    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
        overrides["models_dir"] = Settings().model_dir  # the model built for the usual data directory
    if args.fast:
        overrides["llm"] = "extractive"
    assistant = make_assistant(Settings(**overrides))
    paths = list(args.ingest)
    if not paths and not assistant.list_documents():
        paths = [Path("corpus")]
        print("index is empty: ingesting corpus/ first")
    if paths:
        rep = assistant.ingest(paths)
        print(f"ingested: {len(rep.added)} added, {len(rep.changed)} changed, {len(rep.skipped)} unchanged")
    return harness.InProcessBackend(assistant, f"in-process ({assistant.settings.llm})"), assistant.embedder


def run(args: argparse.Namespace) -> int:
    if not args.set.is_file():
        print(f"error: no question set at {args.set}")
        return 2
    questions = load_questions(args.set)[: args.limit] if args.limit else load_questions(args.set)
    problems = validate_questions(questions)
    if problems:
        print("error: the question set is malformed:\n  " + "\n  ".join(problems[:20]))
        return 2
    ks = tuple(sorted({1, 5, args.k}))
    backend, embedder = make_backend(args)
    checker = None if args.no_checker else harness.Checker(embedder)
    doc_map = json.loads(args.doc_map.read_text(encoding="utf-8")) if args.doc_map else None

    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)
        elif done % 10 == 0 or done == total:
            print(f"{done}/{total}", file=sys.stderr, flush=True)

    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    records = harness.run_questions(questions, backend, ks, args.top_k, checker, doc_map, progress=progress)
    if tty:
        print(file=sys.stderr)
    answerers = sorted({str(r.get("answerer", "")) for r in records} - {""})
    result = build_result(records, ks, {
        "set": str(args.set), "backend": backend.name, "k": args.k, "top_k": args.top_k, "fast": args.fast,
        "started": started, "questions": len(records), "answerer": ", ".join(answerers) or backend.name,
        "checker": "none" if checker is None else ("lexical+embedding" if embedder is not None else "lexical"),
    })
    floors_path = args.floors or (Path("eval/floors.json") if args.fast else None)
    floors = json.loads(floors_path.read_text(encoding="utf-8")) if floors_path and floors_path.is_file() else {}
    result["floors_broken"] = report.check_floors(result["metrics"], floors)
    base = args.out or Path("eval/reports") / (args.set.stem + ("-fast" if args.fast else ""))
    written = report.write_outputs(result, base, charts=not args.no_charts)
    print_summary(result)
    print("wrote " + ", ".join(str(p) for p in written))
    if args.compare:
        old = json.loads(args.compare.read_text(encoding="utf-8"))
        print("\n".join(report.compare(old, result)))
    if result["floors_broken"]:
        print("regression floors broken:\n  " + "\n  ".join(result["floors_broken"]))
        return 1
    return 0


def build_result(records: list[dict[str, Any]], ks: Sequence[int], meta: dict[str, Any]) -> dict[str, Any]:
    """The full result: metadata, grouped figures, targets, refusal curves, every question and every failure."""
    metrics = harness.grouped(records, ks)
    curves = harness.refusal_curves(records)
    return {
        "meta": meta,
        "metrics": metrics,
        "targets": report.target_status(metrics),
        "refusal_curves": curves,
        "refusal_best": report.best_threshold(curves["score"]) if curves.get("score") else None,
        "questions": records,
        "failures": [{k: r.get(k) for k in ("id", "lang", "type", "question", "answer", "failures")}
                     for r in records if r.get("failures")],
    }


def print_summary(result: dict[str, Any]) -> None:
    allm = result["metrics"]["all"]
    keys = ["retrieval_r@1", "retrieval_r@5", "retrieval_mrr@10", "citation_validity", "evidence_recall",
            "citation_precision", "grounded_share", "refusal_accuracy", "false_refusal_rate", "pointer_recall", "evidence_reach",
            "language_match",
            "answer_containment", "p50_ms", "p95_ms"]
    for k in keys:
        if k in allm:
            print(f"{k:>20}: {report._fmt(allm[k])}")
    for t in result["targets"]:
        flag = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        print(f"target {t['group']}.{t['metric']} {t['goal']}: {report._fmt(t['value'])} ({flag})")


def run_cli(argv: list[str]) -> int:
    """Entry point of `assistant eval ...`; returns the exit code."""
    if argv[:1] == ["build-shared"]:
        from assistant.evaluation.datasets import main as build_main

        return build_main(argv[1:])
    if argv[:1] == ["grounding-check"]:
        from assistant.evaluation.grounding_validation import main as grounding_main

        return grounding_main(argv[1:])
    if argv[:1] == ["retrieval"]:
        from assistant.evaluation.retrieval_eval import main as retrieval_main

        return retrieval_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(run_cli(sys.argv[1:]))
