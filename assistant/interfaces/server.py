"""One FastAPI application: the Gradio page at `/`, the JSON API under `/api`, `/healthz`, the document viewer.

`serve()` builds the index from `corpus/` on a fresh data directory (printing progress), refuses to bind
a non-loopback address without authentication, and runs uvicorn.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from assistant.auth import SESSION_COOKIE, Authenticator, SessionStore, load_session_secret
from assistant.core import Assistant, DocumentInfo
from assistant.errors import UserError
from assistant.feedback import FeedbackStore
from assistant.interfaces.api import Services, make_router, upload_body_limit
from assistant.interfaces.gate import Gate, error_response, make_limiters, split_list
from assistant.interfaces.web_assets import CSS, JS, esc, render_document_page
from assistant.querylog import QueryLog
from assistant.settings import Settings, apply_offline_env
from assistant.types import Chunk

log = logging.getLogger(__name__)

CORPUS_DIR = Path("corpus")
VIEWER_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large", 415: "unsupported_type", 429: "rate_limited"}
# Starlette's and the form parser's own messages, in Japanese.
HTTP_MESSAGES_JA = [
    ("Too many files", "ファイルが多すぎます（上限 {n} 件）。"),
    ("Too many fields", "フォームの項目が多すぎます（上限 {n} 件）。"),
    ("Part exceeded maximum size", "フォームの項目が大きすぎます。"),
    ("There was an error parsing the body", "リクエストの本文を読み取れませんでした。"),
]
GENERIC_JA = {400: "リクエストが正しくありません。", 401: "認証が必要です。", 403: "アクセスできません。",
              404: "見つかりません。", 405: "このメソッドは使えません。", 413: "リクエストが大きすぎます。",
              415: "対応していない形式です。", 429: "リクエストが多すぎます。"}


def querylog_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "querylog.sqlite3"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Refuses a non-loopback address unless authentication is on or explicitly waived."""
    if is_loopback(host) or settings.auth_file or settings.allow_unauthenticated:
        return
    raise UserError(
        "unauthenticated_bind",
        f"Refusing to listen on {host} without authentication: set ASSISTANT_AUTH_FILE (and "
        "ASSISTANT_API_TOKENS_FILE), or ASSISTANT_ALLOW_UNAUTHENTICATED=1 to allow it knowingly.",
        f"認証なしで {host} では待ち受けません。ASSISTANT_AUTH_FILE（と ASSISTANT_API_TOKENS_FILE）を"
        "設定するか、承知のうえで ASSISTANT_ALLOW_UNAUTHENTICATED=1 を設定してください。",
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def usererror_response(request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": ""}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        return error_response(422, "invalid_request", f"Invalid request: {where}: {first['msg']}",
                      f"リクエストの内容が正しくありません（{where}）: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def httperror_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 413:
            return error_response(413, "upload_too_large", "The request body is too large.", "リクエストが大きすぎます。")
        response = error_response(exc.status_code, code, message, message_ja(exc.status_code, message))
        response.headers.update(getattr(exc, "headers", None) or {})
        return response


def message_ja(status: int, message: str) -> str:
    """A Japanese rendering of a framework's English error message."""
    for start, text in HTTP_MESSAGES_JA:
        if message.startswith(start):
            limit = re.search(r"(\d+)\D*$", message)
            return text.format(n=limit.group(1) if limit else "?")
    return GENERIC_JA.get(status, "エラーが発生しました。") + f"（{message}）"


LOGIN_PAGE = """<!doctype html><html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>ログイン / Log in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}}input{{width:100%;padding:.4rem;font-size:1rem}}
button{{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}}.err{{color:#b91c1c}}</style></head>
<body><h1>ログイン / Log in</h1>{error}
<form method="post" action="/auth/login"><input type="hidden" name="next" value="{next}">
<label>ユーザー名 / User name <input name="username" autocomplete="username" required autofocus></label>
<label>パスワード / Password <input name="password" type="password" autocomplete="current-password" required>
</label><button type="submit">ログイン / Log in</button></form></body></html>"""


def _safe_next(target: str) -> str:
    """Only local paths: never redirect to another site after login."""
    parts = urlsplit(target or "/")
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def install_auth_routes(app: FastAPI, auth: Authenticator, secure_cookie: bool) -> None:
    ttl_s = int(auth.session_ttl_s)

    @app.get("/auth/login", include_in_schema=False)
    def login_form(next: str = "/") -> HTMLResponse:
        return HTMLResponse(LOGIN_PAGE.format(error="", next=esc(_safe_next(next))))

    @app.post("/auth/login", include_in_schema=False)
    def login(username: str = Form(""), password: str = Form(""), next: str = Form("/")) -> Response:
        if not auth.check_password(username, password):
            error = '<p class="err">ユーザー名かパスワードが違います。 / Wrong user name or password.</p>'
            return HTMLResponse(LOGIN_PAGE.format(error=error, next=esc(_safe_next(next))), status_code=401)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, auth.make_session(username), httponly=True, samesite="lax",
                            secure=secure_cookie, max_age=ttl_s, path="/")
        return response

    @app.api_route("/auth/logout", methods=["GET", "POST"], include_in_schema=False)
    def logout(request: Request) -> Response:
        auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/auth/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def install_api_docs(app: FastAPI) -> None:
    """Swagger UI from the installed `swagger-ui-bundle` package: no CDN, so it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount("/api/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="api-docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Briefing Assistant API",
                                   swagger_js_url="/api/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/api/docs-assets/favicon-32x32.png")


def install_viewer(app: FastAPI, assistant: Assistant) -> None:
    @app.get("/documents/{doc_id:path}", include_in_schema=False)
    def document_page(doc_id: str) -> HTMLResponse:
        info, chunks = load_document(assistant, doc_id)
        if info is None and not chunks:
            page = render_document_page(None, doc_id, [])
            return HTMLResponse(page, status_code=404, headers={"Content-Security-Policy": VIEWER_CSP})
        return HTMLResponse(render_document_page(info, doc_id, chunks),
                            headers={"Content-Security-Policy": VIEWER_CSP})


def load_document(assistant: Assistant, doc_id: str) -> tuple[DocumentInfo | None, list[Chunk]]:
    """The document's info and chunks in order (`Assistant.get_document`), or (None, [])."""
    found = assistant.get_document(doc_id)
    if not found:
        return None, []
    return found[0], list(found[1])


def make_app(settings: Settings, assistant: Assistant | None = None) -> FastAPI:
    """The whole application; builds the assistant with `make_assistant` unless one is given."""
    apply_offline_env()
    import gradio as gr  # after the offline switches: Gradio reads them when imported

    from assistant.interfaces.web import build_blocks

    if assistant is None:
        from assistant.core import make_assistant
        assistant = make_assistant(settings)
    services = Services(
        settings=settings, assistant=assistant, feedback=FeedbackStore(settings.feedback_db),
        querylog=QueryLog(querylog_path(settings), settings.query_log_retention_days, settings.query_log),
        corpus_dirs=[CORPUS_DIR.resolve()] if CORPUS_DIR.is_dir() else [],
    )
    services.querylog.prune()
    auth: Authenticator | None = None
    if settings.auth_file or settings.api_tokens_file:
        auth = Authenticator(settings.auth_file, settings.api_tokens_file,
                             load_session_secret(Path(settings.data_dir) / "session.key"),
                             SessionStore(settings.sessions_db), settings.session_ttl_h * 3600)

    app = FastAPI(title="Briefing Assistant API", version="1", docs_url=None,
                  openapi_url="/api/openapi.json", redoc_url=None,
                  description="Cited answers over the briefings. Errors are "
                              '`{"error": {"code", "message", "message_ja"}}`.')
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Model, index and chunk counts; 503 if the vector store is down")
    def healthz() -> JSONResponse:
        from assistant.errors import ServiceUnavailable

        try:
            return JSONResponse({"status": "ok", **assistant.health()})
        except ServiceUnavailable as exc:
            # Public path: the code and a plain message, not the store's address from `exc.message`.
            return JSONResponse({"status": "unavailable", "vector_store": "unavailable", "error": {
                "code": exc.code, "message": "The vector store cannot be reached.",
                "message_ja": "ベクトルデータベースに接続できません。"}}, status_code=503)

    install_api_docs(app)
    app.include_router(make_router(services))
    if auth is not None:
        install_auth_routes(app, auth, secure_cookie=(settings.public_url or "").startswith("https://"))
    install_viewer(app, assistant)
    from assistant.interfaces.slack import slack_router

    slack = slack_router(settings, assistant, services.feedback)
    if slack is not None:  # before the page, which is mounted at / and would catch /slack/events
        app.include_router(slack)

    base_url = (urlsplit(settings.public_url).path.rstrip("/") if settings.public_url else "")
    blocks = build_blocks(services, base_url)
    auth_dependency = (lambda request: request.scope.get("assistant.user") or None) if auth else None
    # Gradio defers to a CORS policy of the parent app: none unless ASSISTANT_CORS_ORIGINS names some.
    app.add_middleware(CORSMiddleware, allow_origins=split_list(settings.cors_origins), allow_credentials=True,
                       allow_methods=["GET", "POST", "DELETE"], allow_headers=["authorization", "content-type"])
    gr.mount_gradio_app(
        app, blocks, path="/", auth_dependency=auth_dependency, css=CSS, js=JS,
        footer_links=[], run_history=False, max_file_size=settings.max_upload_bytes,
        ssr_mode=False, mcp_server=False, enable_monitoring=False,
        blocked_paths=[str(Path(settings.data_dir).resolve())],
    )
    # Mounted rather than launched, Gradio skips its own check that a file sent to a handler was uploaded
    # (it runs only once `has_launched` is set); the gate filters those requests as well.
    blocks.has_launched = True
    app.state.services = services
    app.add_middleware(Gate, settings=settings, auth=auth, limiters=make_limiters(settings),
                       upload_limit=upload_body_limit(settings))
    return app


def _print_progress(done: int, total: int, what: str) -> None:
    pct = f"{100 * done / total:5.1f}%" if total else "  ... "
    print(f"[{pct}] {done}/{total} {what}", flush=True)


def prepare(settings: Settings, assistant: Assistant) -> None:
    """On a fresh data directory: ingest `corpus/` (building the model on first use), printing progress."""
    if assistant.list_documents() or not CORPUS_DIR.is_dir():
        return
    print(f"Building the index from {CORPUS_DIR}/ (first start) … / {CORPUS_DIR}/ から索引を作成しています…",
          flush=True)
    report = assistant.ingest([CORPUS_DIR], progress=_print_progress)
    print(f"Indexed {len(report.added) + len(report.changed)} documents, {report.chunks} chunks"
          f" in {report.seconds:.1f} s; {len(report.failed)} failed.", flush=True)
    for failure in report.failed:
        print(f"  failed: {failure.source}: {failure.reason}", flush=True)


def serve(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    """Builds what is missing, then serves the page and the API until interrupted."""
    import uvicorn

    settings = settings or Settings()
    host = host or settings.host
    port = port or settings.port
    try:
        check_bind(settings, host)
    except UserError as exc:
        print(f"{exc.message}\n{exc.message_ja}", file=sys.stderr)
        raise SystemExit(2) from None
    apply_offline_env()
    from assistant.core import make_assistant

    print("Loading the model and the index … / モデルと索引を読み込んでいます…", flush=True)
    assistant = make_assistant(settings)
    prepare(settings, assistant)
    app = make_app(settings, assistant)
    shown = f"[{host}]" if ":" in host else host
    url = settings.public_url or f"http://{shown}:{port}/"
    print(f"\nOpen {url} in your browser. / ブラウザで {url} を開いてください。"
          f"\nAPI: {url.rstrip('/')}/api/docs\n", flush=True)
    # The gate reads X-Forwarded-For itself, from ASSISTANT_TRUSTED_PROXIES only: uvicorn's own reading
    # believes any loopback peer, so a local client could pick its rate-limit bucket.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5, proxy_headers=False)
