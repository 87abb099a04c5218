"""The JSON API under `/api`: ask (plain and streamed), retrieve, documents, feedback.

Request and event shapes are documented in the README; every error is
`{"error": {"code", "message", "message_ja"}}` (see `server.py` for the handlers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from assistant.core import Assistant, Filters
from assistant.errors import INTERNAL_ERROR, ServiceUnavailable, UserError, check_question
from assistant.feedback import FeedbackStore
from assistant.ingest import lower_priority
from assistant.interfaces.gate import error_response
from assistant.querylog import QueryLog
from assistant.settings import Settings
from assistant.types import Answer, Failure, IngestReport, retrieval_json

log = logging.getLogger(__name__)

DATE_PATTERN = r"^\d{4}(-\d{2}(-\d{2})?)?$"
MAX_HISTORY_MESSAGES = 20
MAX_HISTORY_CHARS = 8000
MAX_UPLOAD_FILES = 20
JSON_BODY_LIMIT = 1024 * 1024
FALLBACK_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx"})
# C0/C1 control characters other than tab and newline are dropped from questions.
_KEEP_CONTROLS = {"\n", "\t"}


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=100_000)


class RetrieveRequest(BaseModel):
    question: str = Field(description="The question, in Japanese or English.", max_length=200_000)
    top_k: int | None = Field(default=None, ge=1, le=50)
    doc_ids: list[str] = Field(default_factory=list, max_length=200)
    date_from: str | None = Field(default=None, pattern=DATE_PATTERN, description="ISO date, inclusive")
    date_to: str | None = Field(default=None, pattern=DATE_PATTERN, description="ISO date, inclusive")


class AskRequest(RetrieveRequest):
    history: list[Message] = Field(default_factory=list, max_length=200,
                                   description="Earlier turns, oldest first: [{role, content}].")


class FeedbackRequest(BaseModel):
    answer_id: str = Field(min_length=1, max_length=200)
    rating: Literal["good", "bad"]
    comment: str = Field(default="", max_length=4000)
    question: str = Field(default="", max_length=200_000)
    answer: dict[str, Any] | None = Field(default=None, description="The answer JSON; looked up by id if absent.")


class RecentAnswers:
    """The last few hundred answers by id, so feedback can store the full answer given only its id."""

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, answer: Answer) -> None:
        with self._lock:
            self._items[answer.id] = answer.to_json()
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, answer_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get(answer_id)


@dataclass
class Services:
    """What the API routes and the page share: the assistant and the stores beside it, and the one
    thread that ingests (uploads, re-indexing) in turn, off the threads that answer questions."""

    settings: Settings
    assistant: Assistant
    feedback: FeedbackStore
    querylog: QueryLog
    answers: RecentAnswers = field(default_factory=RecentAnswers)
    corpus_dirs: list[Path] = field(default_factory=list)
    ingest_worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="ingest", initializer=lower_priority))

    def finish_answer(self, answer: Answer, question: str, channel: str) -> Answer:
        """Gives the answer an id if it has none, remembers it and logs the query."""
        if not answer.id:
            answer.id = uuid.uuid4().hex
        self.answers.put(answer)
        self.querylog.record(question, answer.id, channel=channel)
        return answer


def clean_question(text: str, max_chars: int) -> str:
    """The question without control characters; empty or too long is a `UserError` (core's rule)."""
    return check_question(text.replace("\r\n", "\n").replace("\r", "\n"), max_chars)


def clean_history(messages: list[Message] | list[dict[str, str]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for m in messages[-MAX_HISTORY_MESSAGES:]:
        role, content = (m.role, m.content) if isinstance(m, Message) else (m["role"], m["content"])
        content = "".join(ch for ch in content if ch in _KEEP_CONTROLS or unicodedata.category(ch) != "Cc")
        out.append({"role": role, "content": content[:MAX_HISTORY_CHARS]})
    return out


def make_filters(doc_ids: list[str], date_from: str | None, date_to: str | None) -> Filters | None:
    date_from, date_to = (date_from or "").strip() or None, (date_to or "").strip() or None
    if date_from and date_to and date_from > date_to:
        raise UserError("bad_date_range", "The start date is after the end date.", "開始日が終了日より後です。")
    filters = Filters(doc_ids=[d for d in doc_ids if d], date_from=date_from, date_to=date_to)
    return None if filters.is_empty() else filters


def allowed_suffixes() -> frozenset[str]:
    try:
        from assistant.loaders import supported_suffixes
        return frozenset(s.lower() for s in supported_suffixes())
    except (ImportError, AttributeError):
        return FALLBACK_SUFFIXES


def safe_upload_name(filename: str) -> str:
    """The base name only, without folders, NUL or control characters; validated before core sees it."""
    from assistant.ingest import sanitize_filename
    name = sanitize_filename(filename or "")
    if not name or name in {".", ".."}:
        raise UserError("bad_filename", "The file has no usable name.", "ファイル名が使えません。")
    return name


def check_upload(filename: str, size: int, settings: Settings) -> str:
    """Validates one upload's name, type and size; returns the sanitised name."""
    name = safe_upload_name(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in allowed_suffixes():
        allowed = ", ".join(sorted(allowed_suffixes()))
        raise UserError("unsupported_type", f"Files of type '{suffix or name}' cannot be added (allowed: {allowed}).",
                        f"この形式のファイルは追加できません（{suffix or name}）。対応形式: {allowed}", status=415)
    limit = settings.max_upload_bytes
    if size > limit:
        raise UserError("upload_too_large", f"'{name}' is larger than {settings.max_upload_mb:g} MB.",
                        f"「{name}」は{settings.max_upload_mb:g} MBを超えています。", status=413)
    if size == 0:
        raise UserError("empty_upload", f"'{name}' is empty.", f"「{name}」は空です。")
    return name


def merge_reports(reports: list[IngestReport]) -> IngestReport:
    total = IngestReport()
    for r in reports:
        for key in ("added", "changed", "skipped", "removed", "failed", "warnings"):
            getattr(total, key).extend(getattr(r, key))
        total.reindexed.update(r.reindexed)
        total.chunks += r.chunks
        total.seconds += r.seconds
    return total


def ingest_uploads(services: Services, files: list[tuple[str, BinaryIO]]) -> IngestReport:
    """Validates and ingests each file, reading one at a time; a file that fails is reported, the
    others still go in."""
    limit = services.settings.max_upload_bytes
    reports: list[IngestReport] = []
    for filename, stream in files:
        try:
            data = stream.read(limit + 1)
            name = check_upload(filename, len(data), services.settings)
            reports.append(services.assistant.add_upload(name, data))
        except ServiceUnavailable:
            raise  # the store is down: every other file would fail the same way; a 503, not a report
        except UserError as exc:
            reports.append(IngestReport(failed=[Failure(filename, exc.message, exc.message_ja)]))
    return merge_reports(reports)


def upload_body_limit(settings: Settings) -> int:
    """The largest upload request: every file at the size limit, and room for the form around them."""
    return settings.max_upload_bytes * MAX_UPLOAD_FILES + 1024 * 1024


def nothing_ingested(report: IngestReport) -> bool:
    return bool(report.failed) and not (report.added or report.changed or report.skipped)


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def make_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])
    settings = services.settings

    @router.post("/ask", max_body_size=JSON_BODY_LIMIT, summary="Answer a question with citations")
    def ask(req: AskRequest, request: Request) -> dict[str, Any]:
        question = clean_question(req.question, settings.max_question_chars)
        filters = make_filters(req.doc_ids, req.date_from, req.date_to)
        answer = services.assistant.ask(question, clean_history(req.history), req.top_k, filters)
        return services.finish_answer(answer, question, "api").to_json()

    @router.post("/ask/stream", max_body_size=JSON_BODY_LIMIT, response_class=StreamingResponse,
                 summary="Answer a question as server-sent events: delta*, then answer (or error)")
    def ask_stream(req: AskRequest) -> StreamingResponse:
        question = clean_question(req.question, settings.max_question_chars)
        filters = make_filters(req.doc_ids, req.date_from, req.date_to)
        history = clean_history(req.history)

        def events() -> Iterator[str]:
            try:
                for item in services.assistant.ask_stream(question, history, req.top_k, filters):
                    if isinstance(item, Answer):
                        yield sse("answer", services.finish_answer(item, question, "api").to_json())
                    elif item:
                        yield sse("delta", {"text": item})
            except UserError as exc:
                yield sse("error", exc.to_json())
            except Exception:
                log.exception("streamed answer failed for %r", question[:200])
                yield sse("error", INTERNAL_ERROR.to_json())

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.post("/retrieve", max_body_size=JSON_BODY_LIMIT, summary="The passages retrieval finds, ranked")
    def retrieve(req: RetrieveRequest) -> dict[str, Any]:
        question = clean_question(req.question, settings.max_question_chars)
        filters = make_filters(req.doc_ids, req.date_from, req.date_to)
        passages = services.assistant.retrieve(question, req.top_k, filters)
        return retrieval_json(uuid.uuid4().hex, question, passages)

    @router.get("/documents", summary="Indexed documents with chunk counts and dates")
    def documents() -> list[dict[str, Any]]:
        return [asdict(d) for d in services.assistant.list_documents()]

    @router.post("/documents", max_body_size=upload_body_limit(settings),
                 form_limits={"max_files": MAX_UPLOAD_FILES, "max_fields": 10},
                 summary="Upload one or several files and ingest them; returns the ingestion report")
    async def upload(files: Annotated[list[UploadFile], File(description="One or several files")]
                     ) -> JSONResponse:
        # An oversized file rejects the whole request (413); with several files, one of a wrong type is
        # reported as failed and the others still go in; a single file of a wrong type is a 415; when no
        # file went in, the answer is a 422 that carries the report. The files wait on disk (the form
        # parser spools them) until the ingestion thread reads them, one at a time.
        limit = settings.max_upload_bytes
        for f in files:
            size = f.size if f.size is not None else 0
            if size > limit:
                raise UserError("upload_too_large", f"'{f.filename}' is larger than {settings.max_upload_mb:g} MB.",
                                f"「{f.filename}」は{settings.max_upload_mb:g} MBを超えています。", status=413)
            if len(files) == 1:
                check_upload(f.filename or "", size, settings)
        batch = [(f.filename or "", f.file) for f in files]
        report = await asyncio.wrap_future(services.ingest_worker.submit(ingest_uploads, services, batch))
        if nothing_ingested(report):
            first = report.failed[0]
            return error_response(422, "nothing_ingested", f"No file could be added. {first.source}: {first.reason}",
                                  f"どのファイルも追加できませんでした。{first.source}: {first.reason_ja}",
                                  **report.to_json())
        return JSONResponse(report.to_json())

    @router.delete("/documents/{doc_id:path}", summary="Remove a document and its passages")
    def delete(doc_id: str) -> dict[str, Any]:
        # Deleted once SQLite has committed, even with the vector store down: `vectors_pending` > 0 then
        # counts the vectors a later recovery deletes (they are invisible to questions meanwhile).
        deletion = services.assistant.delete_document(doc_id)
        if deletion is None:
            raise UserError("not_found", f"No document with id '{doc_id}'.",
                            f"ID「{doc_id}」の文書はありません。", status=404)
        return {"deleted": doc_id, "vectors_pending": deletion.vectors_pending}

    @router.post("/feedback", max_body_size=JSON_BODY_LIMIT, summary="Rate an answer good or bad")
    def feedback(req: FeedbackRequest, request: Request) -> dict[str, Any]:
        answer = req.answer or services.answers.get(req.answer_id) or {"id": req.answer_id}
        question = req.question or str(answer.get("question", ""))
        user = str(request.scope.get("assistant.user", ""))
        fid = services.feedback.record("api", req.answer_id, question, answer, req.rating, req.comment, user)
        return {"id": fid, "answer_id": req.answer_id, "rating": req.rating}

    @router.get("/feedback/export", summary="All feedback as JSON lines",
                response_class=StreamingResponse)
    def feedback_export() -> StreamingResponse:
        return StreamingResponse(services.feedback.iter_jsonl(), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"'})

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                      include_in_schema=False)
    def unknown(rest: str) -> JSONResponse:
        raise UserError("not_found", f"No API route /api/{rest}.", f"API /api/{rest} はありません。", status=404)

    return router
