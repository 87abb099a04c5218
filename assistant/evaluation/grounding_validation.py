"""Validates the grounding checker before its verdicts are trusted (`assistant eval grounding-check`).

Two tests, each scored as AUROC for the checker's support score and for a plain baseline (the share of
the claim's character bigrams found in the source): JNLI entailment against contradiction+neutral, and
answer sentences paired with the passage they came from against a deliberately wrong passage.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.evaluation import metrics as m
from assistant.evaluation.datasets import DATASETS_HELP, load_questions

Scorer = Callable[[str, str], float]  # (claim, source) -> support
JNLI = Path("jglue/jnli-v1.3_valid-v1.3.json")
TIE_AUROC = 0.005  # a smaller difference is not a win on a few hundred pairs


def load_jnli(datasets_dir: Path, sample: int | None = None, seed: int = 13) -> list[dict[str, Any]]:
    """JNLI validation pairs (premise `sentence1`, hypothesis `sentence2`, `label`), optionally a fixed-seed sample."""
    rows = [json.loads(line) for line in (Path(datasets_dir) / JNLI).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    if sample is not None and sample < len(rows):
        keep = set(random.Random(seed).sample(range(len(rows)), sample))
        rows = [r for i, r in enumerate(rows) if i in keep]
    return rows


def split_passages(text: str, max_chars: int = 300) -> list[str]:
    """The briefing cut into passages: blank-line paragraphs (wrapped lines joined), then sentence groups."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        joined = "".join(line.strip() for line in para.splitlines() if line.strip())
        if not joined:
            continue
        current = ""
        for sent in re.findall(r"[^。]+。?", joined):
            if current and len(current) + len(sent) > max_chars:
                out.append(current)
                current = ""
            current += sent
        if current:
            out.append(current)
    return out


def sentence_with(text: str, needle: str) -> str | None:
    """The sentence of `text` (lines joined) that contains `needle`, compared normalised."""
    joined = "".join(line.strip() for line in text.splitlines())
    target = m.norm(needle)
    for sent in re.findall(r"[^。\n•]+。?", joined):
        if target in m.norm(sent):
            return sent.strip()
    return None


def swapped_from_briefing(briefing: str, questions_path: Path, seed: int = 13) -> list[tuple[str, str, bool]]:
    """(claim, passage, is_right) pairs: each evidence sentence with its own passage and with a wrong one."""
    passages = split_passages(briefing)
    rng = random.Random(seed)
    pairs: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for q in load_questions(questions_path):
        for ev in q.evidence:
            claim = sentence_with(briefing, ev) or ev
            right = [p for p in passages if m.norm(ev) in m.norm(p)]
            if not right or claim in seen:
                continue
            seen.add(claim)
            wrong = [p for p in passages if m.norm(ev) not in m.norm(p)]
            pairs.append((claim, right[0], True))
            pairs.append((claim, rng.choice(wrong), False))
    return pairs


def swapped_from_answers(result_path: Path, seed: int = 13) -> list[tuple[str, str, bool]]:
    """From an `assistant eval` result: answer sentences citing one passage, with it and with another cited passage."""
    from assistant.grounding import parse_claim, split_answer

    data = json.loads(Path(result_path).read_text(encoding="utf-8"))
    pool: dict[str, str] = {}
    items: list[tuple[str, str]] = []
    for r in data.get("questions", []):
        texts = {c["n"]: (c.get("chunk_id", ""), c.get("text", "")) for c in r.get("citations", []) if c.get("text")}
        pool.update(dict(texts.values()))
        if r.get("refused"):
            continue
        for sent in split_answer(r.get("answer", "")):
            cited = parse_claim(sent).citations
            if len(cited) == 1 and cited[0] in texts:
                items.append((sent, texts[cited[0]][0]))
    rng = random.Random(seed)
    ids = sorted(pool)
    pairs: list[tuple[str, str, bool]] = []
    for sent, cid in items:
        others = [i for i in ids if i != cid and pool[i] != pool[cid]]
        if others:
            pairs += [(sent, pool[cid], True), (sent, pool[rng.choice(others)], False)]
    return pairs


def separation(pairs: Sequence[tuple[str, str, bool]], scorers: dict[str, Scorer]) -> dict[str, Any]:
    """AUROC of each scorer on (claim, source, positive) pairs."""
    out: dict[str, Any] = {"pairs": len(pairs), "positives": sum(1 for p in pairs if p[2])}
    for name, fn in scorers.items():
        scores = [fn(c, s) for c, s, _ in pairs]
        out[f"auroc_{name}"] = m.auroc(scores, [p for _, _, p in pairs])
    return out


def make_scorers(embedder: Any) -> dict[str, Scorer]:
    from assistant.grounding import support_score

    return {"checker": lambda c, s: float(support_score(c, s, embedder)), "bigram_baseline": m.bigram_overlap}


def verdict(result: dict[str, Any]) -> str:
    a, b = result.get("auroc_checker"), result.get("auroc_bigram_baseline")
    if a is None or b is None:
        return "not measured"
    if abs(a - b) < TIE_AUROC:
        return "ties with the baseline (does NOT beat it)"
    return "beats the baseline" if a > b else "does NOT beat the baseline"


def render(report: dict[str, Any]) -> str:
    intro = (f"Checker: `assistant.grounding.support_score`, embedder: {report['embedder']}. "
             "Baseline: share of the claim's character bigrams found in the source.")
    lines = ["# Grounding checker validation", "", intro, "",
             "| test | pairs | AUROC checker | AUROC baseline | verdict |", "|---|---|---|---|---|"]
    for name, r in report["tests"].items():
        lines.append(f"| {name} | {r['pairs']} | {m_fmt(r.get('auroc_checker'))} | "
                     f"{m_fmt(r.get('auroc_bigram_baseline'))} | {verdict(r)} |")
    lines += ["", ("JNLI: JGLUE (Yahoo Japan), CC BY-SA 4.0. Positives are entailment pairs; contradiction "
                   "and neutral are negatives."),
              ("Swapped citations: the same claim with the passage it came from (positive) and with a "
               "different passage (negative).")]
    if report.get("answers"):
        a = report["answers"]
        lines.append(f"Answer sentences from `{a['file']}` (answerer `{a['answerer']}`); sentences that quote "
                     "their passage verbatim are easy for the lexical baseline.")
    return "\n".join(lines) + "\n"


def m_fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    """`grounding-check`: AUROC of the checker and the baseline on JNLI and on swapped citations."""
    p = argparse.ArgumentParser(prog="assistant eval grounding-check")
    p.add_argument("--datasets", type=Path, required=True, help=DATASETS_HELP)
    p.add_argument("--briefing", type=Path, default=Path("corpus/briefing-russia-ukraine-2025-08.txt"))
    p.add_argument("--set", type=Path, default=Path("eval/questions/briefing.jsonl"))
    p.add_argument("--answers", type=Path, default=Path("eval/reports/briefing.json"),
                   help="an `assistant eval` result JSON whose answers to test (used when it exists)")
    p.add_argument("--sample", type=int, help="JNLI pairs to use (fixed seed; default all)")
    p.add_argument("--no-embedder", action="store_true", help="lexical support only")
    p.add_argument("--out", type=Path, default=Path("eval/reports/grounding_check"))
    args = p.parse_args(list(argv) if argv is not None else None)
    embedder, described = None, "none"
    if not args.no_embedder:
        try:
            from assistant.embedding import load_embedder
            from assistant.settings import Settings, apply_offline_env

            apply_offline_env()
            embedder = load_embedder(Settings())
            described = str(getattr(embedder, "version", "loaded"))
        except Exception as exc:  # noqa: BLE001 - without a model the report still runs, lexically
            print(f"note: embedder unavailable ({exc}); the checker runs on lexical support only")
    scorers = make_scorers(embedder)
    tests: dict[str, Any] = {}
    try:
        rows = load_jnli(args.datasets, args.sample)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    jnli = [(r["sentence2"], r["sentence1"], r["label"] == "entailment") for r in rows]
    tests["jnli"] = separation(jnli, scorers)
    tests["swapped_briefing_sentences"] = separation(
        swapped_from_briefing(args.briefing.read_text(encoding="utf-8"), args.set), scorers)
    report: dict[str, Any] = {"embedder": described, "tests": tests}
    if args.answers and args.answers.is_file():
        tests["swapped_answer_sentences"] = separation(swapped_from_answers(args.answers), scorers)
        meta = json.loads(args.answers.read_text(encoding="utf-8")).get("meta", {})
        report["answers"] = {"file": str(args.answers), "answerer": meta.get("answerer", "")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    args.out.with_name(args.out.name + ".md").write_text(render(report), encoding="utf-8")
    for name, r in tests.items():
        print(f"{name}: pairs {r['pairs']}, AUROC checker {m_fmt(r.get('auroc_checker'))}, "
              f"baseline {m_fmt(r.get('auroc_bigram_baseline'))}: {verdict(r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
