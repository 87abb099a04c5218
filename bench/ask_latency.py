"""Latency of `Assistant.ask` with the extractive answerer, with and without the answer judge, after warm-up.

Usage: .venv/bin/python bench/ask_latency.py [--passages 1000] [--rounds 3]
The data directory holds the briefing corpus plus passages made from the shared data's sentences
(`bench/scale.py`'s generator) up to `--passages` chunks. Both answerers (today's rules-only scorer as the
baseline, `ASSISTANT_ANSWER_JUDGE=0`, and the judge) answer the same questions in the same process, in
alternating rounds. Prints and writes bench/results/ask_latency.json: median and p95 of `ask`, and the time
to the first streamed text of `ask_stream`. Targets with the judge: median at most 250 ms, p95 at most 500 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "トランプ氏は対ロ経済制裁発動をどのくらい延期したか",
    "ロシア外務省報道官は何を拒否したか",
    "プーチン大統領は安全保障枠組みの参加国としてどこを挙げたか",
    "米ロ首脳会談はいつどこで行われたか",
    "ウクライナは何を要求しているか",
    "トランプ氏は米軍の地上部隊の派遣についてどう発言したか",
    "二次関税を中国に発動する可能性は",
    "秋冬期に攻勢を強めている理由は",
    "ブラジルのGDPはいくらか",
    "日本銀行の政策金利は何%か",
    "What did Russia's foreign ministry spokesperson reject?",
    "How long did Trump postpone sanctions on Russia?",
    "When did Trump meet Putin?",
    "What does Ukraine demand?",
    "What is Brazil's GDP?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(assistant: object, rounds: int) -> tuple[list[float], list[float], int]:
    from assistant.types import Answer

    ask_ms: list[float] = []
    refused = 0
    for _ in range(rounds):
        for q in QUESTIONS:
            t = time.perf_counter()
            answer = assistant.ask(q)  # type: ignore[attr-defined]
            ask_ms.append((time.perf_counter() - t) * 1000)
            refused += answer.refused
    first_ms: list[float] = []
    for q in QUESTIONS:
        t = time.perf_counter()
        first = None
        for item in assistant.ask_stream(q):  # type: ignore[attr-defined]
            if first is None and isinstance(item, str):
                first = (time.perf_counter() - t) * 1000
            if isinstance(item, Answer):
                break
        first_ms.append(first if first is not None else (time.perf_counter() - t) * 1000)
    return ask_ms, first_ms, refused


def figures(ask_ms: list[float], first_ms: list[float], refused: int) -> dict[str, object]:
    return {"ask_ms": {"median": round(statistics.median(ask_ms), 1), "p95": round(percentile(ask_ms, 0.95), 1),
                       "min": round(min(ask_ms), 1), "max": round(max(ask_ms), 1)},
            "first_text_ms": {"median": round(statistics.median(first_ms), 1),
                              "p95": round(percentile(first_ms, 0.95), 1)},
            "refused_share": round(refused / len(ask_ms), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="an existing data directory (default: a fresh one)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / ".data" / "models",
                        help="built embedding model folder (a fresh data directory would rebuild it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passages", type=int, default=1000, help="chunks in the index (briefing + generated)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ask_latency.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from scale import make_corpus

    from assistant.core import make_assistant
    from assistant.settings import Settings, apply_offline_env

    apply_offline_env()
    tmp = tempfile.TemporaryDirectory() if args.data_dir is None else None
    data_dir = args.data_dir or Path(tmp.name)  # type: ignore[union-attr]
    common = {"data_dir": data_dir, "models_dir": args.models_dir, "llm": "extractive", "_env_file": None}
    judged = make_assistant(Settings(**common, answer_judge=True))  # type: ignore[arg-type]
    if not judged.list_documents():
        judged.ingest([ROOT / "corpus"])
        have = int(judged.health()["chunks"])
        if args.passages > have:
            filler = data_dir / "_filler"
            make_corpus(filler, args.passages - have)
            judged.ingest([filler])
    baseline = make_assistant(Settings(**common, answer_judge=False))  # type: ignore[arg-type]
    chunks = judged.health()["chunks"]
    for a in (baseline, judged):
        for q in QUESTIONS[:3]:  # warm-up: models loaded, caches filled
            a.ask(q)
    runs: dict[str, tuple[list[float], list[float], int]] = {"baseline": ([], [], 0), "judge": ([], [], 0)}
    for _ in range(args.rounds):  # alternating, so both see the same machine load
        for name, a in (("baseline", baseline), ("judge", judged)):
            ask_ms, first_ms, refused = measure(a, 1)
            prev = runs[name]
            runs[name] = (prev[0] + ask_ms, prev[1] + first_ms, prev[2] + refused)
    result = {
        "questions": len(QUESTIONS), "rounds": args.rounds, "answerer": "extractive", "chunks": chunks,
        "baseline_rules_only": figures(*runs["baseline"]),
        "judge": figures(*runs["judge"]),
        "target_judge_ms": {"median": 250, "p95": 500},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
