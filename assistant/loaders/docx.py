"""Word files (.docx): headings by style or outline level, list paragraphs as bullets, table rows."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from assistant.loaders.archive import check_archive
from assistant.loaders.base import LoadOptions, assign_sections, corrupt, drop_empty
from assistant.loaders.meta import normalize_date
from assistant.types import Block, BlockKind, DocMeta, LoadedDocument

SUFFIXES = {".docx"}

_HEADING_STYLE = re.compile(r"^(heading|見出し)\s*\d|^(title|表題)$", re.IGNORECASE)


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_archive(path, opts.max_bytes, "Word file", "Word")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise corrupt("Word file", "Word", str(exc)) from exc
    blocks: list[Block] = []
    title_style_text = ""
    for kind, item in _body_items(document):
        if kind == "table":
            blocks.extend(_table_rows(item))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = item.style.name if item.style is not None else ""
        block_kind = _paragraph_kind(item, style)
        if style.lower() in ("title", "表題") and not title_style_text:
            title_style_text = text
        blocks.append(Block(text, kind=block_kind))
    props = document.core_properties
    meta = DocMeta(
        title=(props.title or "").strip() or title_style_text,
        language=(props.language or "").split("-")[0].lower(),
        date=normalize_date(props.created) if props.created else "",
        extra={"author": props.author} if props.author else {},
    )
    return LoadedDocument(blocks=assign_sections(drop_empty(blocks)), meta=meta)


def _body_items(document: Any) -> list[tuple[str, Any]]:
    """Paragraphs and tables of the body in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    items: list[tuple[str, Any]] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            items.append(("paragraph", Paragraph(element, document)))
        elif tag == "tbl":
            items.append(("table", Table(element, document)))
        elif tag == "sdt":  # content controls (e.g. a table of contents) wrap ordinary paragraphs
            for inner in element.iter():
                if inner.tag.rsplit("}", 1)[-1] == "p":
                    items.append(("paragraph", Paragraph(inner, document)))
    return items


def _paragraph_kind(paragraph: Any, style: str) -> BlockKind:
    if _HEADING_STYLE.match(style) or _outline_level(paragraph) is not None:
        return "heading"
    p_pr = paragraph._p.pPr
    if "list" in style.lower() or "リスト" in style or (p_pr is not None and p_pr.numPr is not None):
        return "bullet"
    return "paragraph"


def _outline_level(paragraph: Any) -> int | None:
    p_pr = paragraph._p.pPr
    if p_pr is None:
        return None
    for child in p_pr.iterchildren():
        if child.tag.endswith("}outlineLvl"):
            value = child.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}val")
            # Level 9 means "body text" in Word.
            return int(value) if value is not None and value.isdigit() and int(value) < 9 else None
    return None


def _table_rows(table: Any) -> list[Block]:
    rows: list[Block] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(Block(" | ".join(cells), kind="table_row"))
    return rows
