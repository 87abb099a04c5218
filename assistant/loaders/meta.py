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


# A line that is only a date, as under a memo's title ("2025年11月5日", "令和7年11月5日現在",
# "発行日：2025/11/05", "November 5, 2025"): the document's date when nothing else gives one.
_DATE_LABEL = r"(?:(?:発行|作成|公表|公開|更新|改訂|掲載)?日(?:付)?|Date|Published|Updated|Issued)\s*[：:]?\s*"
_DATE_TAIL = r"\s*(?:[（(][月火水木金土日][）)])?\s*(?:現在|時点|付け?|発行|作成|公表|更新|改訂|版)?"
_ERA = {"令和": 2018, "平成": 1988}
_ERA_DATE = re.compile(r"(令和|平成)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?")
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
_EN_DATE = re.compile(r"(?:(\d{1,2})\s+)?([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})")
_NUMERIC_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?")
# The header is the first few short blocks; a long block is running text. A title may end with its date
# in brackets, so a header line may be as long as a title.
_HEADER_BLOCKS = 6
HEADER_LINE_CHARS = 60


def header_date(blocks: list[Block]) -> str:
    """The ISO date of the first line near a document's start that is only a date, or ""."""
    for block in blocks[:_HEADER_BLOCKS]:
        for line in block.text.splitlines():
            line = " ".join(line.split())
            if not line or len(line) > HEADER_LINE_CHARS:
                continue
            found = header_line_date(line)
            if found:
                return found
        if len(block.text) > 2 * HEADER_LINE_CHARS:
            break  # running text: the header is over
    return ""


_BRACKETED = re.compile(r".*[（(]([^（()）]{4,24})[)）]")


def header_line_date(line: str) -> str:
    """The ISO date a header line gives when it is only a date (and a label, a weekday, "現在"...), or ""."""
    bracketed = _BRACKETED.fullmatch(line)  # "日本のエネルギー政策の現状と課題（2025年10月）"
    if bracketed:
        line = bracketed.group(1).strip()
    label = re.match(_DATE_LABEL, line, re.IGNORECASE)
    body = line[label.end():] if label else line
    if re.fullmatch(f"(?:{_NUMERIC_DATE.pattern}){_DATE_TAIL}", body):
        return normalize_date(body)
    era = re.fullmatch(f"(?:{_ERA_DATE.pattern}){_DATE_TAIL}", body)
    if era:
        year = _ERA[era.group(1)] + (1 if era.group(2) == "元" else int(era.group(2)))
        return normalize_date(f"{year}-{era.group(3)}" + (f"-{era.group(4)}" if era.group(4) else ""))
    en = _EN_DATE.fullmatch(body)
    if en and en.group(2).lower() in _MONTHS and not (en.group(1) and en.group(3)):
        day = en.group(1) or en.group(3)
        return normalize_date(f"{en.group(4)}-{_MONTHS[en.group(2).lower()]}" + (f"-{day}" if day else ""))
    return ""


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return str(value).strip()
