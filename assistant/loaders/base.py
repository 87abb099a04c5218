"""The loader contract: options, the suffix registry and helpers shared by the format modules.

A format module exposes `SUFFIXES` (lower-case, with the dot) and
`load(path, opts) -> LoadedDocument`; adding a format is one module plus its name in `FORMAT_MODULES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from assistant.text.normalize import single_spaced
from assistant.types import Block, LoadedDocument, LoadError

# Imported lazily by `registry()`; each module imports its heavy library inside `load`.
FORMAT_MODULES = ("text", "markdown", "html", "pdf", "docx", "pptx")

SIDECAR_SUFFIX = ".meta.json"


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may need beyond the path."""

    max_bytes: int = 20 * 1024 * 1024
    max_pdf_pages: int = 2000
    ocr: bool = True
    ocr_languages: str = "jpn+eng"


class Loader(Protocol):
    def __call__(self, path: Path, opts: LoadOptions) -> LoadedDocument: ...


@cache
def registry() -> dict[str, Loader]:
    """Map each supported suffix to its format module's `load`."""
    loaders: dict[str, Loader] = {}
    for name in FORMAT_MODULES:
        module = importlib.import_module(f"assistant.loaders.{name}")
        for suffix in module.SUFFIXES:
            loaders[suffix] = module.load
    return loaders


def assign_sections(blocks: list[Block]) -> list[Block]:
    """Give each block without a section the text of the last heading before it (in place)."""
    current: str | None = None
    for block in blocks:
        if block.kind == "heading":
            current = single_spaced(block.text) or current
            if block.section is None:
                block.section = current
        elif block.section is None:
            block.section = current
    return blocks


def drop_empty(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.text.strip()]


def is_cjk(ch: str) -> bool:
    """Japanese/Chinese characters and full-width punctuation, between which no space belongs."""
    code = ord(ch)
    return (
        0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x2E80 <= code <= 0x2FDF  # radicals (look-alikes, repaired later)
        or 0x20000 <= code <= 0x3FFFF
    )


def corrupt(kind: str, kind_ja: str, detail: str = "") -> LoadError:
    """The LoadError for a file its library cannot parse."""
    suffix = f" ({detail})" if detail else ""
    return LoadError(
        f"corrupt or unreadable {kind}{suffix}", f"{kind_ja}ファイルが壊れているか読み取れません{suffix}"
    )
