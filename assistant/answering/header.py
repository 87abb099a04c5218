"""Questions about a document's own date or maker ("この資料はいつ出されましたか", "Who prepared this
memo?", "この資料を作ったのはどこの部署ですか"): answered by the lines under its title that give them
("2025年11月5日", "経営企画部 IR担当", "作成：エネルギー調査室 佐藤 美咲").

Such lines share no word with the question and are too short for the embedding model to rate, so the
sentence scorer seldom finds them; but where they stand says what they are. A document's header is the
short lines its first passage opens with, before its first section heading or running text. A question
that asks this of a document without such a header is answered, or refused, like any other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.extractive import Scored
from assistant.loaders.meta import HEADER_LINE_CHARS, header_line_date
from assistant.text.normalize import single_spaced
from assistant.text.roles import asks_author
from assistant.types import Passage

# "この資料", "本レポート", "決算資料は", "this memo", "the quarterly results report": the question is about the
# document itself.
_SELF = re.compile(
    r"(?:この|本|当|同)(?:資料|文書|レポート|リポート|報告書?|メモ|ブリーフィング|記事|論文|文章|ペーパー|ファイル)|本稿|本書|"
    r"(?:資料|文書|レポート|リポート|報告書|メモ|ブリーフィング)[はをが]|"
    r"\b(?:this|the)\s+(?:[\w-]+\s+){0,3}?(?:document|report|memo|briefing|paper|note|file|summary)\b",
    re.IGNORECASE,
)
_WHEN = re.compile(r"いつ|日付|何日|何月何日|発行日|作成日|公表日|\bwhen\b|\bdate[ds]?\b|\bwhat day\b", re.IGNORECASE)
_WHO = re.compile(
    r"誰|だれ|どなた|どこの(?:部署|部門|部|課|室|組織|会社|機関|団体)|どの(?:部署|部門|部|課|室|組織|会社|機関|団体)|"
    r"発行元|作成元|発行者|作成者|\bwho\b|\bwhich (?:department|team|division|unit|office|organi[sz]ation|company)\b",
    re.IGNORECASE,
)
# A byline's own words: such a line is the answer before any other header line.
_BYLINE = re.compile(r"作成|執筆|文責|発行|担当|著|\bby\b|\bprepared\b|\bauthor", re.IGNORECASE)
MAX_AUTHOR_LINES = 2


def asks(question: str) -> str | None:
    """"date" or "author" when the question asks for the document's own date or maker, else None.
    The date needs the document named ("この資料はいつ…"): "When did the author join the institute?"
    asks about the author's life, not the document."""
    named = _SELF.search(question) is not None
    if named and _WHEN.search(question):
        return "date"
    if (named or asks_author(question)) and _WHO.search(question):
        return "author"
    return None


def header_lines(passage: Passage) -> list[tuple[int, int, bool]]:
    """(start, end, is the title) of the lines that open a document's first passage, up to its first
    section heading or running text: the title line, a date, a byline. [] when the passage opens
    with a section or a sentence."""
    title = single_spaced(passage.title)
    section = single_spaced(passage.section)
    out: list[tuple[int, int, bool]] = []
    pos = 0
    for line in passage.text.splitlines(keepends=True):
        start, text = pos, line.strip()
        pos += len(line)
        if not text:
            continue
        flat = single_spaced(text)
        if len(text) > HEADER_LINE_CHARS or (flat == section and flat != title):
            break
        begin = start + line.index(text)
        out.append((begin, begin + len(text), flat == title))
    return out


def answer_lines(kind: str, passage: Passage) -> list[tuple[int, int]]:
    """The header lines that answer a `kind` question: the first dated one for "date" (a title ending
    "（2025年10月）" too); for "author", the byline ("作成：…") or else the undated lines other than the
    title (at most `MAX_AUTHOR_LINES`)."""
    lines = header_lines(passage)
    dated = [(s, e) for s, e, _ in lines if header_line_date(passage.text[s:e])]
    if kind == "date":
        return dated[:1]
    undated = [(s, e) for s, e, is_title in lines if not is_title and (s, e) not in dated]
    bylines = [(s, e) for s, e in undated if _BYLINE.search(passage.text[s:e])]
    return (bylines or undated)[:MAX_AUTHOR_LINES]


def chosen(kind: str, passages: Sequence[Passage]) -> list[Scored]:
    """The answer's quotes from the first passage when it is a header that gives what is asked."""
    if not passages:
        return []
    p = passages[0]
    return [Scored(0, s, e, p.text[s:e], 0.0, 0.0, 0.0, False, 1.0) for s, e in answer_lines(kind, p)]
