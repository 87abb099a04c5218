"""Document metadata: the `<filename>.meta.json` sidecar, merging it over intrinsic metadata, dates.

Sidecar keys `title`, `language`, `publisher`, `date` and `sections` fill `DocMeta`; every other key
(e.g. `title_en`, `note`) goes to `DocMeta.extra`. Non-empty sidecar values win over the document's own.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from assistant.loaders.base import SIDECAR_SUFFIX
from assistant.types import Block, DocMeta, LoadError

_FIELDS = ("title", "language", "publisher", "date")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> DocMeta | None:
    """The metadata in `path`'s sidecar file, or None when there is none."""
    side = sidecar_path(Path(path))
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(
            f"unreadable metadata file {side.name}: {exc}",
            f"メタデータファイル {side.name} を読み取れません: {exc}",
        ) from exc
    if not isinstance(data, dict):
        raise LoadError(
            f"metadata file {side.name} must hold a JSON object",
            f"メタデータファイル {side.name} はJSONオブジェクトでなければなりません",
        )
    return meta_from_mapping(data)


def meta_from_mapping(data: dict[str, Any]) -> DocMeta:
    """A DocMeta from a sidecar or front-matter mapping; unknown keys go to `extra`."""
    meta = DocMeta()
    for key, value in data.items():
        if key in _FIELDS:
            text = normalize_date(value) if key == "date" else _as_text(value)
            setattr(meta, key, text)
        elif key == "sections":
            items = value if isinstance(value, list) else [value]
            meta.sections = [_as_text(v) for v in items if _as_text(v)]
        else:
            meta.extra[key] = value
    return meta


def merge_meta(intrinsic: DocMeta, override: DocMeta | None) -> DocMeta:
    """`intrinsic` with every non-empty field of `override` put over it."""
    if override is None:
        return intrinsic
    merged = DocMeta(
        title=override.title or intrinsic.title,
        language=override.language or intrinsic.language,
        publisher=override.publisher or intrinsic.publisher,
        date=override.date or intrinsic.date,
        sections=list(override.sections or intrinsic.sections),
        extra={**intrinsic.extra, **override.extra},
    )
    return merged


def sections_from_blocks(blocks: list[Block]) -> list[str]:
    seen: list[str] = []
    for block in blocks:
        text = " ".join(block.text.split())
        if block.kind == "heading" and text and text not in seen:
            seen.append(text)
    return seen


_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def guess_language(text: str) -> str:
    """'ja' when the sample has kana and Japanese characters hold their own, 'en' for Latin text."""
    sample = text[:5000]
    cjk = len(_KANA.findall(sample)) + len(_HAN.findall(sample))
    latin = len(_LATIN.findall(sample))
    # One Japanese character carries about as much as three Latin letters.
    if _KANA.search(sample) and cjk * 3 >= latin:
        return "ja"
    return "en" if latin else ""


_PDF_DATE = re.compile(r"^D?:?(\d{4})(\d{2})?(\d{2})?")
_ISO_DATE = re.compile(r"^(\d{4})(?:[-/.](\d{1,2}))?(?:[-/.](\d{1,2}))?")
_JA_DATE = re.compile(r"(\d{4})\s*年\s*(?:(\d{1,2})\s*月)?\s*(?:(\d{1,2})\s*日)?")


def normalize_date(value: Any) -> str:
    """An ISO date (YYYY-MM-DD or YYYY-MM or YYYY) from a datetime, a PDF date or a date string."""
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    text = _as_text(value)
    if not text:
        return ""
    for pattern in (_JA_DATE, _ISO_DATE, _PDF_DATE):
        match = pattern.search(text) if pattern is _JA_DATE else pattern.match(text)
        if match:
            year, month, day = match.group(1), match.group(2), match.group(3)
            if month and not 1 <= int(month) <= 12:
                continue
            if day and not 1 <= int(day) <= 31:
                day = None
            parts = [year] + [f"{int(p):02d}" for p in (month, day if month else None) if p]
            return "-".join(parts)
    return ""


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return str(value).strip()
