"""Question sets: the JSONL schema, its validation, and the set built from the shared open datasets.

The shared data (passed as `--datasets`) is read only by evaluation commands and tests, never by the
product; its path is always an argument.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.evaluation.metrics import norm

QUESTION_TYPES = ("fact", "paraphrase", "multi_passage", "followup", "unanswerable", "table", "profile")
SHARED_SETS = ("jsquad", "xling_en2ja", "xling_ja2ja")


@dataclass
class Question:
    """One evaluation question; `gold_doc` (shared set) makes relevance a document id, not evidence text."""

    id: str
    lang: str
    question: str
    answerable: bool
    evidence: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    type: str = "fact"
    followup_of: str | None = None
    gold_doc: str | None = None
    set: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", [])} | {
            "answerable": self.answerable, "evidence": list(self.evidence)}


def question_from_json(data: dict[str, Any]) -> Question:
    """A Question from one JSONL object; unknown keys are ignored, missing required ones raise ValueError."""
    missing = [k for k in ("id", "lang", "question", "answerable") if k not in data]
    if missing:
        raise ValueError(f"question {data.get('id', '?')}: missing {', '.join(missing)}")
    return Question(
        id=str(data["id"]), lang=str(data["lang"]), question=str(data["question"]),
        answerable=bool(data["answerable"]), evidence=[str(e) for e in data.get("evidence") or []],
        answers=[str(a) for a in data.get("answers") or []], type=str(data.get("type") or "fact"),
        followup_of=data.get("followup_of"), gold_doc=data.get("gold_doc"), set=str(data.get("set") or ""),
    )


def load_questions(path: Path) -> list[Question]:
    """All questions of a JSONL file, in file order (a follow-up comes after the question it follows)."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(question_from_json(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as exc:
                raise ValueError(f"{path}:{i}: {exc}") from exc
    return out


def validate_questions(questions: Sequence[Question], source_text: str | None = None) -> list[str]:
    """Problems with a question set: duplicate ids, bad fields, dangling follow-ups, evidence not in the source."""
    problems: list[str] = []
    seen: set[str] = set()
    hay = norm(source_text) if source_text is not None else None
    for q in questions:
        if q.id in seen:
            problems.append(f"{q.id}: duplicate id")
        if q.lang not in ("ja", "en"):
            problems.append(f"{q.id}: lang must be ja or en")
        if q.type not in QUESTION_TYPES:
            problems.append(f"{q.id}: unknown type {q.type}")
        if q.answerable and not q.evidence and not q.gold_doc:
            problems.append(f"{q.id}: answerable question without evidence")
        if not q.answerable and (q.evidence or q.answers):
            problems.append(f"{q.id}: unanswerable question with evidence or answers")
        if (q.type == "followup") != bool(q.followup_of) and q.type != "unanswerable":
            problems.append(f"{q.id}: follow-ups (and only they) need followup_of")
        if q.followup_of and q.followup_of not in seen:
            problems.append(f"{q.id}: followup_of {q.followup_of} is not an earlier question")
        if hay is not None:
            problems.extend(f"{q.id}: evidence not in source: {e}" for e in q.evidence if norm(e) not in hay)
        seen.add(q.id)
    return problems


def write_questions(questions: Sequence[Question], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as fp:
        fp.writelines(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in questions)


# Shared datasets ---------------------------------------------------------------------------------

def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def load_shared(datasets_dir: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The retrieval corpus (pid -> passage) and the queries of `<datasets_dir>/retrieval/`."""
    root = Path(datasets_dir) / "retrieval"
    if not root.is_dir():
        raise FileNotFoundError(f"no shared retrieval data at {root}")
    corpus = {p["pid"]: p for p in load_jsonl(root / "corpus.jsonl")}
    return corpus, load_jsonl(root / "queries.jsonl")


def sample_queries(queries: Sequence[dict[str, Any]], per_set: int | None, seed: int = 13,
                   sets: Sequence[str] = SHARED_SETS) -> dict[str, list[dict[str, Any]]]:
    """Per query set, a fixed-seed sample of `per_set` queries (all when None), in the data's order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sets:
        rows = [q for q in queries if q["set"] == name]
        if per_set is not None and per_set < len(rows):
            keep = set(random.Random(f"{seed}:{name}").sample(range(len(rows)), per_set))
            rows = [q for i, q in enumerate(rows) if i in keep]
        out[name] = rows
    return out


def build_shared_set(datasets_dir: Path, per_set: int = 50, seed: int = 13) -> list[Question]:
    """Questions from JSQuAD and the cross-lingual SQuAD sets: gold passage text as evidence, gold pid as document."""
    corpus, queries = load_shared(datasets_dir)
    out: list[Question] = []
    for name, rows in sample_queries(queries, per_set, seed).items():
        for q in rows:
            passage = corpus[q["gold_pid"]]
            out.append(Question(
                id=f"{name}:{q['qid']}", lang=q["lang"], question=q["question"], answerable=True,
                evidence=[passage["text"]], answers=list(q.get("answers") or []), type="fact",
                gold_doc=q["gold_pid"], set=name,
            ))
    return out


DATASETS_HELP = "the open evaluation datasets folder (JGLUE, cross-lingual SQuAD, retrieval/)"


def main(argv: Sequence[str] | None = None) -> int:
    """`build-shared`: writes the sampled shared question set as JSONL."""
    parser = argparse.ArgumentParser(prog="assistant eval build-shared",
                                     description="Build a question set from the open evaluation datasets.")
    parser.add_argument("--datasets", type=Path, required=True, help=DATASETS_HELP)
    parser.add_argument("--per-set", type=int, default=50, help="questions per query set (fixed seed)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=Path("eval/questions/shared.jsonl"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        questions = build_shared_set(args.datasets, args.per_set, args.seed)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    write_questions(questions, args.out)
    print(f"wrote {len(questions)} questions to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
