"""What every request meets before the application: host and origin checks, authentication, rate
limits, bounded bodies, and a filter that keeps client-chosen server paths away from Gradio's handlers.

Pure ASGI, so streamed answers pass straight through. Order: Host, then (for requests that change
state) Origin / Sec-Fetch-Site, then the login, then the rate limit, then the body's size and content.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.auth import SESSION_COOKIE, Authenticator
from assistant.errors import INTERNAL_ERROR
from assistant.ratelimit import RateLimiter
from assistant.settings import Settings

log = logging.getLogger(__name__)

# Slack requests authenticate by their signature, checked by the bot itself.
PUBLIC_PATHS = ("/auth/login", "/auth/logout", "/healthz", "/slack/")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests whose answer must never reach another site, even read-only ones.
SENSITIVE_READS = ("/api/feedback/export",)
# Sec-Fetch-Site values a browser sends for requests this site made itself (or the user typed).
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
JSON_BODY_LIMIT = 1024 * 1024
SLACK_BODY_LIMIT = 1024 * 1024
FRAME_HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


def split_list(text: str) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def host_name(host: str) -> str:
    """`example.org:7860` -> `example.org`, `[::1]:7860` -> `[::1]`, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def own_names() -> set[str]:
    """This machine's names and addresses: what clients on the network type when the server listens on
    every interface (a rebinding attack brings a name of its own, never these)."""
    names: set[str] = set()
    try:
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        _, aliases, addresses = socket.gethostbyname_ex(hostname)
        names |= {a.lower() for a in aliases} | set(addresses)
    except OSError as exc:  # no resolver: the allow-list keeps what the settings name
        log.info("cannot list this machine's names: %s", exc)
    return {n for n in names if n}


@dataclass
class HostPolicy:
    """The Host names the server answers to (any port): against DNS rebinding."""

    names: set[str]
    suffixes: tuple[str, ...] = ()
    any_host: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        names = {*LOOPBACK_HOSTS, host_name(settings.host)}
        if ":" in settings.host and not settings.host.startswith("["):
            names.add(f"[{settings.host.lower()}]")
        if settings.host in ("0.0.0.0", "::", "[::]"):
            names |= own_names()
        if settings.public_url:
            names.add(host_name(urlsplit(settings.public_url).netloc))
        suffixes: list[str] = []
        any_host = False
        for item in split_list(settings.allowed_hosts):
            if item == "*":
                any_host = True
            elif item.startswith("*."):
                suffixes.append(item[1:].lower())
            else:
                names.add(host_name(item))
        return cls(names, tuple(suffixes), any_host)

    def allows(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        name = host_name(host)
        return name in self.names or any(name.endswith(s) for s in self.suffixes)


def is_cross_site(headers: Headers, own_origins: frozenset[str]) -> bool:
    """True when a browser says the request comes from another site, or another port of this host.

    Clients that are not browsers send neither `Origin` nor `Sec-Fetch-Site` and pass.
    """
    origin = headers.get("origin")
    if origin is not None:
        origin = origin.strip().lower().rstrip("/")
        if origin in own_origins:
            return False
        # Same host and port; the scheme may differ behind a proxy that ends TLS.
        return origin == "null" or urlsplit(origin).netloc != headers.get("host", "").strip().lower()
    fetch_site = headers.get("sec-fetch-site")
    return fetch_site is not None and fetch_site not in SAME_SITE_FETCH


@dataclass
class ClientAddress:
    """The client's address, believing `X-Forwarded-For` only from the trusted proxies."""

    proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientAddress:
        return cls([ipaddress.ip_network(p, strict=False) for p in split_list(settings.trusted_proxies)])

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    def __call__(self, scope: Scope, headers: Headers) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.proxies or not self._trusted(peer):
            return peer
        # The rightmost address that is not one of our proxies is the one a proxy saw.
        hops = [h.strip() for h in ",".join(headers.getlist("x-forwarded-for")).split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return peer


def error_response(status: int, code: str, message: str, message_ja: str, **extra: Any) -> JSONResponse:
    """The one error shape: `{"error": {"code", "message", "message_ja", ...}}`."""
    body: dict[str, Any] = {"code": code, "message": message, "message_ja": message_ja, **extra}
    return JSONResponse({"error": body}, status_code=status)


def cross_site() -> JSONResponse:
    return error_response(403, "cross_site_request", "Requests from other sites are not accepted.",
                          "他のサイトからのリクエストは受け付けません。")


def too_large(limit: int) -> JSONResponse:
    mb = limit / 1048576
    return error_response(413, "too_large", f"The request body is larger than {mb:g} MB.",
                  f"リクエストの本文が大きすぎます（上限 {mb:g} MB）。")


class BodyTooLarge(Exception):
    pass


def upload_folder() -> Path:
    """Gradio's upload cache: the only place a page's file input may point to."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def in_folder(path: str, folder: Path) -> bool:
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return resolved != folder and resolved.is_relative_to(folder)


def foreign_paths(data: Any, folder: Path, depth: int = 0) -> list[str]:
    """Every `path` in a Gradio payload (its file objects) that is not inside the upload cache; a URL
    counts as foreign too: Gradio would fetch it."""
    if depth > 64:
        return ["(nested too deep)"]
    found: list[str] = []
    if isinstance(data, dict):
        path = data.get("path")
        if isinstance(path, str) and not in_folder(path, folder):
            found.append(path)
        for value in data.values():
            found += foreign_paths(value, folder, depth + 1)
    elif isinstance(data, list):
        for value in data:
            found += foreign_paths(value, folder, depth + 1)
    return found


@dataclass
class Gate:
    """Everything in front of the application (see the module's docstring)."""

    app: ASGIApp
    settings: Settings
    auth: Authenticator | None
    limiters: dict[str, RateLimiter]
    upload_limit: int
    gradio_prefix: str = "/gradio_api/"
    hosts: HostPolicy = field(init=False)
    client_address: ClientAddress = field(init=False)
    own_origins: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.hosts = HostPolicy.from_settings(self.settings)
        self.client_address = ClientAddress.from_settings(self.settings)
        origins = split_list(self.settings.cors_origins)
        if self.settings.public_url:
            parts = urlsplit(self.settings.public_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        self.own_origins = frozenset(o.lower().rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        refusal = self._refusal(scope, headers, path, method)
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        limit = self._body_limit(path, method)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await too_large(limit)(scope, receive, send)
            return
        if method == "POST" and path.startswith(self.gradio_prefix) and not path.startswith(
                self.gradio_prefix + "upload"):
            checked = await self._checked_gradio_body(scope, receive, send, limit)
            if checked is None:
                return
            receive = checked
        await self._forward(scope, receive, send, limit, path)

    # Checks --------------------------------------------------------------------------------------
    def _refusal(self, scope: Scope, headers: Headers, path: str, method: str) -> Response | None:
        if not self.hosts.allows(headers.get("host")):
            return error_response(403, "host_not_allowed",
                          "This server does not answer to that host name (set ASSISTANT_ALLOWED_HOSTS).",
                          "このホスト名ではアクセスできません（ASSISTANT_ALLOWED_HOSTS を設定してください）。")
        origin = (headers.get("origin") or "").strip().lower().rstrip("/")
        if method == "OPTIONS" and "access-control-request-method" in headers and origin not in self.own_origins:
            # A preflight from another site: no CORS headers at all, whatever Gradio or Starlette would say.
            return cross_site()
        checked = method in STATE_CHANGING or method == "WEBSOCKET" or path.startswith(SENSITIVE_READS)
        if checked and not path.startswith("/slack/") and is_cross_site(headers, self.own_origins):
            return cross_site()
        user = self._user(Request(scope))
        scope["assistant.user"] = user or ""
        if self.auth is not None and user is None and not path.startswith(PUBLIC_PATHS):
            if path.startswith("/api/") or "text/html" not in headers.get("accept", "") or method == "WEBSOCKET":
                response: Response = error_response(401, "unauthorized",
                                            "Log in or send an API token (Authorization: Bearer …).",
                                            "ログインするか、APIトークンを送ってください（Authorization: Bearer …）。")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            return RedirectResponse("/auth/login?next=" + quote(path, safe="/"), status_code=303)
        bucket = self._bucket(path, method)
        if bucket is not None:
            key = user or self.client_address(scope, headers)
            wait_s = self.limiters[bucket].check(f"{bucket}:{key}")
            if wait_s:
                response = error_response(429, "rate_limited", f"Too many requests; retry in {wait_s} s.",
                                  f"リクエストが多すぎます。{wait_s}秒後に再試行してください。")
                response.headers["Retry-After"] = str(wait_s)
                return response
        return None

    def _bucket(self, path: str, method: str) -> str | None:
        """Asking and uploading have separate budgets, so an upload is not refused for questions."""
        if path == "/auth/login" and method == "POST":
            return "login"
        if path.startswith("/api/documents") and method in STATE_CHANGING or (
                path.startswith(self.gradio_prefix + "upload") and method == "POST"):
            return "upload"
        if path.startswith("/api/"):
            return "ask"
        return None

    def _body_limit(self, path: str, method: str) -> int:
        if path.startswith("/slack/"):
            return SLACK_BODY_LIMIT
        if method == "POST" and (path.startswith("/api/documents") or path.startswith(self.gradio_prefix + "upload")):
            return self.upload_limit
        return JSON_BODY_LIMIT

    def _user(self, request: Request) -> str | None:
        if self.auth is None:
            return None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            name = self.auth.check_token(header[7:].strip())
            if name is not None:
                return f"token:{name}"
        return self.auth.read_session(request.cookies.get(SESSION_COOKIE))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await response(scope, receive, self._with_headers(send, scope.get("path", "")))

    # Bodies --------------------------------------------------------------------------------------
    async def _checked_gradio_body(self, scope: Scope, receive: Receive, send: Send, limit: int
                                   ) -> Receive | None:
        """Reads a Gradio event's (bounded) JSON body and refuses any file path the client did not upload."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(limit)(scope, receive, self._with_headers(send, scope.get("path", "")))
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            payload = json.loads(body) if body.strip() else None
            foreign = foreign_paths(payload, upload_folder()) if payload is not None else []
        except (ValueError, UnicodeDecodeError):
            foreign = []  # not JSON: Gradio answers it itself, and no file path can be in it
        except RecursionError:
            foreign = ["(nested too deep to read)"]
        if foreign:
            log.warning("refused a Gradio request naming a file it did not upload: %r", foreign[:3])
            await error_response(403, "file_not_uploaded", "Files can only come from an upload.",
                         "ファイルはアップロードしたものしか使えません。")(
                scope, receive, self._with_headers(send, scope.get("path", "")))
            return None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _forward(self, scope: Scope, receive: Receive, send: Send, limit: int, path: str) -> None:
        """Runs the application with the body counted as it streams: past `limit`, reading stops and
        the answer is a 413 whatever the application makes of the cut-off body."""
        received = 0
        exceeded = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        started = False
        inner_send = self._with_headers(send, path)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the 413 below replaces whatever the application answers
            if message["type"] == "http.response.start":
                started = True
            await inner_send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception as exc:
            if not exceeded:
                log.error("unhandled error on %s %s", scope.get("method"), path, exc_info=exc)
            if started:
                return
            if not exceeded:
                await JSONResponse(INTERNAL_ERROR.to_json(), status_code=500)(scope, receive, inner_send)
        if exceeded and not started:
            await too_large(limit)(scope, receive, inner_send)

    def _with_headers(self, send: Send, path: str) -> Send:
        # The viewer sets its own policy (it may be framed by this site's page); the rest may not be framed.
        extra = SECURITY_HEADERS + ([] if path.startswith("/documents/") else FRAME_HEADERS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in names]
            await send(message)

        return send_with_headers


def make_limiters(settings: Settings) -> dict[str, RateLimiter]:
    return {"ask": RateLimiter(settings.rate_limit_per_min),
            "upload": RateLimiter(settings.upload_rate_limit_per_min),
            "login": RateLimiter(settings.rate_limit_per_min)}
