"""Display text (what users read and quote) and search form (what is matched) of a document.

Display text: look-alike code points repaired, lines wrapped inside a sentence joined, repeated
whitespace collapsed; full-width punctuation and circled numbers stay as written (no NFKC).
Blocks are separated by "\n" (heading to heading or bullet, bullet to bullet, table rows) and by
a blank line "\n\n" before and after a paragraph and before a heading that follows content.
Search form: NFKC and lower case of the display text, with a map back to display offsets.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from assistant.types import Block, BlockKind

NORMALIZER_VERSION = "2"

# CJK radical supplement forms NFKC leaves alone (only ⺟ and ⻳ decompose); each stands for a
# whole character in extracted text, so map it to that character.
_RADICAL_SUPPLEMENT = {
    0x2E9D: 0x6708, 0x2E9F: 0x6BCD, 0x2EA0: 0x6C11, 0x2EA9: 0x738B, 0x2EAC: 0x793A, 0x2EC1: 0x864E,
    0x2EC4: 0x897F, 0x2EC5: 0x89C1, 0x2EC6: 0x89D2, 0x2ED1: 0x9577, 0x2ED3: 0x957F, 0x2ED4: 0x95E8,
    0x2ED8: 0x9752, 0x2ED9: 0x97E6, 0x2EDA: 0x9875, 0x2EDB: 0x98CE, 0x2EDC: 0x98DE, 0x2EDD: 0x98DF,
    0x2EE2: 0x9A6C, 0x2EE3: 0x9AA8, 0x2EE4: 0x9B3C, 0x2EE5: 0x9C7C, 0x2EE6: 0x9E1F, 0x2EE7: 0x5364,
    0x2EE8: 0x9EA6, 0x2EE9: 0x9EC4, 0x2EEA: 0x9EFE, 0x2EEB: 0x6589, 0x2EEC: 0x9F50, 0x2EED: 0x6B6F,
    0x2EEE: 0x9F7F, 0x2EEF: 0x7ADC, 0x2EF0: 0x9F99, 0x2EF1: 0x9F9C, 0x2EF2: 0x4E80, 0x2EF3: 0x9F9F,
    0x2027: 0x30FB,  # hyphenation point, printed for the katakana middle dot
    0x46FE: 0x306E,  # 䛾, a rare ideograph Word-made PDFs emit for の
}
# Invisible characters that break matching and quoting; form feeds and the like become newlines.
_INVISIBLE = dict.fromkeys([0x200B, 0x2060, 0xFEFF, 0x00AD, *range(0x09), 0x7F], None)
_SPACE_RUN = re.compile(r"[^\S\n]{2,}|[^\S\n\u3000 ]")
_BULLET = re.compile(
    r"^\s*(?:[•・◦▪●○■□◆◇▶►‣⁃※]|[-*+](?=\s)|[\u2460-\u2473\u2776-\u277F\u2474-\u2487]"
    r"|[(（]\d{1,2}[)）]|\d{1,2}[.)．）](?!\d))"
)
_SENTENCE_END = "。．！？!?.｡"
_CLOSERS = "」』）)】〕］]”’\"'"
_HEADING_MAX_CHARS = 80


@lru_cache(maxsize=1)
def _lookalike_table() -> dict[int, int]:
    table = {cp: ord(unicodedata.normalize("NFKC", chr(cp))) for cp in range(0x2F00, 0x2FD6)}
    for cp in (*range(0xF900, 0xFB00), *range(0x2F800, 0x2FA20)):
        canon = unicodedata.normalize("NFC", chr(cp))
        if canon != chr(cp):  # a dozen in the block are unified ideographs, not compatibility ones
            table[cp] = ord(canon)
    table.update(_RADICAL_SUPPLEMENT)
    return table


def repair_lookalikes(text: str) -> str:
    """Replace look-alike code points (radicals, compatibility ideographs, ‧, 䛾) one for one."""
    return text.translate(_lookalike_table())


def is_cjk(ch: str) -> bool:
    """Japanese/Chinese characters and full-width forms, between which no space belongs."""
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x2FDF or 0x3000 <= code <= 0x33FF or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x3FFFF or 0x2460 <= code <= 0x24FF
    )


def starts_bullet(line: str) -> bool:
    """True if the line begins with a bullet or list marker (•・-*◦▪●, ①, "1.", "(1)")."""
    return _BULLET.match(line) is not None


def ends_sentence(line: str) -> bool:
    """True if the line ends with sentence-final punctuation, closing quotes allowed after it."""
    tail = line.rstrip().rstrip(_CLOSERS)
    return bool(tail) and tail[-1] in _SENTENCE_END


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def join_lines(lines: list[str]) -> str:
    """Join lines wrapped inside a sentence: no space at a Japanese side, one between Latin words."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
            continue
        a, b = out[-1], line[0]
        if a == "\u00ad":
            out = out[:-1]
        elif a == "-" and len(out) > 1 and out[-2].isalpha() and not is_cjk(out[-2]) and b.isalnum():
            # A word broken at the line end: drop the hyphen before a lower-case continuation,
            # keep it otherwise ("COVID-" + "19").
            out = out[:-1] + line if b.islower() else out + line
            continue
        sep = "" if is_cjk(a) or is_cjk(b) or a == "\u00ad" else " "
        out = out.rstrip("\u00ad") + sep + line
    return out


def unwrap(text: str, kind: BlockKind = "paragraph") -> str:
    """Rebuild a block's wrapped lines: join unless a sentence ends and the next line starts anew."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    width = max(len(line.strip()) for line in lines)
    groups = [[lines[0]]]
    for prev, line in zip(lines, lines[1:], strict=False):
        # A line that ends a sentence short of the column's edge ends a paragraph or list item.
        anew = len(prev.strip()) < 0.8 * width or (kind == "paragraph" and _indent(line) > 0)
        if starts_bullet(line) or (ends_sentence(prev) and anew):
            groups.append([line])
        else:
            groups[-1].append(line)
    return "\n".join(join_lines(group) for group in groups)


def single_spaced(text: str) -> str:
    """One line with its runs of white space, the ideographic space included, made one space: the form
    a section heading is stored in (`loaders.base.assign_sections`), and compared in against the text,
    where it may stand as "北海電機　決算の概要"."""
    return " ".join(text.split())


def collapse_spaces(text: str) -> str:
    """Collapse runs of spaces on each line to one (a lone ideographic space stays); trim lines."""
    lines = (_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _clean(text: str) -> str:
    return repair_lookalikes(text.translate(_INVISIBLE))


def display_block(block: Block) -> str:
    """One block's display text: repaired, unwrapped (headings and table rows on one line)."""
    text = _clean(block.text)
    if block.kind in ("heading", "table_row"):
        text = join_lines(text.splitlines())
    else:
        text = unwrap(text, block.kind)
    return collapse_spaces(text)


@dataclass
class Span:
    """Where a block's text stands in the display text."""

    start: int
    end: int
    kind: BlockKind
    page: int | None
    section: str | None


@dataclass
class DisplayText:
    """A document's display text and the spans of its blocks, in order."""

    text: str
    spans: list[Span]


def _separator(prev: BlockKind, kind: BlockKind) -> str:
    if prev == "paragraph" or kind == "paragraph" or (kind == "heading" and prev != "heading"):
        return "\n\n"
    return "\n"


def build_display(blocks: list[Block]) -> DisplayText:
    """The display text of loaded blocks; empty blocks are dropped."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for block in blocks:
        text = display_block(block)
        if not text:
            continue
        if spans:
            sep = _separator(spans[-1].kind, block.kind)
            parts.append(sep)
            pos += len(sep)
        parts.append(text)
        spans.append(Span(pos, pos + len(text), block.kind, block.page, block.section))
        pos += len(text)
    return DisplayText("".join(parts), spans)


@dataclass
class SearchForm:
    """NFKC, lower-cased text with the display offset of each of its characters (plus the end)."""

    text: str
    to_display: list[int]

    def display_span(self, start: int, end: int) -> tuple[int, int]:
        """The display span covering search-form characters [start, end), widened to whole characters."""
        n = len(self.text)
        start = max(0, min(start, n))
        end = max(start, min(end, n))
        first = self.to_display[start]
        if end == start:
            return first, first
        last = self.to_display[end - 1]
        j = end
        while j < n and self.to_display[j] == last:
            j += 1
        return first, self.to_display[j]


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@lru_cache(maxsize=16384)
def _nfkc_char(ch: str) -> str:
    return _nfkc(ch)


def _may_compose(ch: str) -> bool:
    """False for characters that never join the one before under NFKC (ASCII, kanji, kana letters)."""
    code = ord(ch)
    return not (
        code < 0x300 or 0x4E00 <= code <= 0x9FFF or 0x3041 <= code <= 0x3096 or 0x30A1 <= code <= 0x30FA
    )


def title_line(title: str, section: str) -> str:
    """The "title / section" line indexed with each chunk when titles are embedded (NFKC; "" for none)."""
    return " / ".join(unicodedata.normalize("NFKC", p) for p in (title, section) if p)


# A request or an exam-style instruction wrapped round a question ("…を教えてください", "…を答えよ")
# says how to answer, not what about: its words would only dilute the question's key terms.
_REQUEST = re.compile(
    r"を?(?:教えて|おしえて|挙げて|あげて|答えて|こたえて|述べて|説明して|示して|聞かせて)"
    r"(?:ください|下さい|くださいますか|くれ(?:ますか|ませんか)?|もらえ(?:ますか|ませんか)|いただけ(?:ますか|ませんか)|ほしい|欲しい)"
    r"|を?(?:答え|こたえ|述べ|挙げ|説明せ)(?:よ|なさい)"
    r"|を?(?:教えて|おしえて|挙げて|答えて|こたえて|述べて)(?=[\s。?？!！]*$)"
    r"|(?:please |could you |can you )?tell me(?: about)?\b",
    re.IGNORECASE,
)


def question_core(question: str) -> str:
    """The question without a wrapping request ("…を教えてください" -> "…"), for picking its key terms;
    unchanged when nothing would be left."""
    core = _REQUEST.sub(" ", question)
    return core if core.strip(" 。、.,?？!！") else question


def search_form(display: str) -> SearchForm:
    """Full NFKC and lower case of `display`, mapped back character by character."""
    out: list[str] = []
    to_display: list[int] = []
    i, n = 0, len(display)
    while i < n:
        j = i + 1
        # Extend the cluster while the next character composes with it (ｶ+ﾞ → ガ, か+◌゙ → が).
        while j < n and _may_compose(display[j]) and _nfkc(display[i : j + 1]) != (
            _nfkc(display[i:j]) + _nfkc_char(display[j])
        ):
            j += 1
        piece = _nfkc_char(display[i]) if j == i + 1 else _nfkc(display[i:j])
        out.append(piece)
        to_display.extend([i] * len(piece))
        i = j
    to_display.append(n)
    return SearchForm("".join(out), to_display)


def normalize_query(text: str) -> str:
    """A query in search form: repaired, whitespace collapsed to single spaces, NFKC, lower case."""
    return search_form(" ".join(_clean(text).split())).text


def find_in_display(needle: str, display: str) -> tuple[int, int] | None:
    """The display span of `needle`, matched in search form; spaces and line breaks may differ."""
    query = normalize_query(needle)
    if not query:
        return None
    form = search_form(display)
    at = form.text.replace("\n", " ").find(query)
    if at >= 0:
        return form.display_span(at, at + len(query))
    keep = [i for i, ch in enumerate(form.text) if not ch.isspace()]
    compact = "".join(form.text[i] for i in keep)
    target = "".join(query.split())
    at = compact.find(target)
    if at < 0:
        return None
    return form.display_span(keep[at], keep[at + len(target) - 1] + 1)


def _is_table_line(line: str) -> bool:
    stripped = line.strip()
    return (stripped.startswith("|") and stripped.count("|") >= 2) or "\t" in stripped


def _is_table_rule(line: str) -> bool:
    return re.fullmatch(r"\s*\|?[\s:|+-]*-{3,}[\s:|+-]*\|?\s*", line) is not None


def _heading_like(line: str) -> bool:
    stripped = line.strip()
    return (
        0 < len(stripped) <= _HEADING_MAX_CHARS and not ends_sentence(stripped)
        and any(ch.isalpha() for ch in stripped)  # a bare page number is no heading
        and stripped[-1] not in "、，,;；" and not starts_bullet(stripped)
    )


def _paragraph_blocks(lines: list[str], doc_width: int = 0) -> list[Block]:
    if len(lines) == 1 and _heading_like(lines[0]):
        return [Block(lines[0].strip(), "heading")]
    sizes = [len(line.strip()) for line in lines]
    # Short lines, none ending a sentence, far from the document's column edge: lines set one by one
    # (a date above a byline, an address), not a sentence wrapped. A sentence wrapped by hand ends one
    # of its lines, and a wrapped paragraph reaches the edge.
    if len(lines) >= 2 and not any(ends_sentence(line) for line in lines) and max(sizes) < 0.5 * doc_width:
        return [Block(line.strip(), "paragraph") for line in lines]
    rest = sizes[1:]
    # A short title line directly above its text ("はじめに" then the paragraph).
    if len(lines) >= 2 and _heading_like(lines[0]) and len(lines[0].strip()) <= 40 and (
        len(lines[0].strip()) < 0.5 * max(rest)
    ):
        return [Block(lines[0].strip(), "heading"), Block("\n".join(lines[1:]), "paragraph")]
    return [Block("\n".join(lines), "paragraph")]


def blocks_from_plain_text(text: str, set_lines: bool = False) -> list[Block]:
    """Split plain text into paragraph, bullet, table-row and heading blocks (lines kept raw).
    `set_lines`: the text is a whole document as written (a text file, not a PDF page's extraction or a
    Markdown paragraph), so a run of short lines that ends no sentence is read as lines set one by one."""
    blocks: list[Block] = []
    lines: list[str] = []
    kind: BlockKind = "paragraph"
    marker_indent = text_column = 0
    doc_width = max((len(line.strip()) for line in text.splitlines()), default=0) if set_lines else 0

    def flush() -> None:
        if lines:
            joined = "\n".join(lines)
            blocks.extend(_paragraph_blocks(lines, doc_width) if kind == "paragraph" else [Block(joined, kind)])
            lines.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        if _is_table_line(line):
            flush()
            if not _is_table_rule(line):
                blocks.append(Block(line.strip(), "table_row"))
            continue
        if starts_bullet(line):
            flush()
            kind, marker_indent = "bullet", _indent(line)
            match = _BULLET.match(line)
            text_column = _indent(line[match.end() :]) + match.end() if match else marker_indent
            lines.append(line)
            continue
        if lines and kind == "bullet":
            # Continuation lines sit flush with the marker (extraction) or under its text (Markdown).
            if _indent(line) <= marker_indent or _indent(line) >= text_column:
                lines.append(line)
                continue
            flush()
        elif lines and ends_sentence(lines[-1]) and _indent(line) > 0:
            flush()
        kind = "paragraph"
        lines.append(line)
    flush()
    return blocks
