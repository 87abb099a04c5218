"""How often the extractive answerer quotes the sentence that holds the answer, for English questions
over Japanese passages and Japanese questions over English ones, with and without the
English-Japanese lexicon.

Usage: .venv/bin/python eval/quote_selection.py [--split fit|test|all]
Data: the shared `xling_en2ja` questions (human translations of SQuAD dev), each given its gold
Japanese passage alone, so that retrieval plays no part. A question counts when an answer string (its
own or its Japanese twin's in `xling_ja2ja`) occurs in the passage. Reports the share whose best
sentence holds an answer ("top1") and whose chosen quotes do ("quoted"). The other way round
(`ja2en`): the Japanese translations of the same SQuAD questions over their English paragraphs, with
SQuAD's English answers. And `jsquad`: JSQuAD's Japanese questions over their Japanese paragraph.
`with_judge`: the product's default scorer (lexicon and the fitted answer judge). Writes
eval/reports/quote_selection.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.answering.extractive import SentenceScorer, select
from assistant.evaluation.datasets import load_shared
from assistant.evaluation.retrieval_eval import load_ja2en, split_queries
from assistant.types import Passage


def measure(scorer: SentenceScorer, rows: list[dict], corpus: dict, twins: dict, language: str = "ja") -> dict[str, float]:
    n = top1 = quoted = 0
    for q in rows:
        text = corpus[q["gold_pid"]]["text"]
        answers = [a for a in q["answers"] + twins.get(q["qid"].rsplit("-", 1)[0], []) if a and a in text]
        if not answers:
            continue
        passage = Passage(rank=1, score=1.0, chunk_id="c", doc_id="d", title="", section="", page=None, source="",
                          text=text, language=language)
        evidence = scorer.score(q["question"], [passage])
        ranked = evidence.ranked()
        n += 1
        top1 += bool(ranked) and any(a in ranked[0].text for a in answers)
        quoted += any(a in s.text for s in select(evidence) for a in answers)
    return {"questions": n, "top1": round(top1 / n, 4) if n else 0.0, "quoted": round(quoted / n, 4) if n else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("fit", "test", "all"), default="all")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "reports" / "quote_selection.json")
    args = ap.parse_args()

    from assistant.embedding import load_embedder
    from assistant.settings import Settings, apply_offline_env
    from assistant.text.lexicon import load_lexicon

    apply_offline_env()
    settings = Settings()
    embedder = load_embedder(settings)
    lexicon = load_lexicon(str(settings.model_dir))
    if lexicon is None:
        print("no lexicon: run the README's set-up first")
        return 2
    from assistant.answering.judge import load_judge

    judged = SentenceScorer(embedder, lexicon=lexicon, judge=load_judge(settings))
    corpus, queries = load_shared(args.shared)
    twins = {q["qid"].rsplit("-", 1)[0]: q["answers"] for q in queries if q["set"] == "xling_ja2ja"}
    english = [q for q in queries if q["set"] == "xling_en2ja"]
    parts = ("fit", "test") if args.split == "all" else (args.split,)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for part in parts:
        rows = split_queries(english, part, 13)
        report[part] = {"without_lexicon": measure(SentenceScorer(embedder), rows, corpus, twins),
                        "with_lexicon": measure(SentenceScorer(embedder, lexicon=lexicon), rows, corpus, twins),
                        "with_judge": measure(judged, rows, corpus, twins)}
        print(part, json.dumps(report[part]), flush=True)
    # Japanese questions over their Japanese paragraph (JSQuAD): the plain case, without the lexicon.
    jsquad = [q for q in queries if q["set"] == "jsquad"]
    for part in parts:
        rows = split_queries(jsquad, part, 13)
        report[f"jsquad_{part}"] = {"without_lexicon": measure(SentenceScorer(embedder), rows, corpus, {}),
                                    "with_judge": measure(judged, rows, corpus, {})}
        print(f"jsquad_{part}", json.dumps(report[f"jsquad_{part}"]), flush=True)
    mixed = load_ja2en(args.shared)
    if mixed:
        paragraphs, questions = mixed
        english_corpus = {pid: {"text": text} for pid, text in paragraphs.values()}
        for part in parts:
            rows = split_queries(questions, part, 13)
            report[f"ja2en_{part}"] = {
                "without_lexicon": measure(SentenceScorer(embedder), rows, english_corpus, {}, "en"),
                "with_lexicon": measure(SentenceScorer(embedder, lexicon=lexicon), rows, english_corpus, {}, "en"),
                "with_judge": measure(judged, rows, english_corpus, {}, "en")}
            print(f"ja2en_{part}", json.dumps(report[f"ja2en_{part}"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
