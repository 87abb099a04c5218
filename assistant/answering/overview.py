"""Questions about a whole document ("このレポートの要点をまとめてください", "What is this briefing
about?"): answered by the document's central sentences, quoted in the document's order.

Such a question names no topic, so retrieval only tells which document is meant (the first passage's).
The answerer then reads that document's first `MAX_CHUNKS` passages and picks the sentences closest to
their centroid (what the document is mostly about), preferring the first sentence of a section and
a field heading ("展望：…を予想"), where briefings state their conclusions, and leaving out sentences
that repeat a chosen one. List items and table rows are read only when the document has no running
text: without their label they say little.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.answering.context import sentence_context
from assistant.answering.extractive import (
    INSTRUCTION_RE,
    MAX_QUOTES,
    MIN_SENTENCE_CHARS,
    Evidence,
    Scored,
    SentenceScorer,
    _trim,
    content_tokens,
)
from assistant.types import Passage

# The passages of the document read for its overview: a long document is summarised from its start.
MAX_CHUNKS = 20
# A section's first sentence or a field heading states what the section is about.
LEAD_BONUS = 0.02
# A sentence this close to a chosen one says the same thing again.
REPEAT_COSINE = 0.92

_SUMMARY = re.compile(
    r"要点|要約|概要|まとめ|纏め|ポイント|主旨|趣旨|大意|あらまし|論点|結論|何について|何が書かれ|どんな内容|どのような内容"
    r"|\b(?:summar(?:y|ies|ise|ize)|main points?|key points?|takeaways?|overview|gist|tl;?dr|conclusions?)\b"
    r"|\bwhat(?:'s| is| are) (?:this|that|the) (?:\w+ )?(?:briefing|report|document|memo|paper|file|text)s? about\b",
    re.IGNORECASE,
)
# Words that point at the document itself or ask for its overview: they name no topic.
_DOCUMENT_WORDS = frozenset([
    "レポート", "リポート", "報告", "報告書", "資料", "文書", "ブリーフィング", "記事", "論文", "メモ", "本書", "本稿", "内容",
    "全体", "要点", "要約", "概要", "まとめ", "まとめる", "纏め", "纏める", "ポイント", "主旨", "趣旨", "大意", "あらまし",
    "論点", "結論", "書く", "書ける", "述べる", "簡単", "簡潔", "短い", "主", "全文", "ファイル", "説明", "教える", "下さる", "くれる", "欲しい",
    "briefing", "report", "document", "memo", "paper", "file", "text", "summary", "summarise", "summarize",
    "main", "point", "key", "takeaway", "overview", "gist", "tl;dr", "tldr", "conclusion", "short", "brief",
    "briefly", "give", "me", "please", "whole", "write", "written", "cover",
])


def asks_overview(question: str) -> bool:
    """Whether the question asks what a document says as a whole and names no topic of its own."""
    if not _SUMMARY.search(question):
        return False
    from assistant.text.normalize import question_core

    return not (content_tokens(question_core(question)) - _DOCUMENT_WORDS)


@dataclass
class Overview:
    evidence: Evidence
    vectors: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (passage, start) -> vector


def lead_evidence(scorer: SentenceScorer, passages: Sequence[Passage]) -> Overview:
    """The document's sentences (and field headings), scored by closeness to the document's centroid."""
    from assistant.text.chunking import split_sentences

    spans: list[tuple[int, int, int, str, bool]] = []
    items: list[tuple[int, int, int, str, bool]] = []  # list items and table rows: only without running text
    seen: set[str] = set()
    last_section: str | None = None
    for i, p in enumerate(passages):
        new_section = p.section != last_section
        last_section = p.section
        first = True
        for s, e in split_sentences(p.text):
            s, e = _trim(p.text, s, e)
            text = p.text[s:e]
            role = sentence_context(p, s, e).role
            # Headings and header rows name topics; a heading that is a field ("展望：…を予想") states one.
            topic = role.kind == "header" or (role.kind == "heading" and not role.key)
            if e - s < MIN_SENTENCE_CHARS or topic or text in seen or INSTRUCTION_RE.search(text):
                continue
            seen.add(text)
            if role.label:
                # An item means little without its label: a document's gist is in its running text.
                items.append((i, s, e, text, False))
                continue
            lead = (new_section and first) or bool(role.key)
            spans.append((i, s, e, text, lead))
            first = False
    spans = spans or items
    if not spans:
        return Overview(Evidence([]))
    vecs = scorer.sentence_vectors([t for *_, t, _ in spans])
    centroid = vecs.mean(axis=0)
    centroid = centroid / (np.linalg.norm(centroid) or 1.0)
    central = vecs @ centroid
    scored = [Scored(i, s, e, text, float(c), 0.0, LEAD_BONUS * lead, False, float(c) + LEAD_BONUS * lead)
              for (i, s, e, text, lead), c in zip(spans, central, strict=True)]
    return Overview(Evidence(scored, many=True), {(x.passage, x.start): v for x, v in zip(scored, vecs, strict=True)})


def select(overview: Overview) -> list[Scored]:
    """Up to `MAX_QUOTES` central sentences that do not repeat one another, in the document's order."""
    chosen: list[Scored] = []
    for s in overview.evidence.ranked():
        if len(chosen) >= MAX_QUOTES:
            break
        v = overview.vectors[(s.passage, s.start)]
        if any(float(v @ overview.vectors[(c.passage, c.start)]) > REPEAT_COSINE for c in chosen):
            continue
        chosen.append(s)
    return sorted(chosen, key=lambda s: (s.passage, s.start))
