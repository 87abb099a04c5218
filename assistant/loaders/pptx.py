"""PowerPoint files (.pptx): one page per slide, the title as a heading, text, bullets and tables."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from assistant.loaders.archive import check_archive
from assistant.loaders.base import LoadOptions, corrupt, drop_empty
from assistant.loaders.meta import normalize_date
from assistant.types import Block, BlockKind, DocMeta, LoadedDocument

SUFFIXES = {".pptx"}

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    check_archive(path, opts.max_bytes, "PowerPoint file", "PowerPoint")
    try:
        presentation = Presentation(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise corrupt("PowerPoint file", "PowerPoint", str(exc)) from exc
    blocks: list[Block] = []
    first_title = ""
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        first_title = first_title or title
        slide_blocks: list[Block] = [Block(title, kind="heading")] if title else []
        for shape in _reading_order(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            slide_blocks.extend(_shape_blocks(shape))
        for block in slide_blocks:
            block.page = number
            # The slide's title names its section; an untitled slide keeps no section.
            block.section = title or None
        blocks.extend(slide_blocks)
    props = presentation.core_properties
    meta = DocMeta(
        title=(props.title or "").strip() or first_title,
        language=(props.language or "").split("-")[0].lower(),
        date=normalize_date(props.created) if props.created else "",
        extra={"author": props.author} if props.author else {},
    )
    return LoadedDocument(blocks=drop_empty(blocks), meta=meta)


def _reading_order(shapes: Any) -> list[Any]:
    """Shapes top to bottom, then left to right; shapes without a position keep their order."""
    return sorted(shapes, key=lambda s: ((s.top or 0) // 100_000, s.left or 0))  # ~0.1 inch rows


def _shape_blocks(shape: Any) -> list[Block]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [b for inner in _reading_order(shape.shapes) for b in _shape_blocks(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            cells = [" ".join(cell.text.split()) for cell in row.cells]
            if any(cells):
                rows.append(Block(" | ".join(cells), kind="table_row"))
        return rows
    if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
        return []
    in_body = shape.is_placeholder and _is_body_placeholder(shape)
    blocks: list[Block] = []
    for paragraph in shape.text_frame.paragraphs:
        text = paragraph.text.replace("\v", "\n").strip()  # python-pptx shows a line break as \v
        if text:
            blocks.append(Block(text, kind=_paragraph_kind(paragraph, in_body)))
    return blocks


def _is_body_placeholder(shape: Any) -> bool:
    from pptx.enum.shapes import PP_PLACEHOLDER

    try:
        kind = shape.placeholder_format.type
    except ValueError:
        return False
    return kind in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)


def _paragraph_kind(paragraph: Any, in_body: bool) -> BlockKind:
    p_pr = paragraph._p.pPr
    if p_pr is not None:
        if p_pr.find(f"{_A}buNone") is not None:
            return "paragraph"
        if p_pr.find(f"{_A}buChar") is not None or p_pr.find(f"{_A}buAutoNum") is not None:
            return "bullet"
    # Body placeholders show bullets unless a paragraph turns them off.
    return "bullet" if in_body or paragraph.level > 0 else "paragraph"
