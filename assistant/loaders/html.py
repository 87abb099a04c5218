"""HTML pages: visible text only (no script, style, nav), headings, list items and table rows.

Markup is parsed once here and only its text is kept, so nothing in a page is read as markup later.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.loaders.base import LoadOptions, assign_sections, drop_empty, is_cjk
from assistant.loaders.encoding import decode_text
from assistant.loaders.meta import normalize_date
from assistant.types import Block, BlockKind, DocMeta, LoadedDocument

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

SUFFIXES = {".html", ".htm"}

_DROP = ["script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "head", "button"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
    "figure", "figcaption", "address", "dl", "dt", "dd", "form", "fieldset", "hr", "ul", "ol",
    "body", "center", "details", "summary", "caption", "html",
}
_BREAK = "\x00"  # stands for <br> until whitespace is collapsed
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_DATE_NAMES = (
    "date", "dc.date", "dc.date.issued", "dcterms.date", "dcterms.issued", "article:published_time",
    "pubdate", "publish_date", "citation_publication_date", "og:published_time",
)
_PUBLISHER_NAMES = ("publisher", "dc.publisher", "dcterms.publisher", "og:site_name")


def load(path: Path, opts: LoadOptions) -> LoadedDocument:
    from bs4 import BeautifulSoup

    text, warnings = _decode(path.read_bytes())
    soup = BeautifulSoup(text, "html.parser")
    meta = _meta(soup)
    for tag in soup.find_all(_DROP):
        tag.decompose()
    walker = _Walker()
    walker.walk(soup)
    walker.flush()
    return LoadedDocument(blocks=assign_sections(drop_empty(walker.blocks)), meta=meta, warnings=warnings)


def _decode(data: bytes) -> tuple[str, list[str]]:
    declared = _CHARSET.search(data[:4096])
    if declared:
        name = declared.group(1).decode("ascii", "ignore").lower()
        name = "cp932" if name in ("shift_jis", "shift-jis", "sjis", "x-sjis", "windows-31j") else name
        try:
            return data.decode(name).lstrip("\ufeff"), []
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common; fall back to detection
    text, _, warnings = decode_text(data)
    return text, warnings


def _meta(soup: BeautifulSoup) -> DocMeta:
    found: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        key = str(tag.get("name") or tag.get("property") or tag.get("itemprop") or "").lower()
        content = str(tag.get("content") or "").strip()
        if key and content and key not in found:
            found[key] = content
    title_tag = soup.find("title")
    title = collapse(title_tag.get_text()) if title_tag else ""
    html_tag = soup.find("html")
    language = str(html_tag.get("lang") or "") if html_tag else ""
    dates = (normalize_date(found[k]) for k in _DATE_NAMES if k in found)
    date = next((d for d in dates if d), "")
    if not date:
        time_tag = soup.find("time", attrs={"datetime": True})
        date = normalize_date(time_tag["datetime"]) if time_tag else ""
    return DocMeta(
        title=title or found.get("og:title", ""),
        language=language.split("-")[0].lower(),
        publisher=next((found[k] for k in _PUBLISHER_NAMES if k in found), ""),
        date=date,
    )


def collapse(text: str) -> str:
    """Collapse source whitespace as a browser shows it; no space is left between Japanese characters."""

    def space(match: re.Match[str]) -> str:
        start, end = match.start(), match.end()
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if "\n" in match.group() and before and after and is_cjk(before) and is_cjk(after):
            return ""
        return " "

    text = re.sub(r"[ \t\r\n\f\u00a0]+", space, text)
    return "\n".join(line.strip() for line in text.split(_BREAK)).strip()


class _Walker:
    """Turns a parsed tree into blocks, keeping inline text together until a block boundary."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buffer: list[str] = []

    def flush(self) -> None:
        self._emit(collapse("".join(self.buffer)), "paragraph")
        self.buffer.clear()

    def _emit(self, text: str, kind: BlockKind) -> None:
        if text.strip():
            self.blocks.append(Block(text, kind=kind))

    def walk(self, node: Tag) -> None:
        from bs4.element import NavigableString, PreformattedString, Tag

        for child in node.children:
            if isinstance(child, PreformattedString):
                continue  # comments, CDATA, doctype, processing instructions
            if isinstance(child, NavigableString):
                self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADINGS:
                self.flush()
                self._emit(collapse(inline_text(child)), "heading")
            elif name == "li":
                self.flush()
                self._emit(collapse(inline_text(child, skip={"ul", "ol", "table"})), "bullet")
                for nested in child.find_all(["ul", "ol", "table"], recursive=False):
                    self.walk_block(nested)
            elif name == "tr":
                self.flush()
                cells = [collapse(inline_text(c)) for c in child.find_all(["td", "th"], recursive=False)]
                self._emit(" | ".join(cells), "table_row")
            elif name == "pre":
                self.flush()
                self._emit(child.get_text().strip("\n"), "paragraph")
            elif name == "br":
                self.buffer.append(_BREAK)
            elif name in _BLOCKS or name in ("table", "thead", "tbody", "tfoot"):
                self.walk_block(child)
            else:
                self.walk(child)

    def walk_block(self, node: Tag) -> None:
        self.flush()
        self.walk(node)
        self.flush()


def inline_text(tag: Tag, skip: set[str] | None = None) -> str:
    """The text under `tag` with <br> kept as a break, leaving out subtrees named in `skip`."""
    from bs4.element import NavigableString, PreformattedString, Tag

    parts: list[str] = []
    for child in tag.children:
        if isinstance(child, PreformattedString):
            continue
        if isinstance(child, NavigableString):
            parts.append(str(child))
        elif isinstance(child, Tag):
            if skip and child.name in skip:
                continue
            if child.name == "br":
                parts.append(_BREAK)
            else:
                inner = inline_text(child, skip)
                # Block children inside a list item or cell still separate words.
                parts.append(f"\n{inner}\n" if child.name in _BLOCKS and inner else inner)
    return "".join(parts)
