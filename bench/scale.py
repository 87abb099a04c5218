"""Cost against corpus size: ingestion speed, disk, peak memory, retrieve and ask latency.

Usage: .venv/bin/python bench/scale.py [--sizes 1000 10000 100000] [--chroma-server [--server-max N]]
       [--queries 100]
Corpora beyond the ~1,200 shared passages are made by recombining their sentences into new, unique
passages with a fixed seed; each passage's length is drawn from the shared passages' lengths, so the
synthetic corpus reads like the real one (ingestion cost grows with passage length: chars/s is
reported beside passages/s). Each size runs in its own process (so its peak memory is its own), into
its own data directory under bench/.scale/. Writes bench/results/scale.json and bench/results/scale.png.
Run by hand: 100k passages take the better part of an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets" / "retrieval"
WORK = REPO / "bench" / ".scale"


def sentences(corpus: Path) -> list[tuple[str, str]]:
    """(title, sentence) pairs from the shared passages."""
    from assistant.text.chunking import split_sentences

    out = []
    for line in corpus.open(encoding="utf-8"):
        row = json.loads(line)
        out += [(row["title"], row["text"][s:e]) for s, e in split_sentences(row["text"])]
    return out


CORPUS_VERSION = "2"  # 1: 3-6 sentences a passage; 2: lengths drawn from the shared passages


def make_corpus(folder: Path, size: int, seed: int = 0) -> None:
    """`size` unique passages, one document each, of at least two sentences drawn from several articles.

    Each passage's target length is one of the shared passages' lengths, drawn at random; sentences
    are added while that brings the passage closer to it.
    """
    stamp = folder / ".corpus"
    if stamp.exists() and stamp.read_text() == f"{CORPUS_VERSION}/{size}/{seed}":
        return
    shutil.rmtree(folder, ignore_errors=True)
    sub = folder / "0"
    sub.mkdir(parents=True)
    pool = sentences(SHARED / "corpus.jsonl")
    lengths = [len(json.loads(line)["text"]) for line in (SHARED / "corpus.jsonl").open(encoding="utf-8")]
    rng = random.Random(seed)
    seen: set[str] = set()
    n = 0
    while n < size:
        target = rng.choice(lengths)
        picks = rng.sample(pool, 2)
        while True:
            nxt = rng.choice(pool)
            now = sum(len(s) for _, s in picks)
            if abs(now + len(nxt[1]) - target) >= abs(now - target):
                break
            picks.append(nxt)
        text = "".join(s for _, s in picks)
        if text in seen:
            continue
        seen.add(text)
        if n and n % 5000 == 0:
            sub = folder / str(n // 5000)
            sub.mkdir()
        (sub / f"p{n:06d}.txt").write_text(text, encoding="utf-8")
        (sub / f"p{n:06d}.txt.meta.json").write_text(json.dumps({"title": picks[0][0]}, ensure_ascii=False),
                                                     encoding="utf-8")
        n += 1
    stamp.write_text(f"{CORPUS_VERSION}/{size}/{seed}")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1048576


def one(size: int, chroma_url: str | None, n_queries: int) -> dict[str, float | int | str]:
    """Ingests a corpus of `size` passages into a fresh data directory and measures it (child process)."""
    from assistant.core import make_assistant
    from assistant.settings import Settings, apply_offline_env

    apply_offline_env()
    corpus = WORK / f"corpus-{size}"
    make_corpus(corpus, size)
    data = WORK / f"data-{size}{'-server' if chroma_url else ''}"
    shutil.rmtree(data, ignore_errors=True)
    t = time.perf_counter()
    a = make_assistant(Settings(data_dir=data, models_dir=REPO / ".data" / "models", chroma_url=chroma_url,
                                collection=f"scale{size}"))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    report = a.ingest([corpus])
    ingest_s = time.perf_counter() - t
    chars = sum(len(p.read_text(encoding="utf-8")) for p in corpus.rglob("p*.txt"))
    queries = [json.loads(x)["question"] for x in (SHARED / "queries.jsonl").open(encoding="utf-8")]
    random.Random(1).shuffle(queries)
    queries = queries[:n_queries]
    for q in queries[:5]:
        a.ask(q)
    retrieve_ms, ask_ms = [], []
    for q in queries:
        t = time.perf_counter()
        a.retrieve(q, top_k=5)
        retrieve_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        a.ask(q)
        ask_ms.append((time.perf_counter() - t) * 1000)
    extra = WORK / f"extra-{size}"
    shutil.rmtree(extra, ignore_errors=True)
    extra.mkdir(parents=True)
    for i in range(10):
        (extra / f"new{i}.txt").write_text(f"追加文書{i}。北極海航路の通航量は前年比で増えた。砕氷船{i}隻が就航した。",
                                           encoding="utf-8")
    t = time.perf_counter()
    a.ingest([extra])
    add10_s = time.perf_counter() - t
    return {
        "size": size, "server": bool(chroma_url), "documents": len(report.added), "chunks": report.chunks,
        "failed": len(report.failed), "model_load_s": round(load_s, 2), "ingest_s": round(ingest_s, 1),
        "passages_per_s": round(size / ingest_s, 1),
        "mean_passage_chars": round(chars / size), "chars_per_s": round(chars / ingest_s),
        "add_10_docs_s": round(add10_s, 2),
        "disk_mb": round(disk_mb(data), 1),
        "retrieve_median_ms": round(statistics.median(retrieve_ms), 2),
        "retrieve_p95_ms": round(percentile(retrieve_ms, 0.95), 2),
        "ask_median_ms": round(statistics.median(ask_ms), 2), "ask_p95_ms": round(percentile(ask_ms, 0.95), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def peak_rss_mb(pid: int) -> float | None:
    """A live process's peak resident memory (Linux VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def start_chroma(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "chroma"), "run", "--path", str(folder / "db"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma server did not start")


def plot(rows: list[dict], out: Path) -> None:
    """One panel per cost against corpus size (log scale), both stores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(20, 4))
    for server in (False, True):
        rs = sorted((r for r in rows if r["server"] == server), key=lambda r: r["size"])
        if not rs:
            continue
        label = "Chroma server" if server else "embedded"
        sizes = [r["size"] for r in rs]
        axes[0].plot(sizes, [r["passages_per_s"] for r in rs], "o-", label=label)
        axes[1].plot(sizes, [r["retrieve_median_ms"] for r in rs], "o-", label=f"{label} median")
        axes[1].plot(sizes, [r["retrieve_p95_ms"] for r in rs], "o--", label=f"{label} p95")
        axes[2].plot(sizes, [r["ask_median_ms"] for r in rs], "o-", label=f"{label} median")
        axes[2].plot(sizes, [r["ask_p95_ms"] for r in rs], "o--", label=f"{label} p95")
        axes[3].plot(sizes, [r["peak_rss_mb"] for r in rs], "o-", label=f"{label}: assistant process")
        served = [(r["size"], r["chroma_server_peak_rss_mb"]) for r in rs if r.get("chroma_server_peak_rss_mb")]
        if served:
            axes[3].plot(*zip(*served, strict=True), "s--", label="chroma run process")
        axes[4].plot(sizes, [r["disk_mb"] for r in rs], "o-", label=label)
    axes[0].axhline(50, color="grey", linestyle=":", label="target 50/s")
    titles = ["ingestion (passages/s)", "retrieve latency (ms)", "ask latency, extractive (ms)", "peak memory (MB)",
              "index on disk (MB)"]
    for ax, title in zip(axes, titles, strict=True):
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xlabel("passages")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--chroma-server", action="store_true", help="also run each size against `chroma run`")
    ap.add_argument("--server-max", type=int, help="with --chroma-server: only sizes up to this one")
    ap.add_argument("--server-only", action="store_true", help="with --chroma-server: skip the embedded runs")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--append", action="store_true",
                    help="keep the other rows of bench/results/scale.json (a row of the same size and store is replaced)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.url, args.queries)), flush=True)
        return 0
    rows: list[dict] = []
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    kept: list[dict] = []
    if args.append and (results / "scale.json").exists():
        kept = json.loads((results / "scale.json").read_text(encoding="utf-8"))["rows"]
    modes: list[str | None] = ["server"] if args.server_only else [None]
    if args.chroma_server and not args.server_only:
        modes.append("server")
    for size in args.sizes:
        for mode in modes:
            if mode and args.server_max and size > args.server_max:
                continue
            proc, url = start_chroma(WORK / f"chroma-{size}") if mode else (None, None)
            cmd = [sys.executable, __file__, "--one", str(size), "--queries", str(args.queries)]
            out = subprocess.run(cmd + (["--url", url] if url else []), capture_output=True, text=True, check=False)
            server_rss = None
            if proc is not None:
                server_rss = peak_rss_mb(proc.pid)
                proc.terminate()
                proc.wait(timeout=30)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(line[7:]))
            if server_rss is not None:
                rows[-1]["chroma_server_peak_rss_mb"] = server_rss
            print(json.dumps(rows[-1]), flush=True)
            new = {(r["size"], r["server"]) for r in rows}
            merged = sorted([r for r in kept if (r["size"], r["server"]) not in new] + rows,
                            key=lambda r: (r["size"], r["server"]))
            (results / "scale.json").write_text(json.dumps({"rows": merged}, indent=2) + "\n", encoding="utf-8")
    plot(merged, results / "scale.png")
    print(f"wrote {results / 'scale.json'} and {results / 'scale.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
