"""Each line's role in a document (heading, sentence, list item, field, table row or header), fixed once
at ingestion and stored with its chunk (`Chunk.roles`), so that nothing parses text when a question is asked.

Loaders say what each block is (`Block.kind`). What they cannot say is derived here, from the display
text: which row heads a table (the first of two or more rows, when it holds no figure), the lead-in a
list stands under (the short line above its items, else its short section), a list whose marks a plain
text keeps ("• ", "1.", "①"), a field line ("日付：2025年11月5日", "Venue: Tokyo"), and a short line that
is no sentence under a short heading (an item whose mark the loader dropped). A chunk stored before roles
existed gets them from its own text (`roles_from_text`) through the same rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.text.normalize import DisplayText, single_spaced
from assistant.types import BlockKind, Role, RoleKind

# A label (a list's lead-in, a section read as one) is short and ends no sentence.
MAX_LABEL_CHARS = 30
# A line longer than this is running text, not an item whose mark was dropped.
MAX_FRAGMENT_CHARS = 80
SENTENCE_ENDS = ("。", ".", "！", "？", "!", "?")
BULLETS = "•・-*●○■□◆◇"
# A line that starts a list item: a bullet, "1." / "2)" (not "3.5%"), "(1)", "①".
_ITEM = re.compile(f"[{re.escape(BULLETS)}]" r"|[0-9０-９]{1,2}[.)．）](?![0-9０-９])|[（(][0-9０-９]{1,2}[)）]|[①-⑳]")
# "key：value" on one line: a short key (no sentence inside it), a colon, then the value.
_FIELD = re.compile(r"\s*([^\s：:。．.!?！？]{1,12}|[A-Za-z][A-Za-z ]{0,23}[A-Za-z])\s*[：:]\s*(\S.*)")
# Loaders join a table row's cells with this; a chunk stored without roles shows its rows by it.
CELL_SEP = " | "
_DIGIT = re.compile(r"[0-9０-９]")


def field_key(line: str) -> str:
    """The key of a field line ("研究分野" of "研究分野：マクロ経済全般", "Venue" of "Venue: Tokyo"); "" for
    a title ("主張", "Chapter 2"), a clock time ("10:30") or a key with no value ("Note: x")."""
    m = _FIELD.fullmatch(line.strip())
    if m is None or m.group(1)[-1].isdigit() or len(m.group(2).strip()) < 2:
        return ""
    return m.group(1).strip()


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    kind: BlockKind  # the loader's kind of the block the line is part of
    section: str


def document_roles(display: DisplayText, title: str) -> list[Role]:
    """The role of every non-empty line of a document's display text, with the loaders' block kinds."""
    text = display.text
    lines: list[_Line] = []
    for span in display.spans:
        pos = span.start
        for raw in text[span.start : span.end].split("\n"):
            lines.extend(_trimmed(text, pos, pos + len(raw), span.kind, span.section or ""))
            pos += len(raw) + 1
    return _assign(text, lines, title)


def roles_from_text(text: str, section: str, title: str) -> list[Role]:
    """The roles of a chunk's lines from its text alone: for chunks stored before roles were, and for
    passages made outside the index. Table rows are the lines that join cells by `CELL_SEP`."""
    lines: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        kind: BlockKind = "table_row" if CELL_SEP in raw else "paragraph"
        lines.extend(_trimmed(text, pos, pos + len(raw), kind, section))
        pos += len(raw) + 1
    # A chunk opens with its headings (`text.chunking`): the short lines above its section's own heading
    # are the headings it stands under ("主張" above "ウクライナ").
    flat = [single_spaced(text[x.start : x.end]) for x in lines]
    if single_spaced(section) in flat:
        opening = flat.index(single_spaced(section))
        if all(len(f) <= MAX_FRAGMENT_CHARS and not f.endswith(SENTENCE_ENDS) and not _ITEM.match(f)
               and x.kind == "paragraph" for f, x in zip(flat[:opening], lines, strict=False)):
            lines[:opening] = [_Line(x.start, x.end, "heading", x.section) for x in lines[:opening]]
    return _assign(text, lines, title)


def chunk_roles(roles: Sequence[Role], start: int, end: int) -> list[Role]:
    """The roles of the lines within `[start, end)` of the document, in the chunk's own offsets; a line
    the chunk cuts keeps its role for the part inside."""
    return [Role(max(r.start, start) - start, min(r.end, end) - start, r.kind, r.label, r.key)
            for r in roles if r.start < end and r.end > start]


def _trimmed(text: str, start: int, end: int, kind: BlockKind, section: str) -> list[_Line]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [_Line(start, end, kind, section.strip())] if start < end else []


def _assign(text: str, lines: Sequence[_Line], title: str) -> list[Role]:
    title = single_spaced(title)
    roles: list[Role] = []
    header = ""  # the header row of the table being read
    for k, line in enumerate(lines):
        body = text[line.start : line.end]
        flat = single_spaced(body)
        key = field_key(flat.lstrip(BULLETS + " "))
        kind: RoleKind
        label = ""
        if line.kind == "table_row":
            if k == 0 or lines[k - 1].kind != "table_row":
                # A first row with figures is data (a chunk may start inside a table); a lone row is no table.
                more = k + 1 < len(lines) and lines[k + 1].kind == "table_row"
                header = body if more and not _DIGIT.search(body) else ""
                if header:
                    roles.append(Role(line.start, line.end, "header"))
                    continue
            kind, label = "row", header
        elif line.kind == "heading" or flat in (title, single_spaced(line.section)):
            kind = "heading"
        elif line.kind == "bullet" or _ITEM.match(body):
            kind, label = "item", _lead_in(text, lines, k)
        else:
            # A line that is no sentence ("輸出規制の早期撤廃を要求") under a short heading: an item whose mark
            # the loader dropped, or a field; the section names what it is about.
            if len(body) <= MAX_FRAGMENT_CHARS and not body.endswith(SENTENCE_ENDS) \
                    and 0 < len(line.section) <= MAX_LABEL_CHARS and line.section != body:
                label = line.section
            kind = "sentence"
        # Lines under the document's own title (a date, a byline) are no list's items.
        if single_spaced(label) == title:
            label = ""
        if kind == "sentence":
            kind = "field" if key else "item" if label else "sentence"
        roles.append(Role(line.start, line.end, kind, label, key))
    return roles


def _lead_in(text: str, lines: Sequence[_Line], k: int) -> str:
    """The label a list item stands under: the nearest line above its list when that line is short and
    ends no sentence (running text is no label), else the item's section when the list opens the text."""
    for prev in reversed(lines[:k]):
        body = text[prev.start : prev.end]
        if prev.kind == "bullet" or _ITEM.match(body):
            continue
        if prev.kind == "table_row":
            return ""
        return body if len(body) <= MAX_LABEL_CHARS and not body.endswith(SENTENCE_ENDS) else ""
    section = lines[k].section
    return section if 0 < len(section) <= MAX_LABEL_CHARS else ""


def dump_roles(roles: Sequence[Role]) -> str:
    """The stored form of a chunk's roles: a JSON list of [start, end, kind, label, key]."""
    return json.dumps([[r.start, r.end, r.kind, r.label, r.key] for r in roles], ensure_ascii=False,
                      separators=(",", ":"))


def load_roles(stored: str) -> list[Role]:
    return [Role(int(s), int(e), kind, label, key) for s, e, kind, label, key in json.loads(stored)]
