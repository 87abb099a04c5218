"""PDF files through pypdfium2: text per page with wrapped lines rejoined, OCR for scanned pages.

pypdfium2 reads the /ActualText layer, so Chromium's PDFs give 米 rather than the look-alike radical ⽶.
A visual line is joined with the next when it reaches the column's right edge and does not end a
sentence; lines with wide gaps between characters are table rows, with cells joined by " | ".
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.loaders.base import LoadOptions, assign_sections, corrupt, drop_empty, is_cjk
from assistant.loaders.meta import normalize_date
from assistant.types import Block, BlockKind, DocMeta, LoadedDocument, LoadError

if TYPE_CHECKING:
    import pypdfium2 as pdfium

SUFFIXES = {".pdf"}

_SENTENCE_ENDS = ("。", "．", "！", "？", "!", "?", "：", ":")
_BULLETS = tuple("・•●○◦▪■□◆◇▶►‣-–—*※") + tuple(chr(c) for c in range(0x2460, 0x2474))  # ①..⑳
EDGE_EMS = 2.0  # Japanese line breaking can leave a full line up to about two characters short
CELL_GAP_EMS = 0.75  # a gap this wide between characters on one line separates table cells (cell padding)
HEADING_RATIO = 1.2  # a line this much larger than the body text is a heading


@dataclass
class _Char:
    text: str
    left: float
    bottom: float
    right: float
    top: float
    size: float


@dataclass
class _Line:
    chars: list[_Char] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " | ".join(self.cells) if len(self.cells) > 1 else (self.cells[0] if self.cells else "")

    @property
    def right(self) -> float:
        return max(c.right for c in self.chars)

    @property
    def left(self) -> float:
        return min(c.left for c in self.chars)

    @property
    def top(self) -> float:
        return max(c.top for c in self.chars)

    @property
    def bottom(self) -> float:
        return min(c.bottom for c in self.chars)

    @property
    def em(self) -> float:
        return statistics.median(c.top - c.bottom for c in self.chars) or 1.0

    @property
    def size(self) -> float:
        return statistics.median(c.size for c in self.chars)


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _open_error(exc) from exc
    try:
        pages = len(pdf)  # read from the page tree; no page is loaded
        if pages > opts.max_pdf_pages:
            raise LoadError(
                f"refused: the PDF has {pages:,} pages, over the limit of {opts.max_pdf_pages:,}"
                " (ASSISTANT_MAX_PDF_PAGES)",
                f"PDFのページ数が{pages:,}で、上限の{opts.max_pdf_pages:,}ページ（ASSISTANT_MAX_PDF_PAGES）を"
                "超えているため受け付けません",
            )
        return _load(pdf, opts)
    finally:
        pdf.close()


def _open_error(exc: Any) -> LoadError:
    import pypdfium2.raw as pdfium_c

    if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
        return LoadError(
            "encrypted PDF: it needs a password", "PDFが暗号化されています（パスワードが必要です）"
        )
    return corrupt("PDF", "PDF", str(exc))


def _load(pdf: pdfium.PdfDocument, opts: LoadOptions) -> LoadedDocument:
    from assistant.text.normalize import repair_lookalikes

    pages: list[list[_Line]] = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            pages.append(_page_lines(page))
        finally:
            page.close()
    sizes = [c.size for lines in pages for line in lines for c in line.chars]
    body_size = statistics.median(sizes) if sizes else 0.0
    blocks: list[Block] = []
    for number, lines in enumerate(pages, start=1):
        blocks.extend(_page_blocks(lines, number, body_size))
    for block in blocks:
        block.text = repair_lookalikes(block.text)
    warnings: list[str] = []
    empty = [n for n, lines in enumerate(pages, start=1) if not lines and _has_images(pdf, n - 1)]
    if empty:
        blocks = _ocr_pages(pdf, empty, blocks, opts, warnings)
    meta = _meta(pdf)
    return LoadedDocument(blocks=assign_sections(drop_empty(blocks)), meta=meta, warnings=warnings)


def _page_lines(page: Any) -> list[_Line]:
    """The page's visual lines, each with its characters' boxes, split into cells at wide gaps."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        lines: list[_Line] = []
        current = _Line()
        pending_high = ""
        for i in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage, i)
            if 0xD800 <= code <= 0xDBFF:
                pending_high = chr(code)
                continue
            ch = chr(code)
            if pending_high:  # pdfium hands characters beyond the BMP over as two surrogates
                ch = (pending_high + ch).encode("utf-16", "surrogatepass").decode("utf-16")
                pending_high = ""
            if ch == "\n":
                lines.append(current)
                current = _Line()
                continue
            if ch in "\r\x00\ufffe\uffff":
                continue
            if ch == "\x02":  # pdfium's mark for a hyphen that broke a word at the line end
                ch = "\u00ad"
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            size = float(pdfium_c.FPDFText_GetFontSize(textpage, i))
            current.chars.append(_Char(ch, left, bottom, right, top, size))
        lines.append(current)
    finally:
        textpage.close()
    kept = []
    for line in lines:
        line.chars = _strip_spaces(line.chars)
        if line.chars:
            line.cells = _cells(line.chars)
            kept.append(line)
    return kept


def _strip_spaces(chars: list[_Char]) -> list[_Char]:
    start, end = 0, len(chars)
    while start < end and chars[start].text.isspace():
        start += 1
    while end > start and chars[end - 1].text.isspace():
        end -= 1
    return chars[start:end]


def _cells(chars: list[_Char]) -> list[str]:
    """The line's text, split where the gap between two visible characters is as wide as a table gap."""
    visible = [c for c in chars if not c.text.isspace()]
    em = statistics.median(c.top - c.bottom for c in visible) if visible else 1.0
    cells: list[str] = []
    current = ""
    previous: _Char | None = None
    for ch in chars:
        if ch.text.isspace():
            current += " " if current and not current.endswith(" ") else ""
            continue
        if previous is not None and ch.left - previous.right > CELL_GAP_EMS * em:
            cells.append(current.strip())
            current = ""
        current += ch.text
        previous = ch
    cells.append(current.strip())
    return [c for c in cells if c]


def _page_blocks(lines: list[_Line], page: int, body_size: float) -> list[Block]:
    """Rebuild paragraphs: join a line with the next when it runs to the right edge mid-sentence."""
    if not lines:
        return []
    column_right = max(line.right for line in lines if len(line.cells) == 1) if any(
        len(line.cells) == 1 for line in lines
    ) else max(line.right for line in lines)
    blocks: list[Block] = []
    text = ""
    kind: BlockKind | None = None
    for i, line in enumerate(lines):
        line_kind = _kind(line, body_size)
        if kind is None:
            text, kind = line.text, line_kind
        else:
            text = _join(text, line.text)
        following = lines[i + 1] if i + 1 < len(lines) else None
        if following is None or not _continues(line, following, column_right, body_size):
            blocks.append(Block(text, kind=kind, page=page))
            kind = None
    return blocks


def _kind(line: _Line, body_size: float) -> BlockKind:
    text = line.text
    if len(line.cells) > 1:
        return "table_row"
    if body_size and line.size >= HEADING_RATIO * body_size and len(text) <= 80:
        return "heading"
    if text.startswith(_BULLETS):
        return "bullet"
    return "paragraph"


def _continues(line: _Line, following: _Line, column_right: float, body_size: float) -> bool:
    if len(line.cells) > 1 or len(following.cells) > 1:
        return False
    if line.text.endswith(_SENTENCE_ENDS) or following.text.startswith(_BULLETS):
        return False
    if line.right < column_right - EDGE_EMS * line.em:
        return False
    if abs(line.size - following.size) > 0.1 * max(line.size, following.size, 1e-6):
        return False  # a change of type size starts a new block (heading to body, body to footnote)
    # A wide vertical gap is a paragraph break even under a full line.
    return line.bottom - following.top <= 1.0 * line.em


def _join(left: str, right: str) -> str:
    if left.endswith("\u00ad"):
        return left[:-1] + right
    if left and right and not is_cjk(left[-1]) and not is_cjk(right[0]) and not left.endswith("-"):
        return f"{left} {right}"
    return left + right


def _has_images(pdf: Any, index: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))
    finally:
        page.close()


def _ocr_pages(
    pdf: Any, numbers: list[int], blocks: list[Block], opts: LoadOptions, warnings: list[str]
) -> list[Block]:
    """`blocks` with the OCR text of image-only pages put in page order; LoadError when OCR cannot run."""
    from assistant.loaders.ocr import OCR_DPI, ocr_image, ocr_unavailable
    from assistant.text.normalize import blocks_from_plain_text

    reason = "it is switched off (ASSISTANT_OCR)" if not opts.ocr else ocr_unavailable(opts.ocr_languages)
    pages_text = ", ".join(map(str, numbers))
    if reason is not None:
        if not blocks:
            installed = "OCR is not installed" if opts.ocr else "OCR is switched off"
            raise LoadError(
                f"no text layer (scanned PDF) and {installed} ({reason})",
                "テキスト層がありません（スキャンされたPDF）。OCR"
                + ("がインストールされていません" if opts.ocr else "が無効になっています")
                + f"（{reason}）",
            )
        warnings.append(f"page(s) {pages_text} have no text layer and were skipped (OCR unavailable: {reason})")
        return blocks
    ocr_blocks: list[Block] = []
    for number in numbers:
        page = pdf[number - 1]
        try:
            image = page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
        finally:
            page.close()
        try:
            text = ocr_image(image, opts.ocr_languages)
        except (RuntimeError, OSError) as exc:
            warnings.append(f"OCR failed on page {number}: {exc}")
            continue
        for block in blocks_from_plain_text(text):
            block.page = number
            ocr_blocks.append(block)
    warnings.append(
        f"OCR used for page(s) {pages_text} ({opts.ocr_languages}); the text may contain recognition errors"
    )
    merged = blocks + ocr_blocks
    merged.sort(key=lambda b: b.page or 0)  # stable: keeps reading order within a page
    if not drop_empty(merged):
        raise LoadError("empty document: OCR found no text", "文書が空です（OCRで文字を認識できませんでした）")
    return merged


def _meta(pdf: Any) -> DocMeta:
    try:
        info = pdf.get_metadata_dict(skip_empty=True)
    except Exception:  # a damaged info dictionary should not lose the text
        info = {}
    return DocMeta(
        title=str(info.get("Title", "")).strip(),
        date=normalize_date(info.get("CreationDate", "")),
        extra={k.lower(): v for k, v in info.items() if k in ("Author", "Subject", "Keywords")},
    )
