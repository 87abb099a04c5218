"""The page's CSS and script, and the HTML fragments it shows, built from escaped text only.

Everything that comes from a document, a question or an answer goes through `esc` before it is
placed in markup; nothing is ever rendered as Markdown. The only markup added is our own: citation
links, `<mark>` around a verified quote, and the layout around them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as url_quote

from assistant.answering.refusal import NEAR_LABEL
from assistant.core import DocumentInfo
from assistant.types import Chunk, IngestReport

CITE = re.compile(r"\[(\d{1,3})\]")

CSS = """
.chat-log { display: flex; flex-direction: column; gap: 12px; min-height: 320px; max-height: 62vh;
  overflow-y: auto; padding: 8px; }
.chat-empty { color: var(--body-text-color-subdued); padding: 24px 8px; }
.msg { border-radius: 10px; padding: 10px 14px; max-width: 92%; line-height: 1.6; }
.msg .who { font-size: 0.78em; color: var(--body-text-color-subdued); margin-bottom: 2px; }
.msg .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--color-accent-soft); }
.msg.bot { align-self: flex-start; background: var(--background-fill-secondary);
  border: 1px solid var(--border-color-primary); }
.msg.error { border-color: var(--error-border-color, #e11d48); }
.msg .note { font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 6px; }
.msg.streaming .text::after { content: "▍"; animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
a.cite { font-weight: 600; text-decoration: none; color: var(--color-accent); cursor: pointer;
  padding: 0 1px; border-radius: 3px; }
a.cite:hover, a.cite:focus { background: var(--color-accent-soft); text-decoration: underline; }
.sources-panel { max-height: 80vh; overflow-y: auto; }
.sources-panel h3 { margin: 4px 0 8px; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin-bottom: 10px; }
.src-card.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.src-card .src-title { font-weight: 600; }
.src-card .src-meta { font-size: 0.8em; color: var(--body-text-color-subdued); margin: 2px 0 6px; }
.src-card .passage { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; margin: 0;
  padding-left: 8px; border-left: 3px solid var(--border-color-primary); }
.src-card mark { background: #fde68a; color: #111; padding: 0 1px; }
.src-card.near { border-style: dashed; }
.near-note { font-size: 0.85em; color: var(--body-text-color-subdued); }
.src-card .glosses { font-size: 0.8em; color: var(--body-text-color-subdued); margin: 4px 0; }
.src-card .gloss-label { font-style: italic; }
.src-card .open-doc { font-size: 0.85em; }
.docs-table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.docs-table th, .docs-table td { border-bottom: 1px solid var(--border-color-primary); padding: 4px 6px;
  text-align: left; vertical-align: top; overflow-wrap: anywhere; }
.report ul { margin: 2px 0 8px 18px; }
.report .failed { color: var(--error-text-color, #b91c1c); }
.fb-status { font-size: 0.9em; }
"""

# Runs once when the page loads: clicking a citation shows that answer's sources and the cited card.
JS = """
() => {
  if (window.__assistantCitations) { return; }
  window.__assistantCitations = true;
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.cite') : null;
    if (!link) { return; }
    event.preventDefault();
    const k = link.dataset.answer;
    const n = link.dataset.n;
    document.querySelectorAll('.src-group').forEach((g) => { g.hidden = g.dataset.answer !== k; });
    document.querySelectorAll('.src-card.active').forEach((c) => c.classList.remove('active'));
    const card = document.getElementById('src-' + k + '-' + n);
    if (card) {
      card.classList.add('active');
      card.scrollIntoView({block: 'nearest'});
    }
  });
}
"""


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


@dataclass
class Turn:
    """One question and its answer (JSON form) as the page holds them."""

    question: str
    answer: dict[str, Any] | None = None
    partial: str = ""
    error: str = ""


def answer_html(text: str, k: int, cited: set[int]) -> str:
    """Escaped answer text with each `[n]` that names a citation turned into a link to its source."""
    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in cited:
            return m.group(0)
        return (f'<a class="cite" href="#src-{k}-{n}" data-answer="{k}" data-n="{n}" '
                f'title="出典 / Source {n}">[{n}]</a>')
    return CITE.sub(link, esc(text))


def render_chat(turns: list[Turn], streaming: bool = False) -> str:
    if not turns:
        return ('<div class="chat-log" id="chat-log"><div class="chat-empty">'
                "質問を入力するか、下の例を選んでください。<br>Type a question or pick an example below."
                "</div></div>")
    parts = ['<div class="chat-log" id="chat-log">']
    for k, t in enumerate(turns, 1):
        parts.append(f'<div class="msg user" data-turn="{k}"><div class="who">あなた / You</div>'
                     f'<div class="text">{esc(t.question)}</div></div>')
        if t.error:
            parts.append(f'<div class="msg bot error" data-turn="{k}"><div class="who">アシスタント / Assistant'
                         f'</div><div class="text">{esc(t.error)}</div></div>')
        elif t.answer is not None:
            a = t.answer
            cited = {int(c["n"]) for c in a.get("citations", [])}
            note = ""
            if a.get("refused"):
                note = ('<div class="note">回答は出せませんでした。出典欄に最も近い箇所を表示しています。 / '
                        "No answer given; the closest passages are shown under Sources.</div>"
                        if a.get("closest") else
                        '<div class="note">回答は出せませんでした / No answer given</div>')
            parts.append(
                f'<div class="msg bot answer" data-turn="{k}" data-answer-id="{esc(a.get("id", ""))}">'
                f'<div class="who">アシスタント / Assistant · 回答 #{k} / Answer #{k}</div>'
                f'<div class="text">{answer_html(a.get("answer", ""), k, cited)}</div>{note}</div>'
            )
        else:
            cls = "msg bot streaming" if streaming and k == len(turns) else "msg bot"
            text = esc(t.partial) if t.partial else "検索中… / Searching…"
            parts.append(f'<div class="{cls}" data-turn="{k}"><div class="who">アシスタント / Assistant</div>'
                         f'<div class="text">{text}</div></div>')
    parts.append("</div>")
    return "".join(parts)


def _glosses_html(glosses: list[dict[str, str]]) -> str:
    """The quote's dictionary glosses (English questions): a reading aid, marked as not from the document."""
    if not glosses:
        return ""
    from assistant.answering.extractive import GLOSS_LABEL

    items = " · ".join(f'<span lang="ja">{esc(g.get("ja", ""))}</span> {esc(g.get("en", ""))}' for g in glosses)
    return f'<div class="glosses"><span class="gloss-label">{esc(GLOSS_LABEL)}:</span> {items}</div>'


def _marked_passage(text: str, quote: str, start: int, end: int) -> str:
    if not (0 <= start < end <= len(text) and text[start:end] == quote):
        start = text.find(quote) if quote else -1
        end = start + len(quote)
    if start < 0 or not quote:
        return esc(text)
    return f"{esc(text[:start])}<mark>{esc(text[start:end])}</mark>{esc(text[end:])}"


def document_link(doc_id: str, chunk_id: str, base_url: str = "") -> str:
    return f"{base_url}/documents/{url_quote(doc_id, safe='')}#chunk-{url_quote(chunk_id, safe='')}"


def render_sources(turns: list[Turn], base_url: str = "") -> str:
    """One group of source cards per answer; only the latest group is shown until a citation is clicked."""
    answered = [(k, t.answer) for k, t in enumerate(turns, 1) if t.answer is not None]
    parts = ['<div class="sources-panel" id="sources-panel"><h3>出典 / Sources</h3>']
    if not answered:
        parts.append('<p class="chat-empty">回答の [n] を押すと、引用元の箇所がここに表示されます。<br>'
                     "Click a [n] in an answer to see the cited passage here.</p>")
    last = answered[-1][0] if answered else 0
    for k, a in answered:
        hidden = "" if k == last else " hidden"
        parts.append(f'<section class="src-group" data-answer="{k}"{hidden}>'
                     f'<div class="src-meta">回答 #{k} / Answer #{k}: {esc(a.get("question", ""))}</div>')
        citations = a.get("citations", [])
        near = [] if citations else a.get("closest") or []
        if near:
            parts.append(f'<p class="near-note">{esc(NEAR_LABEL["ja"])}<br>{esc(NEAR_LABEL["en"])}</p>')
        elif not citations:
            parts.append("<p>この回答には出典がありません。 / This answer has no citations.</p>")
        for kind, c in [("src", c) for c in citations] + [("near", c) for c in near]:
            n = int(c["n"])
            meta = [f"セクション / Section: {esc(c.get('section') or '—')}"]
            if c.get("page") is not None:
                meta.append(f"ページ / Page: {esc(c['page'])}")
            if c.get("date"):
                meta.append(f"日付 / Date: {esc(c['date'])}")
            href = esc(document_link(c["doc_id"], c["chunk_id"], base_url))
            label = f"[{n}] " if kind == "src" else ""
            parts.append(
                f'<div class="src-card {kind}" id="{kind}-{k}-{n}" data-n="{n}">'
                f'<div class="src-title">{label}{esc(c.get("title") or c.get("source") or c["doc_id"])}</div>'
                f'<div class="src-meta">{" · ".join(meta)}</div>'
                f'<blockquote class="passage">'
                f'{_marked_passage(c.get("text", ""), c.get("quote", ""), int(c.get("start", 0)), int(c.get("end", 0)))}'
                f"</blockquote>"
                f"{_glosses_html(c.get('glosses') or [])}"
                f'<a class="open-doc" href="{href}" target="_blank" rel="noopener noreferrer">'
                f"文書全体をこの箇所で開く / Open the whole document here</a></div>"
            )
        parts.append("</section>")
    parts.append("</div>")
    return "".join(parts)


def render_documents(docs: list[DocumentInfo]) -> str:
    if not docs:
        return "<p>文書はまだありません。 / No documents yet.</p>"
    head = ("<tr><th>タイトル / Title</th><th>ID</th><th>日付 / Date</th><th>チャンク数 / Chunks</th>"
            "<th>言語 / Language</th><th>取り込み元 / Origin</th><th>取り込み日時 / Ingested</th></tr>")
    rows = [
        f"<tr><td>{esc(d.title or d.source)}</td><td><code>{esc(d.doc_id)}</code></td><td>{esc(d.date)}</td>"
        f"<td>{d.chunks}</td><td>{esc(d.language)}</td><td>{esc(d.origin)}</td><td>{esc(d.ingested_at)}</td></tr>"
        for d in docs
    ]
    return (f'<p>{len(docs)} 件 / {len(docs)} documents, '
            f'{sum(d.chunks for d in docs)} チャンク / chunks</p>'
            f'<table class="docs-table" id="docs-table">{head}{"".join(rows)}</table>')


def render_report(report: IngestReport, title: str = "取り込み結果 / Ingestion report") -> str:
    def items(label: str, values: list[str], cls: str = "") -> str:
        if not values:
            return ""
        lis = "".join(f"<li>{esc(v)}</li>" for v in values)
        return f'<div class="{cls}">{label} ({len(values)})<ul>{lis}</ul></div>'

    failed = [f"{f.source}: {f.reason_ja or f.reason} / {f.reason}" for f in report.failed]
    warnings = [f"{w.get('source', '')}: {w.get('warning', '')}" for w in report.warnings]
    return (
        f'<div class="report" id="ingest-report"><strong>{esc(title)}</strong>'
        + items("追加 / Added", report.added)
        + items("更新 / Changed", report.changed)
        + items("スキップ（重複または変更なし） / Skipped (duplicate or unchanged)", report.skipped)
        + items("削除 / Removed", report.removed)
        + items("失敗 / Failed", failed, "failed")
        + items("警告 / Warnings", warnings)
        + f"<p>チャンク / Chunks: {report.chunks} · {report.seconds:.1f} 秒 / s</p></div>"
    )


def render_notice(text: str, cls: str = "fb-status") -> str:
    return f'<div class="{cls}">{esc(text)}</div>'


def render_document_page(info: DocumentInfo | None, doc_id: str, chunks: list[Chunk]) -> str:
    """A standalone page with the whole document as escaped text; each chunk has an `id="chunk-…"` anchor."""
    title = (info.title if info else "") or (chunks[0].title if chunks else "") or doc_id
    meta = []
    if info is not None:
        meta = [f"ID: {esc(info.doc_id)}", f"日付 / Date: {esc(info.date or '—')}",
                f"出典ファイル / Source: {esc(info.source)}", f"チャンク数 / Chunks: {info.chunks}"]
    sections = []
    current = None
    for c in chunks:
        if c.section and c.section != current:
            sections.append(f'<h2 class="section">{esc(c.section)}</h2>')
            current = c.section
        page = f' <span class="page">p. {esc(c.page)}</span>' if c.page is not None else ""
        sections.append(f'<section class="chunk" id="chunk-{esc(c.chunk_id)}">'
                        f'<a class="anchor" href="#chunk-{esc(c.chunk_id)}">#{c.ordinal + 1}</a>{page}'
                        f'<div class="text">{esc(c.text)}</div></section>')
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK JP", sans-serif; max-width: 52rem; margin: 2rem auto;
  padding: 0 1rem; line-height: 1.8; color: #1f2937; }}
.meta {{ color: #6b7280; font-size: 0.9em; }}
.chunk {{ padding: 6px 10px; border-left: 3px solid transparent; scroll-margin-top: 2rem; }}
.chunk:target {{ border-left-color: #d97706; background: #fef3c7; }}
.chunk .text {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
.anchor, .page {{ font-size: 0.75em; color: #9ca3af; text-decoration: none; }}
</style></head>
<body><p><a href="/">← チャットに戻る / Back to the chat</a></p>
<h1>{esc(title)}</h1><p class="meta">{" · ".join(meta)}</p>
{"".join(sections) or "<p>この文書には本文がありません。 / This document has no text.</p>"}
</body></html>"""
