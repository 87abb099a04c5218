"""Japanese questions answered from English documents: how often the extractive answerer answers, and
whether its citations and quotes hold the answer.

Usage: .venv/bin/python eval/mixed_answers.py [--split fit|test|all] [--japanese 300]
Data: the 48 English SQuAD paragraphs (`xling_squad_ja`) among `--japanese` JSQuAD passages (a
fixed-seed sample), asked about by the human Japanese translations of their questions; every question
is answerable. Writes eval/reports/mixed_answers.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.evaluation.datasets import load_shared
from assistant.evaluation.retrieval_eval import load_ja2en, split_queries


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("fit", "test", "all"), default="test")
    ap.add_argument("--japanese", type=int, default=300, help="JSQuAD passages beside the English ones")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "reports" / "mixed_answers.json")
    args = ap.parse_args()

    from assistant.core import make_assistant
    from assistant.settings import Settings

    corpus, _ = load_shared(args.shared)
    mixed = load_ja2en(args.shared)
    if mixed is None:
        print(f"no xling_squad_ja data under {args.shared}")
        return 2
    paragraphs, questions = mixed
    with tempfile.TemporaryDirectory(prefix="mixed-answers-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for file, (_pid, text) in paragraphs.items():
            (docs / file).write_text(text + "\n", encoding="utf-8")
        japanese = sorted(pid for pid in corpus if pid.startswith("jsquad"))
        for i, pid in enumerate(random.Random(1).sample(japanese, min(args.japanese, len(japanese)))):
            (docs / f"j{i:04d}.txt").write_text(corpus[pid]["text"] + "\n", encoding="utf-8")
        a = make_assistant(Settings(data_dir=Path(tmp) / "data", models_dir=Settings().model_dir))
        a.ingest([docs])
        gold_doc = {pid: file for file, (pid, _text) in paragraphs.items()}
        rows = split_queries(questions, args.split, 13)
        n = refused = cited = quoted = 0
        for q in rows:
            answer = a.ask(q["question"])
            n += 1
            if answer.refused:
                refused += 1
                continue
            cited += any(c.doc_id == gold_doc[q["gold_pid"]] for c in answer.citations)
            quoted += any(x in c.quote for c in answer.citations for x in q["answers"])
    answered = n - refused
    report = {"split": args.split, "questions": n, "japanese_passages": args.japanese, "refused": refused,
              "refusal_rate": round(refused / n, 3) if n else 0.0,
              "answered_citing_gold": round(cited / answered, 3) if answered else 0.0,
              "answered_quoting_answer": round(quoted / answered, 3) if answered else 0.0}
    print(json.dumps(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
