"""Markdown files: front matter, '#' and underlined headings, lists, '|' tables and code fences.

Runs of ordinary text go through `blocks_from_plain_text`; the title is the front matter's `title`,
else the first level-1 heading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.loaders.base import LoadOptions, assign_sections, drop_empty
from assistant.loaders.meta import meta_from_mapping
from assistant.loaders.text import read_text
from assistant.types import Block, DocMeta, LoadedDocument

SUFFIXES = {".md", ".markdown"}

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_CODE = re.compile(r"`([^`]+)`")


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    text, warnings = read_text(path)
    front, body = split_front_matter(text)
    meta = meta_from_mapping(front) if front else DocMeta()
    parsed, first_h1 = parse_body(_COMMENT.sub("", body))
    blocks = assign_sections(drop_empty(parsed))
    meta.title = meta.title or first_h1
    return LoadedDocument(blocks=blocks, meta=meta, warnings=warnings)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML-style front matter (simple `key: value` and lists) and the rest of the text."""
    lines = text.lstrip("\ufeff").split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return _parse_front(lines[1:end]), "\n".join(lines[end + 1 :])
    return {}, text


def _parse_front(lines: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    key: str | None = None
    for line in lines:
        item = re.match(r"^\s+-\s+(.*)$", line)
        if item and key is not None:
            if not isinstance(data.get(key), list):
                data[key] = []
            data[key].append(_scalar(item.group(1)))
            continue
        pair = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
        if not pair:
            continue
        key, value = pair.group(1), pair.group(2).strip()
        if value.startswith("[") and value.endswith("]"):
            data[key] = [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
        else:
            data[key] = _scalar(value) if value else ""
    return data


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def inline(text: str) -> str:
    """Text with Markdown inline markup (links, images, emphasis, code spans) removed."""
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _CODE.sub(r"\1", text)
    return text.rstrip()


def parse_body(body: str) -> tuple[list[Block], str]:
    """Blocks of a Markdown body in reading order, and the text of its first level-1 heading."""
    from assistant.text.normalize import blocks_from_plain_text

    blocks: list[Block] = []
    prose: list[str] = []
    first_h1 = ""

    def flush() -> None:
        if any(line.strip() for line in prose):
            blocks.extend(blocks_from_plain_text("\n".join(inline(line) for line in prose)))
        prose.clear()

    lines = body.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence.group(1)):
                end += 1
            blocks.append(Block("\n".join(lines[i + 1 : end])))
            i = end + 1
            continue
        heading = _ATX.match(line)
        if heading:
            flush()
            blocks.append(Block(inline(heading.group(2)), kind="heading"))
            if len(heading.group(1)) == 1 and not first_h1:
                first_h1 = blocks[-1].text
        elif _SETEXT.match(line) and prose and prose[-1].strip() and not _ITEM.match(prose[-1]):
            title = prose.pop()
            flush()
            blocks.append(Block(inline(title.strip()), kind="heading"))
            if line.strip()[0] == "=" and not first_h1:
                first_h1 = blocks[-1].text
        elif line.strip().startswith("|"):
            flush()
            if not _TABLE_RULE.match(line):
                cells = [inline(c.strip()) for c in line.strip().strip("|").split("|")]
                blocks.append(Block(" | ".join(cells), kind="table_row"))
        elif _ITEM.match(line) and not _SETEXT.match(line):
            flush()
            item = _ITEM.match(line)
            assert item is not None
            parts = [item.group(2)]
            indent = len(item.group(1))
            # Indented lines under an item continue it (lazy continuation, as CommonMark reads it).
            while i + 1 < len(lines) and lines[i + 1].strip() and not _ITEM.match(lines[i + 1]) and (
                len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent
            ):
                i += 1
                parts.append(lines[i].strip())
            blocks.append(Block("\n".join(inline(p) for p in parts), kind="bullet"))
        elif _SETEXT.match(line) and line.strip().startswith("-"):
            flush()  # a thematic break
        else:
            prose.append(re.sub(r"^\s{0,3}>\s?", "", line))
        i += 1
    flush()
    return blocks, first_h1
