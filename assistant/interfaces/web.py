"""The Gradio page: a chat with streamed, cited answers and a sources panel, and a documents tab.

A thin layer over `Assistant`: every piece of text shown is escaped by `web_assets` (never Markdown).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.errors import UserError
from assistant.interfaces.api import Services, check_upload, clean_question, make_filters, merge_reports
from assistant.interfaces.gate import in_folder, upload_folder
from assistant.interfaces.web_assets import (
    Turn,
    render_chat,
    render_documents,
    render_notice,
    render_report,
    render_sources,
)
from assistant.types import Answer, Failure, IngestReport

log = logging.getLogger(__name__)

TITLE = "ブリーフィング・アシスタント / Briefing Assistant"
EXAMPLES = [
    "米ロ首脳会談はどこで行われましたか？",
    "ロシア外務省報道官は安全保障について何と述べましたか？",
    "How long did Trump postpone sanctions on Russia?",
    "What peace conditions were reportedly discussed at the summit?",
]
STREAM_EVERY_S = 0.05
GENERIC_ERROR = "サーバーでエラーが発生しました。 / Something went wrong on the server."
Outputs = tuple[Any, ...]


def _history(turns: list[Turn]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for t in turns:
        if t.answer is not None:
            out += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer["answer"]}]
    return out


def _feedback_choices(turns: list[Turn]) -> Any:
    choices = [(f"#{k} {t.question[:40]}", t.answer["id"]) for k, t in enumerate(turns, 1) if t.answer]
    return gr.Dropdown(choices=choices, value=choices[-1][1] if choices else None)


def _user(request: gr.Request | None) -> str:
    return str(getattr(request, "username", None) or "") if request is not None else ""


class Page:
    """The handlers behind the page; each returns values for the components listed at its event."""

    def __init__(self, services: Services, base_url: str = "") -> None:
        self.services = services
        self.base_url = base_url

    # Chat ------------------------------------------------------------------------------------------
    def respond(self, question: str, turns: list[Turn] | None, doc_ids: list[str] | None,
                date_from: str | None, date_to: str | None) -> Iterator[Outputs]:
        """Streams the answer into the chat; outputs: chat, sources, turns, question box, feedback target, status."""
        turns = list(turns or [])
        try:
            q = clean_question(question or "", self.services.settings.max_question_chars)
            filters = make_filters(list(doc_ids or []), date_from, date_to)
        except UserError as exc:
            yield (gr.skip(), gr.skip(), turns, gr.skip(), gr.skip(),
                   render_notice(f"{exc.message_ja} / {exc.message}", "chat-status error"))
            return
        history = _history(turns)
        turn = Turn(question=q)
        turns.append(turn)
        yield render_chat(turns, streaming=True), gr.skip(), turns, "", gr.skip(), ""
        last = time.monotonic()
        try:
            for item in self.services.assistant.ask_stream(q, history, None, filters):
                if isinstance(item, Answer):
                    turn.answer = self.services.finish_answer(item, q, "web").to_json()
                elif item:
                    turn.partial += item
                    if time.monotonic() - last >= STREAM_EVERY_S:
                        last = time.monotonic()
                        yield render_chat(turns, streaming=True), gr.skip(), turns, gr.skip(), gr.skip(), gr.skip()
        except UserError as exc:
            turn.error = f"{exc.message_ja} / {exc.message}"
        except Exception:
            log.exception("answer failed on the page for %r", q[:200])
            turn.error = GENERIC_ERROR
        if turn.answer is None and not turn.error:
            turn.error = GENERIC_ERROR
        yield (render_chat(turns), render_sources(turns, self.base_url), turns, gr.skip(),
               _feedback_choices(turns), "")

    def new_conversation(self) -> Outputs:
        return render_chat([]), render_sources([]), [], "", gr.Dropdown(choices=[], value=None), "", ""

    def send_feedback(self, answer_id: str | None, rating: str | None, comment: str, turns: list[Turn] | None,
                      request: gr.Request) -> Outputs:
        """Outputs: status, rating, comment."""
        turn = next((t for t in turns or [] if t.answer and t.answer["id"] == answer_id), None)
        if turn is None or turn.answer is None:
            return render_notice("回答を選んでください。 / Choose an answer first."), gr.skip(), gr.skip()
        if rating not in ("good", "bad"):
            return render_notice("「良い」か「悪い」を選んでください。 / Choose Good or Bad."), gr.skip(), gr.skip()
        fid = self.services.feedback.record("web", turn.answer["id"], turn.question, turn.answer, rating,
                                            comment or "", _user(request))
        return (render_notice(f"フィードバックを保存しました（#{fid}）。 / Feedback saved (#{fid})."),
                None, "")

    # Documents -------------------------------------------------------------------------------------
    def documents(self) -> Outputs:
        """Outputs: documents table, filter choices, delete choices."""
        docs = self.services.assistant.list_documents()
        choices = [(f"{d.title or d.source} ({d.doc_id})", d.doc_id) for d in docs]
        return render_documents(docs), gr.Dropdown(choices=choices), gr.Dropdown(choices=choices, value=None)

    # Gradio recognises a progress parameter by its `gr.Progress()` default.
    def upload(self, files: list[str] | None, progress: gr.Progress = gr.Progress()) -> Outputs:  # noqa: B008
        """Outputs: report, file box, then the `documents` outputs."""
        paths = [Path(f) for f in files or []]
        if not paths:
            return (render_notice("ファイルを選んでください。 / Choose files to upload."), gr.skip(),
                    *self.documents())
        cache = upload_folder()
        if any(not in_folder(str(p), cache) for p in paths):  # the gate already refuses these
            log.warning("refused files outside Gradio's upload cache: %r", [str(p) for p in paths][:3])
            return render_notice("ファイルはアップロードしたものしか使えません。 / Files can only come from an upload.",
                                 "error"), None, *self.documents()

        def ingest_all() -> list[IngestReport]:
            reports: list[IngestReport] = []
            for i, path in enumerate(paths):
                def step(done: int, total: int, what: str, i: int = i, name: str = path.name) -> None:
                    frac = (i + (done / total if total else 1.0)) / len(paths)
                    progress(frac, desc=f"{name}: {what}")
                progress(i / len(paths), desc=f"{path.name}")
                try:
                    name = check_upload(path.name, path.stat().st_size, self.services.settings)
                    reports.append(self.services.assistant.add_upload(name, path.read_bytes(), progress=step))
                except UserError as exc:
                    reports.append(IngestReport(failed=[Failure(path.name, exc.message, exc.message_ja)]))
                except Exception:
                    log.exception("upload of %s failed", path.name)
                    reports.append(IngestReport(failed=[Failure(path.name, "internal error", "内部エラー")]))
            return reports

        reports = self.services.ingest_worker.submit(ingest_all).result()
        return render_report(merge_reports(reports)), None, *self.documents()

    def delete(self, doc_id: str | None) -> Outputs:
        """Outputs: report, then the `documents` outputs."""
        if not doc_id:
            return render_notice("削除する文書を選んでください。 / Choose a document to delete."), *self.documents()
        deletion = self.services.assistant.delete_document(doc_id)
        msg = (f"削除しました: {doc_id} / Deleted: {doc_id}" if deletion is not None
               else f"見つかりません: {doc_id} / Not found: {doc_id}")
        return render_notice(msg), *self.documents()

    def reindex(self, progress: gr.Progress = gr.Progress()) -> Outputs:  # noqa: B008
        """Re-reads the corpus folders; outputs: report, then the `documents` outputs."""
        def step(done: int, total: int, what: str) -> None:
            progress((done, total) if total else 0.0, desc=what)
        # Uploads keep their own records; re-indexing re-reads the corpus folders (changed files only).
        try:
            report = self.services.ingest_worker.submit(
                self.services.assistant.ingest, self.services.corpus_dirs, progress=step).result()
        except UserError as exc:
            return render_notice(f"{exc.message_ja} / {exc.message}"), *self.documents()
        return render_report(report, "再インデックスの結果 / Re-index report"), *self.documents()


def build_blocks(services: Services, base_url: str = "") -> gr.Blocks:
    """The page; its CSS and script are passed where it is mounted (see `server.py`)."""
    page = Page(services, base_url)
    private: dict[str, Any] = {"api_visibility": "private"}
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.HTML(f"<h1 style='margin:0'>{TITLE}</h1><p style='margin:2px 0 0'>資料に基づいて、出典付きで答えます。"
                " / Answers from the briefings, with citations.</p>")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("チャット / Chat", id="chat"), gr.Row():
                with gr.Column(scale=3):
                    chat = gr.HTML(render_chat([]), elem_id="chat")
                    status = gr.HTML("", elem_id="chat-status")
                    question = gr.Textbox(label="質問 / Question", lines=2, max_lines=8, elem_id="question",
                                          placeholder="例: 米ロ首脳会談はどこで行われましたか？ / "
                                                      "e.g. Where did the summit take place?")
                    with gr.Row():
                        send = gr.Button("送信 / Send", variant="primary", elem_id="send")
                        new = gr.Button("新しい会話 / New conversation", elem_id="new-conversation")
                    gr.Examples([[e] for e in EXAMPLES], inputs=[question], label="質問の例 / Example questions")
                    with gr.Accordion("絞り込み / Filters", open=False):
                        doc_filter = gr.Dropdown(label="文書 / Documents", multiselect=True, choices=[],
                                                 elem_id="doc-filter")
                        with gr.Row():
                            date_from = gr.Textbox(label="開始日 / From (YYYY-MM-DD)", elem_id="date-from")
                            date_to = gr.Textbox(label="終了日 / To (YYYY-MM-DD)", elem_id="date-to")
                    with gr.Accordion("フィードバック / Feedback", open=True, elem_id="feedback"):
                        fb_answer = gr.Dropdown(label="対象の回答 / Answer", choices=[], elem_id="fb-answer")
                        fb_rating = gr.Radio([("良い / Good", "good"), ("悪い / Bad", "bad")],
                                             label="評価 / Rating", elem_id="fb-rating")
                        fb_comment = gr.Textbox(label="コメント（任意） / Comment (optional)", elem_id="fb-comment")
                        fb_send = gr.Button("フィードバックを送る / Send feedback", elem_id="fb-send")
                        fb_status = gr.HTML("", elem_id="fb-status")
                with gr.Column(scale=2):
                    sources = gr.HTML(render_sources([], base_url), elem_id="sources")
            with gr.Tab("文書 / Documents", id="documents"):
                docs_table = gr.HTML("", elem_id="docs")
                refresh = gr.Button("一覧を更新 / Refresh list", size="sm")
                with gr.Row():
                    with gr.Column(scale=3):
                        files = gr.File(label="アップロード（複数可） / Upload (several files allowed)",
                                        file_count="multiple", type="filepath", elem_id="upload-files")
                        upload = gr.Button("取り込む / Ingest", variant="primary", elem_id="upload-btn")
                    with gr.Column(scale=2):
                        delete_choice = gr.Dropdown(label="削除する文書 / Document to delete", choices=[],
                                                    elem_id="delete-choice")
                        delete = gr.Button("削除 / Delete", variant="stop", elem_id="delete-btn")
                        reindex = gr.Button("再インデックス（corpus/） / Re-index (corpus/)", elem_id="reindex-btn")
                report = gr.HTML("", elem_id="report")

        doc_outputs = [docs_table, doc_filter, delete_choice]
        ask_outputs = [chat, sources, turns, question, fb_answer, status]
        for trigger in (send.click, question.submit):
            trigger(page.respond, [question, turns, doc_filter, date_from, date_to], ask_outputs,
                    concurrency_limit=4, concurrency_id="ask", show_progress="hidden", **private)
        new.click(page.new_conversation, None, [chat, sources, turns, question, fb_answer, fb_status, status],
                  **private)
        fb_send.click(page.send_feedback, [fb_answer, fb_rating, fb_comment, turns],
                      [fb_status, fb_rating, fb_comment], **private)
        blocks.load(page.documents, None, doc_outputs, **private)
        refresh.click(page.documents, None, doc_outputs, **private)
        upload.click(page.upload, [files], [report, files, *doc_outputs], concurrency_id="ingest", **private)
        delete.click(page.delete, [delete_choice], [report, *doc_outputs], concurrency_id="ingest", **private)
        reindex.click(page.reindex, None, [report, *doc_outputs], concurrency_id="ingest", **private)
    return blocks
