"""Sentence splitting and chunking of display text into overlapping, section-aware spans.

Every line break of display text is a sentence boundary: wrapped lines are already joined, so a
break ends a heading, bullet, table row, paragraph or sentence-final line. A heading opens a new
run of chunks and is the first line of the chunk that follows it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from assistant.text.normalize import DisplayText, Span, is_cjk

CHUNKER_VERSION = "1"

_OPEN_TO_CLOSE = dict(zip("「『（(【〔［[｛{〈《", "」』）)】〕］]｝}〉》", strict=True))
_CLOSE_TO_OPEN = {v: k for k, v in _OPEN_TO_CLOSE.items()}
_JA_ENDS = "。！？｡"
_TRAILERS = "。！？｡!?.．」』）)】〕］]”’\"'"
_CLAUSE = "、，,;；"
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs e.g i.e cf inc ltd co corp no nos fig figs vol pp p ed eds approx "
    "dept est gen gov sen rep jan feb mar apr jun jul aug sep sept oct nov dec mt ft al op ca u.s u.k "
    "u.n a.m p.m".split()
)
_MIN_FRAGMENT_CHARS = 60


def _protected(text: str, start: int, end: int) -> list[bool]:
    """Flags for positions inside matched brackets on one line (unmatched brackets count for nothing)."""
    inside = [False] * (end - start)
    stack: list[tuple[str, int]] = []
    for i in range(start, end):
        ch = text[i]
        if ch in _OPEN_TO_CLOSE:
            stack.append((ch, i))
        elif ch in _CLOSE_TO_OPEN and any(o == _CLOSE_TO_OPEN[ch] for o, _ in stack):
            while stack:
                opener, at = stack.pop()
                if opener == _CLOSE_TO_OPEN[ch]:
                    for k in range(at + 1, i):
                        inside[k - start] = True
                    break
    return inside


def _english_end(text: str, dot: int, after: int, line_start: int) -> bool:
    """Whether the '.' at `dot` (trailers running to `after`) ends an English sentence."""
    if after < len(text) and not text[after].isspace():
        return False  # "3.5", "example.com", "Inc.の"
    nxt = text[after:].lstrip()[:1]
    if nxt and nxt.islower():
        return False
    word_start = dot
    while word_start > line_start and not text[word_start - 1].isspace():
        word_start -= 1
    token = text[word_start:dot].lstrip("(\"'“‘[")
    if token.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]|(?:[A-Za-z]\.)+[A-Za-z]", token):
        return False
    # "1. item" at the start of a line is a list marker, not a sentence.
    return not (word_start == line_start and re.fullmatch(r"\d{1,2}|[A-Za-z]", token))


def _line_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    inside = _protected(text, start, end)
    bounds: list[int] = []
    i = start
    while i < end:
        ch = text[i]
        if inside[i - start] or ch not in "。！？｡!?.．":
            i += 1
            continue
        after = i + 1
        while after < end and text[after] in _TRAILERS:
            after += 1
        if ch in _JA_ENDS:
            ok = True
        elif ch in "!?":
            ok = after >= end or text[after].isspace() or is_cjk(text[after])
        elif ch == "．":
            ok = not (i > start and text[i - 1].isdigit() and after < end and text[after].isdigit())
        else:
            ok = _english_end(text, i, after, start)
        if ok:
            bounds.append(after)
        i = after
    spans: list[tuple[int, int]] = []
    prev = start
    for b in [*bounds, end]:
        s, e = _trim(text, prev, b)
        if s < e:
            spans.append((s, e))
        prev = b
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans, trimmed: 。！？ outside brackets, English sentence ends, and every line break."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        spans.extend(_line_sentences(text, pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _is_word(ch: str) -> bool:
    return ch.isalnum() and not is_cjk(ch)


def _safe_cut(text: str, start: int, cut: int) -> int:
    """Move a hard cut back so it splits no Latin word, surrogate pair or combining sequence."""
    def bad(k: int) -> bool:
        a, b = text[k - 1], text[k]
        return (_is_word(a) and _is_word(b)) or "\ud800" <= a <= "\udbff" or _combining(b)

    k = cut
    while k > start + 1 and bad(k):
        k -= 1
    if k > start + 1:
        return k
    k = cut  # one unbroken word longer than the limit: cut it, but keep pairs together
    while k > start + 1 and ("\ud800" <= text[k - 1] <= "\udbff" or _combining(text[k])):
        k -= 1
    return k


def _combining(ch: str) -> bool:
    return unicodedata.combining(ch) != 0 or "\ufe00" <= ch <= "\ufe0f" or ch in "\u3099\u309a\uff9e\uff9f"


def split_long(text: str, start: int, end: int, target_chars: int, max_chars: int) -> list[tuple[int, int]]:
    """Pieces of an over-long sentence, cut after a clause mark when one fits, else at `max_chars`."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        marks = [
            k + 1 for k in range(start + max_chars // 4, start + max_chars)
            if text[k] in _CLAUSE and not (text[k] == "," and text[k - 1].isdigit() and text[k + 1].isdigit())
        ]
        near = [m for m in marks if m - start <= target_chars]
        cut = max(near) if near else max(marks) if marks else _safe_cut(text, start, start + max_chars)
        s, e = _trim(text, start, cut)
        if s < e:
            pieces.append((s, e))
        start, end = _trim(text, cut, end)
    if start < end:
        pieces.append((start, end))
    return pieces


@dataclass
class ChunkSpan:
    """A chunk as a span of the display text, with the page where it starts and its section."""

    start: int
    end: int
    page: int | None
    section: str | None


@dataclass
class _Unit:
    start: int
    end: int
    page: int | None
    heading: bool


@dataclass
class _Run:
    section: str | None
    units: list[_Unit]
    has_content: bool = False


def _runs(display: DisplayText, target_chars: int, max_chars: int) -> list[_Run]:
    """Group sentences into runs that share a section; a heading after content opens a new run."""
    text = display.text
    spans = display.spans or [Span(0, len(text), "paragraph", None, None)]
    runs: list[_Run] = []
    heading: str | None = None
    section: str | None
    for span in spans:
        if span.kind == "heading":
            heading = " ".join(text[span.start : span.end].split())
            section = span.section if span.section is not None else heading
            if not runs or runs[-1].has_content:
                runs.append(_Run(section, []))
            else:
                runs[-1].section = section
            runs[-1].units.append(_Unit(span.start, span.end, span.page, True))
            continue
        section = span.section if span.section is not None else heading
        if not runs or (runs[-1].has_content and runs[-1].section != section):
            runs.append(_Run(section, []))
        run = runs[-1]
        if not run.has_content:
            run.section, run.has_content = section, True
        for s, e in split_sentences(text[span.start : span.end]):
            for ps, pe in split_long(text, span.start + s, span.start + e, target_chars, max_chars):
                run.units.append(_Unit(ps, pe, span.page, False))
    return runs


def _chunk_run(run: _Run, target_chars: int, max_chars: int, overlap: int) -> list[tuple[list[_Unit], int]]:
    """Greedy packing of a run's units; each chunk comes with the index of its first new unit."""
    chunks: list[tuple[list[_Unit], int]] = []
    cur: list[_Unit] = []
    fresh = 0
    for unit in run.units:
        only_headings = all(u.heading for u in cur)
        if cur and not only_headings and (
            cur[-1].end - cur[0].start >= target_chars or unit.end - cur[0].start > max_chars
        ):
            chunks.append((cur, fresh))
            keep = [u for u in cur[-overlap:] if not u.heading] if overlap > 0 and len(cur) > overlap else []
            while keep and unit.end - keep[0].start > max_chars:
                keep = keep[1:]
            cur, fresh = [*keep, unit], len(keep)
        else:
            cur.append(unit)
    if cur:
        chunks.append((cur, fresh))
    return chunks


def chunk_display(
    display: DisplayText, target_chars: int = 400, max_chars: int = 600, overlap_sentences: int = 1
) -> list[ChunkSpan]:
    """Chunks along sentences, about `target_chars` long, overlapping by whole sentences."""
    max_chars = max(max_chars, target_chars, 1)
    out: list[ChunkSpan] = []
    for run in _runs(display, target_chars, max_chars):
        chunks = _chunk_run(run, target_chars, max_chars, overlap_sentences)
        if len(chunks) > 1:
            (prev, _), (last, fresh) = chunks[-2], chunks[-1]
            # A small tail reads better as the end of the chunk before it.
            small = last[-1].end - last[fresh].start < _MIN_FRAGMENT_CHARS
            if small and last[-1].end - prev[0].start <= max_chars:
                chunks[-2:] = [([*prev, *last[fresh:]], 0)]
        out.extend(
            ChunkSpan(units[0].start, units[-1].end, units[0].page, run.section) for units, _ in chunks
        )
    return out
