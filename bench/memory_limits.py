"""Memory of a real server under hostile requests: a zip bomb upload and a huge chunked Slack request.

Starts `python app.py` as a subprocess (temporary data directory, free loopback port, a Slack route that
needs no network) and reads its VmRSS and VmHWM from /proc/<pid>/status around each request. The rise
is the peak RSS during the request (VmHWM, reset before it through /proc/<pid>/clear_refs when the
kernel allows) minus the RSS before it. Targets: under 300 MB for the bomb, under 100 MB for Slack.
Writes bench/results/memory_limits.json.

    .venv/bin/python bench/memory_limits.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
BOMB_BYTES = 1024 * MB
SLACK_BYTES = 300 * MB
TARGET_BOMB_MB = 300
TARGET_SLACK_MB = 100


def make_docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_bomb(source: bytes, inflated_bytes: int) -> bytes:
    """The .docx `source` with word/document.xml padded by an XML comment to inflate to `inflated_bytes`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in original.infolist():
            data = original.read(info)
            if info.filename != "word/document.xml":
                bomb.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            head, rest = data.split(b"?>", 1)
            padding = inflated_bytes - len(data) - 7
            with bomb.open(info.filename, "w", force_zip64=True) as stream:
                stream.write(head + b"?><!--")
                for _ in range(padding // MB):
                    stream.write(b" " * MB)
                stream.write(b" " * (padding % MB) + b"-->" + rest)
    return out.getvalue()


def make_liar(bomb: bytes) -> bytes:
    """`bomb` with its central directory declaring word/document.xml 4 KiB long (CRC of its first 4 KiB).

    zipfile's read() inflates such a member up to 1 GiB before cutting it to the declared size."""
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive, archive.open("word/document.xml") as stream:
        head = stream.read(4096)
    data = bytearray(bomb)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == b"word/document.xml":
            struct.pack_into("<L", data, at + 16, zlib.crc32(head))
            struct.pack_into("<L", data, at + 24, len(head))
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


class Server:
    """`python app.py` in a subprocess, with its memory read from /proc."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ASSISTANT_DATA_DIR": str(data_dir),
            "ASSISTANT_PORT": str(self.port),
            "ASSISTANT_HOST": "127.0.0.1",
            "ASSISTANT_MODELS_DIR": str(REPO / ".data" / "models"),
            "ASSISTANT_RATE_LIMIT_PER_MIN": "0",
            # The Slack route exists when both are set; the bot calls Slack only to answer, not to start.
            "SLACK_SIGNING_SECRET": "x",
            "SLACK_BOT_TOKEN": "xoxb-x",
            "SLACK_API_URL": "http://127.0.0.1:9/",
        }
        self.log = (data_dir / "server.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer /healthz within {timeout_s:g} s")

    def status_mb(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values

    def reset_peak(self) -> bool:
        """Sets VmHWM back to the current RSS (Linux 4.0+; needs the right to trace the process)."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def measure(server: Server, request: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    time.sleep(1.0)  # let the previous request's memory settle
    peak_reset = server.reset_peak()
    before = server.status_mb()
    started = time.perf_counter()
    outcome = request()
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    after = server.status_mb()
    return {
        **outcome,
        "rss_before_mb": round(before["VmRSS"], 1),
        "peak_after_mb": round(after["VmHWM"], 1),
        "rss_after_mb": round(after["VmRSS"], 1),
        "peak_rise_mb": round(after["VmHWM"] - before["VmRSS"], 1),
        "peak_reset": peak_reset,
        "seconds": round(seconds, 2),
    }


def upload(url: str, name: str, data: bytes) -> dict[str, Any]:
    r = httpx.post(url + "/api/documents", files=[("files", (name, data, "application/octet-stream"))],
                   timeout=600)
    body = r.json()
    report = body.get("error", body)
    failed = report.get("failed") or []
    return {
        "status": r.status_code,
        "upload_bytes": len(data),
        "added": report.get("added", []),
        "failed_reason": failed[0]["reason"] if failed else "",
    }


def slack_flood(url: str, total_bytes: int) -> dict[str, Any]:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"a" * MB
        while sent < total_bytes:
            sent += len(chunk)
            yield chunk

    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(int(time.time())),
               "X-Slack-Signature": "v0=0"}
    try:
        r = httpx.post(url + "/slack/events", content=body(), headers=headers, timeout=600)
        status: int | str = r.status_code
    except httpx.HTTPError as exc:  # a server that stops reading may close the connection mid-body
        status = f"{type(exc).__name__}: {exc}"
    return {"status": status, "body_bytes_sent": sent, "body_bytes_offered": total_bytes}


def run(timeout_s: float) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="memory-limits-"))
    server = Server(data_dir)
    try:
        server.wait_ready(timeout_s)
        small = make_docx(["ベンチマーク用の通常の文書です。", "営業利益は前年比で増加した。"] * 20)
        bomb = make_bomb(make_docx(["爆弾"]), BOMB_BYTES)
        started = server.status_mb()
        results = {
            "baseline_small_upload": measure(server, lambda: upload(server.url, "normal.docx", small)),
            "zip_bomb_upload": measure(server, lambda: upload(server.url, "bomb.docx", bomb)),
            "zip_bomb_lying_sizes_upload": measure(server, lambda: upload(server.url, "liar.docx", make_liar(bomb))),
            "slack_chunked_300mib": measure(server, lambda: slack_flood(server.url, SLACK_BYTES)),
        }
    finally:
        server.stop()
    return {
        "server_rss_at_start_mb": round(started["VmRSS"], 1),
        "bomb_inflated_bytes": BOMB_BYTES,
        **results,
        "targets_mb": {"zip_bomb_upload": TARGET_BOMB_MB, "zip_bomb_lying_sizes_upload": TARGET_BOMB_MB,
                       "slack_chunked_300mib": TARGET_SLACK_MB},
        "within_targets": {
            "zip_bomb_upload": results["zip_bomb_upload"]["peak_rise_mb"] < TARGET_BOMB_MB,
            "zip_bomb_lying_sizes_upload": results["zip_bomb_lying_sizes_upload"]["peak_rise_mb"] < TARGET_BOMB_MB,
            "slack_chunked_300mib": results["slack_chunked_300mib"]["peak_rise_mb"] < TARGET_SLACK_MB,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-s", type=float, default=600.0, help="how long to wait for the server")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memory_limits.json")
    args = parser.parse_args(argv)
    result = run(args.timeout_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name in ("baseline_small_upload", "zip_bomb_upload", "zip_bomb_lying_sizes_upload", "slack_chunked_300mib"):
        r = result[name]
        print(f"{name:28} status {str(r['status'])[:40]:<6} RSS before {r['rss_before_mb']:7.1f} MB"
              f"  peak rise {r['peak_rise_mb']:7.1f} MB  ({r['seconds']} s)")
    print(json.dumps(result["within_targets"]))
    return 0 if all(result["within_targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
