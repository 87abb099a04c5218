"""Plain text files (.txt) in UTF-8, UTF-16 or a Japanese legacy encoding."""

from __future__ import annotations

from pathlib import Path

from assistant.loaders.base import LoadOptions, assign_sections, drop_empty
from assistant.loaders.encoding import decode_text
from assistant.types import DocMeta, LoadedDocument

SUFFIXES = {".txt"}


def read_text(path: Path) -> tuple[str, list[str]]:
    """The file's text with newlines made uniform, and any decoding warnings."""
    text, _, warnings = decode_text(path.read_bytes())
    return text.replace("\r\n", "\n").replace("\r", "\n"), warnings


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    from assistant.text.normalize import blocks_from_plain_text

    text, warnings = read_text(path)
    blocks = assign_sections(drop_empty(blocks_from_plain_text(text, set_lines=True)))
    # A text file's title is its first line when that line stands alone as a heading (a sidecar's wins).
    title = (blocks[0].section or "") if blocks and blocks[0].kind == "heading" else ""
    return LoadedDocument(blocks=blocks, meta=DocMeta(title=title), warnings=warnings)
