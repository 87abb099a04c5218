"""Block Kit rendering of an `Answer` for Slack, and Japanese-safe splitting within Slack's limits.

Slack counts text in UTF-16 code units, so lengths here do too (an emoji outside the BMP counts 2).
Text is split at sentence ends (。！？!? and newlines), never inside a sentence unless one sentence alone
exceeds a block, and never inside a surrogate pair or a grapheme cluster (ZWJ emoji, combining marks).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from assistant.answering.refusal import NEAR_LABEL
from assistant.types import Answer, Citation

SECTION_CHARS = 3000  # Block Kit: a section's text is at most 3,000 characters
MAX_BLOCKS = 50  # Block Kit: at most 50 blocks in a message
# Slack truncates a message's text at 40,000 characters and shows long messages poorly; a few sections per
# message keeps each one readable and far from every limit.
MESSAGE_CHARS = 12_000
FALLBACK_CHARS = 3000  # the notification text sent beside the blocks

ACTION_GOOD = "feedback_good"
ACTION_BAD = "feedback_bad"

_TERMINATORS = "。！？!?．"
# Closing brackets and quotes that stay with the sentence they end.
_CLOSERS = "」』）》〉】〕］)]”’\"'"
_CITATION_VARIANTS = re.compile(r"(?:\[\^(\d{1,3})\]|［(\d{1,3})］|【(\d{1,3})】)")
_SOFT_BREAKS = "、，,;；:： \u3000"

_TEXT = {
    "sources": {"ja": "*出典 / Sources*", "en": "*Sources / 出典*"},
    "good": {"ja": "👍 役に立った", "en": "👍 Helpful"},
    "bad": {"ja": "👎 役に立たなかった", "en": "👎 Not helpful"},
    "refused": {
        "ja": "資料の中に根拠が見つからなかったため、この質問にはお答えできません。",
        "en": "I could not find support for an answer in the documents, so I cannot answer this question.",
    },
    "error": {
        "ja": "申し訳ありません。回答の作成中にエラーが発生しました。しばらくしてからもう一度お試しください。",
        "en": "Sorry, something went wrong while answering. Please try again in a moment.",
    },
    "empty": {
        "ja": "質問を書いてください。例: @assistant 停戦交渉の現状は？",
        "en": "Please write a question, e.g. @assistant What is the state of the ceasefire talks?",
    },
    "usage": {
        "ja": "質問を書いてください。例: `/ask 停戦交渉の現状は？`",
        "en": "Please type a question, e.g. `/ask What is the state of the ceasefire talks?`",
    },
    "working": {"ja": "回答を作成しています…", "en": "Working on an answer…"},
    "thanks": {"ja": "フィードバックありがとうございます。", "en": "Thank you for the feedback."},
}

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")
_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def t(key: str, language: str) -> str:
    """A fixed string in Japanese or English."""
    return _TEXT[key]["ja" if language == "ja" else "en"]


# Reading what users wrote ---------------------------------------------------------------------------------

def language_of(text: str) -> str:
    """'ja' when the text has any kana or kanji, or no Latin letters at all; else 'en'."""
    return "ja" if _JAPANESE.search(text) or not _LATIN.search(text) else "en"


def clean_text(text: str, bot_user_id: str | None = None) -> str:
    """Slack's message text as plain text: the bot's mention removed, links and entities resolved."""

    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "" if bot_user_id and target[1:] == bot_user_id else f"@{label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"
        return label or target

    return unescape_mrkdwn(_LINK.sub(link, text)).strip()


@dataclass
class SlackMessage:
    """One message to post: mrkdwn fallback text and its blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# Lengths and safe cut points ------------------------------------------------------------------------------

def slack_len(text: str) -> int:
    """Length in UTF-16 code units, as Slack counts it."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _joins_previous(ch: str) -> bool:
    """True for a character that must stay with the one before it."""
    o = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or o == 0x200D  # zero-width joiner
        or 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF  # variation selectors
        or 0x1F3FB <= o <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= o <= 0xE007F  # tag characters (flag sequences)
        or 0xDC00 <= o <= 0xDFFF  # a lone low surrogate belongs to the high one before it
        or 0x3099 <= o <= 0x309A  # combining kana voicing marks
    )


_ESCAPED_WIDTH = {"&": 5, "<": 4, ">": 4}


def _width(ch: str, escaped: bool) -> int:
    if escaped and ch in _ESCAPED_WIDTH:
        return _ESCAPED_WIDTH[ch]
    return 2 if ord(ch) > 0xFFFF else 1


def safe_cut(text: str, limit: int, escaped: bool = False) -> int:
    """The largest index `i` with `text[:i]` within `limit` units that does not split a grapheme.

    With `escaped`, lengths are those of the text after `escape_mrkdwn`.
    """
    used, i = 0, 0
    while i < len(text):
        w = _width(text[i], escaped)
        if used + w > limit:
            break
        used += w
        i += 1
    fits = i
    # Step back while the next character belongs to the previous one, or the previous one joins forward.
    while 0 < i < len(text) and (_joins_previous(text[i]) or text[i - 1] == "\u200d"):
        i -= 1
    if i == 0:  # a single cluster longer than the limit: cut it between code points, never less than one
        i = max(fits, 1) if text else 0
    return i


def hard_split(text: str, limit: int, escaped: bool = False) -> list[str]:
    """Splits one over-long sentence, preferring a comma or a space in the last fifth of each piece."""
    pieces: list[str] = []
    while sum(_width(ch, escaped) for ch in text) > limit:
        cut = safe_cut(text, limit, escaped)
        soft = max(text.rfind(b, 0, cut) for b in _SOFT_BREAKS)
        if soft >= cut * 4 // 5:
            cut = soft + 1
            while cut < len(text) and _joins_previous(text[cut]):
                cut += 1
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces


def sentences(text: str) -> list[str]:
    """The text cut after each sentence end; joining the pieces gives the text back exactly.

    A sentence ends at 。！？!? (with any closing brackets after it), at a run of newlines, or at an English
    full stop followed by white space, so "3.5" and "U.S. policy" stay whole.
    """
    out: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        end = 0
        if ch == "\n":
            end = i + 1
            while end < n and text[end] == "\n":
                end += 1
        elif ch in _TERMINATORS or ch == ".":
            j = i + 1
            while j < n and (text[j] in _TERMINATORS or text[j] == "."):
                j += 1
            while j < n and text[j] in _CLOSERS:
                j += 1
            if ch != "." or j == n or text[j].isspace():
                while j < n and text[j] in " \t\u3000":  # the space after a sentence stays with it
                    j += 1
                end = j
        if end:
            out.append(text[start:end])
            start = i = end
        else:
            i += 1
    if start < n:
        out.append(text[start:])
    return out


# Escaping -------------------------------------------------------------------------------------------------

def escape_mrkdwn(text: str) -> str:
    """Escapes the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_mrkdwn(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_citations(text: str) -> str:
    """Writes citation markers as plain `[n]` (the answer may use `[^n]`, `［n］` or `【n】`)."""
    return _CITATION_VARIANTS.sub(lambda m: f"[{m.group(1) or m.group(2) or m.group(3)}]", text)


def split_text(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """Escaped mrkdwn pieces of at most `limit` UTF-16 units, cut only between sentences when possible."""
    chunks: list[str] = []
    current = ""
    for sentence in sentences(text):
        for raw in hard_split(sentence, limit, escaped=True):
            unit = escape_mrkdwn(raw)
            if current and slack_len(current) + slack_len(unit) > limit:
                chunks.append(current)
                current = ""
            current += unit
    if current:
        chunks.append(current)
    return [c.strip("\n") for c in chunks if c.strip()]


# Rendering ------------------------------------------------------------------------------------------------

def document_url(public_url: str, doc_id: str, chunk_id: str) -> str:
    """The passage in the web UI's document viewer (same form as the web page's links)."""
    return f"{public_url.rstrip('/')}/documents/{quote(doc_id, safe='')}#chunk-{quote(chunk_id, safe='')}"


def _glosses(c: Citation) -> str:
    """The quote's dictionary glosses on a line of their own, in italics, or ""."""
    from assistant.answering.extractive import GLOSS_LABEL, gloss_text

    return f"\n_{GLOSS_LABEL}: {escape_mrkdwn(gloss_text(c.glosses))}_" if c.glosses else ""


def source_line(c: Citation, public_url: str | None, numbered: bool = True) -> str:
    """`[n] title — section — p.page`, the `[n] title` part linked to the passage when a URL is known."""
    label = f"[{c.n}] {c.title or c.doc_id}" if numbered else (c.title or c.doc_id)
    rest = "".join(f" — {part}" for part in (c.section, f"p.{c.page}" if c.page is not None else "") if part)
    if public_url:
        # Inside <url|label> a "|" would end the URL part early; show a full-width bar instead.
        linked = escape_mrkdwn(label.replace("|", "｜"))
        return f"<{document_url(public_url, c.doc_id, c.chunk_id)}|{linked}>{escape_mrkdwn(rest)}"
    return escape_mrkdwn(label + rest)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def feedback_block(answer_id: str, language: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "feedback",
        "elements": [
            {"type": "button", "action_id": ACTION_GOOD, "value": answer_id,
             "text": {"type": "plain_text", "text": t("good", language), "emoji": True}},
            {"type": "button", "action_id": ACTION_BAD, "value": answer_id,
             "text": {"type": "plain_text", "text": t("bad", language), "emoji": True}},
        ],
    }


def answer_text(answer: Answer) -> str:
    """The text to show: the answer with plain markers, or a refusal in the question's language."""
    if answer.refused:
        return answer.answer.strip() or t("refused", answer.language)
    return plain_citations(answer.answer.strip())


def render_answer(answer: Answer, public_url: str | None = None, *, buttons: bool = True) -> list[SlackMessage]:
    """The answer as one or more messages: its text, then sources and the feedback buttons in the last."""
    blocks = [section(piece) for piece in split_text(answer_text(answer))]
    tail: list[dict[str, Any]] = []
    cited = [c for c in answer.citations if not answer.refused]
    if cited:
        tail.append({"type": "divider"})
        lines = [t("sources", answer.language)] + [source_line(c, public_url) + _glosses(c) for c in cited]
        tail.extend(section(piece) for piece in pack_lines(lines, SECTION_CHARS))
    elif answer.refused and answer.closest:
        # Pointers, not an answer: the sentences that came closest, unnumbered and not cited.
        tail.append({"type": "divider"})
        lines = [f"_{escape_mrkdwn(NEAR_LABEL.get(answer.language, NEAR_LABEL['en']))}_"]
        for c in answer.closest:
            lines.append(f"• {source_line(c, public_url, numbered=False)}\n> {escape_mrkdwn(' '.join(c.quote.split()))}"
                         + _glosses(c))
        tail.extend(section(piece) for piece in pack_lines(lines, SECTION_CHARS))
    if buttons and answer.id:
        tail.append(feedback_block(answer.id, answer.language))
    return pack_messages(blocks, tail, answer.language)


def pack_lines(lines: Iterable[str], limit: int) -> Iterator[str]:
    """Joins lines with newlines into pieces of at most `limit` units (a longer line is cut safely)."""
    current = ""
    for line in lines:
        while slack_len(line) > limit:
            cut = safe_cut(line, limit)
            yield line[:cut]
            line = line[cut:]
        if current and slack_len(current) + 1 + slack_len(line) > limit:
            yield current
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        yield current


def _block_chars(block: dict[str, Any]) -> int:
    text = block.get("text")
    return slack_len(text["text"]) if isinstance(text, dict) else 0


def pack_messages(body: list[dict[str, Any]], tail: list[dict[str, Any]], language: str = "en",
                  max_blocks: int = MAX_BLOCKS, message_chars: int = MESSAGE_CHARS) -> list[SlackMessage]:
    """Distributes blocks over messages within the block and character limits; `tail` ends the last one."""
    messages: list[list[dict[str, Any]]] = [[]]
    for block in body:
        current = messages[-1]
        chars = sum(_block_chars(b) for b in current)
        if current and (len(current) + 1 > max_blocks or chars + _block_chars(block) > message_chars):
            messages.append([])
        messages[-1].append(block)
    last = messages[-1]
    if last and (len(last) + len(tail) > max_blocks
                 or sum(_block_chars(b) for b in last + tail) > message_chars):
        messages.append([])
    messages[-1].extend(tail)
    body_ids = {id(b) for b in body}
    out: list[SlackMessage] = []
    for blocks in messages:
        text = "\n".join(b["text"]["text"] for b in blocks if id(b) in body_ids)
        out.append(SlackMessage(text=_fallback(text or t("sources", language)), blocks=blocks))
    return out


def _fallback(text: str) -> str:
    if slack_len(text) <= FALLBACK_CHARS:
        return text
    return text[: safe_cut(text, FALLBACK_CHARS - 1)] + "…"


def notice(text: str) -> list[SlackMessage]:
    """A short plain message (errors, hints), escaped."""
    escaped = escape_mrkdwn(text)
    return [SlackMessage(text=escaped, blocks=[section(escaped)])]
