"""Latency of `Assistant.ask` with the extractive answerer over the briefing corpus, after warm-up.

Prints and writes bench/results/ask_latency.json: median and p95 of `ask`, and the time to the first
streamed text of `ask_stream`. Target: median at most 150 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="an existing data directory (default: a fresh one)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / ".data" / "models",
                        help="built embedding model folder (a fresh data directory would rebuild it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ask_latency.json")
    args = parser.parse_args()

    from assistant.core import make_assistant
    from assistant.settings import Settings, apply_offline_env
    from assistant.types import Answer

    apply_offline_env()
    tmp = tempfile.TemporaryDirectory() if args.data_dir is None else None
    data_dir = args.data_dir or Path(tmp.name)  # type: ignore[union-attr]
    settings = Settings(data_dir=data_dir, models_dir=args.models_dir, llm="extractive", _env_file=None)
    assistant = make_assistant(settings)
    if not assistant.list_documents():
        assistant.ingest([ROOT / "corpus"])

    for q in QUESTIONS[:3]:  # warm-up: models loaded, caches filled
        assistant.ask(q)
    ask_ms: list[float] = []
    refused = 0
    for _ in range(args.rounds):
        for q in QUESTIONS:
            t = time.perf_counter()
            answer = assistant.ask(q)
            ask_ms.append((time.perf_counter() - t) * 1000)
            refused += answer.refused
    first_ms: list[float] = []
    for q in QUESTIONS:
        t = time.perf_counter()
        first = None
        for item in assistant.ask_stream(q):
            if first is None and isinstance(item, str):
                first = (time.perf_counter() - t) * 1000
            if isinstance(item, Answer):
                break
        first_ms.append(first if first is not None else (time.perf_counter() - t) * 1000)

    result = {
        "questions": len(QUESTIONS), "rounds": args.rounds, "answerer": "extractive",
        "ask_ms": {"median": round(statistics.median(ask_ms), 1), "p95": round(percentile(ask_ms, 0.95), 1),
                   "min": round(min(ask_ms), 1), "max": round(max(ask_ms), 1)},
        "first_text_ms": {"median": round(statistics.median(first_ms), 1),
                          "p95": round(percentile(first_ms, 0.95), 1)},
        "refused_share": round(refused / len(ask_ms), 3),
        "target_median_ms": 150,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
