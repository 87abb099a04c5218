"""Load test: concurrent `/api/ask` requests against a running server on loopback.

Checks that every answer belongs to its own question (no mixing between concurrent requests), and that
the page keeps answering while the API is busy; writes throughput and latency percentiles to
bench/results/load_api.json.

    python bench/load_api.py                       # against http://127.0.0.1:7860 (python app.py)
    python bench/load_api.py --start               # starts its own server on a free port, temp data dir
    python bench/load_api.py --start --with-upload # also: the same load while uploads ingest, in the same run

With `--with-upload` the load runs twice against one server: first alone (the baseline), then while a
client keeps uploading batches of 4 new documents (copies of the corpus, each made distinct), so every
question is asked while ingestion runs; both percentiles and their ratio are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "米ロ首脳会談はどこで行われましたか？",
    "Where did the US-Russia summit take place?",
    "ロシア外務省報道官は安全保障について何と述べましたか？",
    "What did the Russian foreign ministry spokesperson say about security guarantees?",
    "ゼレンスキー大統領は領土について何と述べましたか？",
    "What did Zelensky say about the current front line?",
    "和平条件にはどの州が含まれていましたか？",
    "Which regions were mentioned in the reported peace conditions?",
    "トランプ氏は停戦と和平のどちらを優先しましたか？",
    "Did Trump prioritise a ceasefire or a peace deal?",
    "プーチン大統領は安全保障枠組みの参加国として何を挙げましたか？",
    "Which country did Putin reportedly name as a possible security guarantor?",
    "ロシアは時間稼ぎに成功したと言えますか？",
    "Why might Russia want to delay a ceasefire?",
    "トランプ氏はどのような交渉過程を希望していますか？",
    "What negotiation process does Trump want next?",
]
MAX_REQUESTS = 64
MAX_CONCURRENCY = 32


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pct(p: float) -> float:
        k = (len(ordered) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    return {"p50": round(pct(0.50), 1), "p90": round(pct(0.90), 1), "p95": round(pct(0.95), 1),
            "p99": round(pct(0.99), 1), "max": round(ordered[-1], 1), "mean": round(statistics.fmean(ordered), 1)}


def ask_one(url: str, question: str, timeout_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout_s) as client:
            r = client.post(url + "/api/ask", json={"question": question})
        ms = (time.perf_counter() - t0) * 1000
        body = r.json()
        own = r.status_code == 200 and body.get("question") == question and bool(body.get("id"))
        return {"question": question, "status": r.status_code, "ms": ms, "own": own, "id": body.get("id", ""),
                "citations": len(body.get("citations", [])), "refused": body.get("refused")}
    except (httpx.HTTPError, ValueError) as exc:
        return {"question": question, "status": 0, "ms": (time.perf_counter() - t0) * 1000, "own": False,
                "id": "", "error": type(exc).__name__}


def probe_page(url: str, stop: threading.Event, out: list[float]) -> None:
    """Fetches the page and /healthz once a second while the load runs."""
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            ok = client.get(url + "/").status_code == 200 and client.get(url + "/healthz").status_code == 200
            if ok:
                out.append((time.perf_counter() - t0) * 1000)
            stop.wait(1.0)


def run(url: str, requests: int, concurrency: int, timeout_s: float) -> dict[str, Any]:
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(requests)]
    with httpx.Client(timeout=timeout_s) as client:  # warm-up: first-call costs are not load
        client.post(url + "/api/ask", json={"question": QUESTIONS[0]}).raise_for_status()
    stop = threading.Event()
    page_ms: list[float] = []
    prober = threading.Thread(target=probe_page, args=(url, stop, page_ms), daemon=True)
    prober.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda q: ask_one(url, q, timeout_s), questions))
    wall_s = time.perf_counter() - t0
    stop.set()
    prober.join(timeout=60)
    ok = [r for r in results if r["status"] == 200]
    ids = [r["id"] for r in ok]
    return {
        "url": url,
        "requests": requests,
        "concurrency": concurrency,
        "ok": len(ok),
        "errors": [r for r in results if r["status"] != 200],
        "answers_to_own_question": sum(r["own"] for r in results),
        "distinct_answer_ids": len(set(ids)),
        "refused": sum(bool(r.get("refused")) for r in ok),
        "wall_s": round(wall_s, 2),
        "throughput_rps": round(len(ok) / wall_s, 3) if wall_s else 0.0,
        "latency_ms": percentiles([r["ms"] for r in ok]),
        "page_while_loaded_ms": percentiles(page_ms) | {"samples": len(page_ms)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


UPLOAD_FILES = 4


def upload_loop(url: str, stop: threading.Event, out: dict[str, Any]) -> None:
    """Uploads batches of new documents until told to stop; records each batch's time and status."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "corpus").glob("*.txt"))]
    batch = 0
    with httpx.Client(timeout=600) as client:
        while not stop.is_set():
            files = [("files", (f"load-{batch}-{i}.txt", f"負荷試験用の文書 {batch}-{i}\n\n{texts[i % len(texts)]}"
                                .encode(), "text/plain")) for i in range(UPLOAD_FILES)]
            t0 = time.perf_counter()
            r = client.post(url + "/api/documents", files=files)
            out.setdefault("batches", []).append({"status": r.status_code,
                                                  "s": round(time.perf_counter() - t0, 2)})
            batch += 1
        for d in client.get(url + "/api/documents").json():
            if d["doc_id"].startswith("uploads/load-"):
                client.delete(url + "/api/documents/" + d["doc_id"])


def run_with_upload(url: str, requests: int, concurrency: int, timeout_s: float) -> dict[str, Any]:
    """The same load alone, then while uploads ingest; every upload batch must succeed."""
    alone = run(url, requests, concurrency, timeout_s)
    stop = threading.Event()
    uploads: dict[str, Any] = {}
    uploader = threading.Thread(target=upload_loop, args=(url, stop, uploads), daemon=True)
    uploader.start()  # the first batch starts cold, as a user's first upload does
    during = run(url, requests, concurrency, timeout_s)
    stop.set()
    uploader.join(timeout=600)
    p95_alone, p95_during = alone["latency_ms"]["p95"], during["latency_ms"]["p95"]
    return {"alone": alone, "during_upload": during, "uploads": uploads.get("batches", []),
            "upload_files_per_batch": UPLOAD_FILES,
            "p95_ratio": round(p95_during / p95_alone, 2) if p95_alone else None,
            "p50_ratio": round(during["latency_ms"]["p50"] / alone["latency_ms"]["p50"], 2)
            if alone["latency_ms"]["p50"] else None}


def start_server() -> tuple[str, Any]:
    """A server of our own on a free loopback port with a temporary data directory holding corpus/."""
    import socket

    import uvicorn

    sys.path.insert(0, str(REPO))
    from assistant.core import make_assistant
    from assistant.interfaces.server import make_app
    from assistant.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="load-api-"))
    models = REPO / ".data" / "models"
    settings = Settings(data_dir=data, models_dir=models if models.exists() else None, rate_limit_per_min=0,
                        upload_rate_limit_per_min=0, _env_file=None)  # type: ignore[call-arg]
    assistant = make_assistant(settings)
    assistant.ingest([REPO / "corpus"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(settings, assistant), host="127.0.0.1", port=port,
                                           log_level="warning", proxy_headers=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}", server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--start", action="store_true", help="start a server of our own first")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--with-upload", action="store_true", help="also measure the load while uploads ingest")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load_api.json")
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= MAX_REQUESTS and 1 <= args.concurrency <= MAX_CONCURRENCY):
        parser.error(f"requests must be 1..{MAX_REQUESTS} and concurrency 1..{MAX_CONCURRENCY}")
    server = None
    url = args.url.rstrip("/")
    if args.start:
        url, server = start_server()
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this benchmark only runs against a loopback address")
    if args.with_upload:
        both = run_with_upload(url, args.requests, args.concurrency, args.timeout_s)
        if server is not None:
            server.should_exit = True
        out = args.out.with_name(args.out.stem + "_upload.json") if args.out.name == "load_api.json" else args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(both, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(json.dumps({"ask_alone_ms": both["alone"]["latency_ms"],
                          "ask_during_upload_ms": both["during_upload"]["latency_ms"],
                          "p95_ratio": both["p95_ratio"], "p50_ratio": both["p50_ratio"],
                          "upload_batches": both["uploads"]}, ensure_ascii=False, indent=2))
        ok = all(b["status"] == 200 for b in both["uploads"]) and all(
            r["ok"] == args.requests == r["answers_to_own_question"] for r in (both["alone"], both["during_upload"]))
        return 0 if ok else 1
    result = run(url, args.requests, args.concurrency, args.timeout_s)
    if server is not None:
        server.should_exit = True
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("ok", "requests", "answers_to_own_question", "wall_s",
                                             "throughput_rps", "latency_ms", "page_while_loaded_ms")},
                     ensure_ascii=False, indent=2))
    good = result["ok"] == args.requests and result["answers_to_own_question"] == args.requests
    return 0 if good and result["distinct_answer_ids"] == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
