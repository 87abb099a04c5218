"""A fake Slack Web API on loopback: a real HTTP server that records calls and can fail on demand.

It answers `auth.test`, `chat.postMessage`, `chat.postEphemeral`, `reactions.add` / `remove` and
`conversations.replies` under `/api/`, and accepts `response_url` posts under `/respond/`. Tests queue
failures (`fail("chat.postMessage", "channel_not_found")`) or rate limits (`rate_limit(..., retry_after_s=1)`)
and wait for calls with `wait_for`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T00000001"


@dataclass
class Call:
    method: str  # "chat.postMessage", or "respond" for a response_url post
    params: dict[str, Any]
    authorization: str = ""
    status: int = 200
    ok: bool = True  # False when the fake answered with an error or a rate limit
    at_s: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """Start with `start()` (or as a context manager); `url` is the Web API base URL."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._lock = threading.Condition()
        self._ts = 1_700_000_000.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Control ---------------------------------------------------------------------------------------------
    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return self.base + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base}/respond/{name}"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.threads.clear()
            self._failures.clear()

    def fail(self, method: str, error: str, times: int = 1, status: int = 200) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        with self._lock:
            self._failures.setdefault(method, []).extend(
                Failure(status, {"ok": False, "error": error}) for _ in range(times))

    def rate_limit(self, method: str, retry_after_s: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer HTTP 429 with `Retry-After`."""
        with self._lock:
            self._failures.setdefault(method, []).extend(
                Failure(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after_s)})
                for _ in range(times))

    def add_thread(self, channel: str, messages: list[dict[str, Any]]) -> None:
        """Messages `conversations.replies` returns for the thread started by the first one."""
        with self._lock:
            self.threads[(channel, messages[0]["ts"])] = messages

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def attempts_of(self, method: str) -> list[Call]:
        """Every call of `method`, including those answered with a failure."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout_s: float = 60.0) -> list[Call]:
        """Waits until `method` has been answered successfully `count` times; returns those calls."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                found = [c for c in self.calls if c.method == method and c.ok]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.status) for c in self.calls]
                    raise AssertionError(f"waited {timeout_s} s for {count} x {method}; calls: {seen}")
                self._lock.wait(left)

    # Serving ---------------------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        if raw:
            if (req.headers.get("Content-Type") or "").startswith("application/json"):
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw.decode("utf-8")))
        if parts.path.startswith("/respond/"):
            self._record(Call("respond", {**params, "_path": parts.path}))
            self._send(req, 200, b"ok", "text/plain")
            return
        method = parts.path.removeprefix("/api/")
        auth = req.headers.get("Authorization", "")
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.pop(0) if queue else None
        if failure is not None:
            self._record(Call(method, params, auth, failure.status, ok=False))
            self._send(req, failure.status, json.dumps(failure.body).encode(), headers=failure.headers)
            return
        body = self._answer(method, params)
        self._record(Call(method, params, auth))
        self._send(req, 200, json.dumps(body, ensure_ascii=False).encode())

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "assistant",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            with self._lock:
                self._ts += 1
                ts = f"{self._ts:.6f}"
            key = "message_ts" if method == "chat.postEphemeral" else "ts"
            return {"ok": True, "channel": params.get("channel"), key: ts,
                    "message": {"text": params.get("text", ""), "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts}}
        if method == "conversations.replies":
            with self._lock:
                messages = self.threads.get((params.get("channel", ""), params.get("ts", "")), [])
            return {"ok": True, "messages": messages, "has_more": False}
        if method in ("reactions.add", "reactions.remove"):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", f"{content_type}; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(body)
