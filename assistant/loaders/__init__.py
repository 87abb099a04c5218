"""Document loaders: one front door, `load_document`, over one small module per format.

Each format module (text, markdown, html, pdf, docx, pptx) exposes `SUFFIXES` and
`load(path, opts) -> LoadedDocument`, registered by suffix in `base.registry()`.

Metadata sidecar: `<filename>.meta.json` next to a document (e.g. `briefing.txt.meta.json`) holds a
JSON object with `title`, `language`, `publisher`, `date`, `sections` and any other keys (kept in
`DocMeta.extra`). Its non-empty values win over the document's own metadata (HTML <title> and date
meta tags, docx/pptx core properties, PDF /Title and creation date, Markdown front matter or first
'#' heading). A document that gives no date otherwise is dated by a line near its start that is only a
date ("2025年11月5日" under a memo's title, a title ending "（2025年10月）"): `meta.header_date`.
Sidecars are not documents: `supported_suffixes()` excludes them and ingestion skips `*.meta.json`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from assistant.loaders.base import SIDECAR_SUFFIX, LoadOptions, registry
from assistant.loaders.meta import guess_language, header_date, merge_meta, read_sidecar, sections_from_blocks
from assistant.types import LoadedDocument, LoadError

# Bump when what the loaders return changes, so that documents are read again (`ingest.current_versions`).
LOADER_VERSION = "2"

__all__ = ["LOADER_VERSION", "LoadOptions", "is_sidecar", "load_document", "read_sidecar", "supported_suffixes"]

_MB = 1024 * 1024
logger = logging.getLogger(__name__)


def supported_suffixes() -> set[str]:
    """File name suffixes (lower case, with the dot) that `load_document` reads."""
    return set(registry())


def is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIX)


def load_document(
    path: Path, max_bytes: int, ocr: bool = True, ocr_languages: str = "jpn+eng", max_pdf_pages: int = 2000
) -> LoadedDocument:
    """Read one document into blocks and metadata (sidecar over intrinsic); raise LoadError if unreadable.

    A .docx or .pptx may inflate to at most 10 times `max_bytes`; a PDF may have `max_pdf_pages` pages.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    loaders = registry()
    if is_sidecar(path) or suffix not in loaders:
        supported = ", ".join(sorted(loaders))
        raise LoadError(
            f"unsupported file type '{suffix or path.name}'; supported: {supported}",
            f"対応していないファイル形式です（{suffix or path.name}）。対応形式: {supported}",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot read the file: {exc.strerror}", f"ファイルを読み取れません: {exc.strerror}") from exc
    if size > max_bytes:
        # Checked before reading so an oversize upload never enters memory.
        raise LoadError(
            f"file is {size / _MB:.1f} MB, over the limit of {max_bytes / _MB:g} MB (ASSISTANT_MAX_FILE_MB)",
            f"ファイルサイズが{size / _MB:.1f} MBで、上限の{max_bytes / _MB:g} MBを超えています（ASSISTANT_MAX_FILE_MB）",
        )
    if size == 0:
        raise _empty()
    opts = LoadOptions(max_bytes=max_bytes, max_pdf_pages=max_pdf_pages, ocr=ocr, ocr_languages=ocr_languages)
    try:
        document = loaders[suffix](path, opts)
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(f"cannot read the file: {exc}", f"ファイルを読み取れません: {exc}") from exc
    except Exception as exc:
        # A parser library failing on a malformed file must not stop a whole ingestion run.
        logger.warning("loader for %s failed on %s", suffix, path, exc_info=True)
        raise LoadError(
            f"corrupt or unreadable {suffix} file ({type(exc).__name__}: {exc})",
            f"{suffix}ファイルが壊れているか読み取れません（{type(exc).__name__}: {exc}）",
        ) from exc
    if not any(block.text.strip() for block in document.blocks):
        raise _empty()
    meta = merge_meta(document.meta, read_sidecar(path))
    if not meta.sections:
        meta.sections = sections_from_blocks(document.blocks)
    if not meta.language:
        meta.language = guess_language("".join(b.text for b in document.blocks[:200]))
    if not meta.date:
        meta.date = header_date(document.blocks)
    document.meta = meta
    return document


def _empty() -> LoadError:
    return LoadError("empty document", "文書が空です")
