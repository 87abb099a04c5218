"""Typed results that cross module borders, and their one JSON form.

The JSON shapes (`Passage.to_json`, `Answer.to_json`, `IngestReport.to_json`) are the contract used by
the CLI, the HTTP API, the Slack bot and the evaluation; extend them, never rename keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

BlockKind = Literal["heading", "paragraph", "bullet", "table_row"]
# What a line of a chunk is: a heading, a sentence of running text, a list item, a field ("日付：…"), a table
# row, or a table's header row.
RoleKind = Literal["heading", "sentence", "item", "field", "row", "header"]


@dataclass
class Block:
    """A piece of a loaded document: raw text with where it stood (page, section heading)."""

    text: str
    kind: BlockKind = "paragraph"
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class Role:
    """The role of one line of a chunk, `text[start:end]`, fixed at ingestion (`text.structure`).

    `label` is what the line means only with: a list item's lead-in, a table row's header row, the short
    section a fragment stands under; "" for running text. `key` is a field's label ("日付" of "日付：…"),
    for a heading or line that reads "key：value"."""

    start: int
    end: int
    kind: RoleKind
    label: str = ""
    key: str = ""


@dataclass
class DocMeta:
    """Document metadata, from front matter, a sidecar file or the document itself."""

    title: str = ""
    language: str = ""
    publisher: str = ""
    date: str = ""  # ISO date (YYYY-MM-DD or YYYY-MM) where the document gives one
    sections: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedDocument:
    """What a loader returns: blocks in reading order, metadata and warnings (e.g. 'OCR used')."""

    blocks: list[Block]
    meta: DocMeta = field(default_factory=DocMeta)
    warnings: list[str] = field(default_factory=list)


class LoadError(Exception):
    """A document that cannot be read; carries the reason in English and Japanese."""

    def __init__(self, reason: str, reason_ja: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_ja = reason_ja or reason


@dataclass
class Chunk:
    """A stored passage: display text, its span in the document's display text, and provenance."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    title: str = ""
    section: str = ""
    page: int | None = None
    source: str = ""
    date: str = ""
    language: str = ""
    ordinal: int = 0
    roles: list[Role] = field(default_factory=list)


@dataclass
class Passage:
    """A retrieved chunk with its rank and score."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    section: str
    page: int | None
    source: str
    text: str
    start: int = 0
    end: int = 0
    date: str = ""
    language: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    # Each line's role, as stored with the chunk; None for a passage made outside the index (a test's, an
    # evaluation's raw paragraph): `answering.context.passage_roles` derives them once. Not in the JSON.
    roles: list[Role] | None = None

    @classmethod
    def from_chunk(cls, chunk: Chunk, rank: int, score: float, **scores: float) -> Passage:
        return cls(
            rank=rank, score=score, chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, title=chunk.title,
            section=chunk.section, page=chunk.page, source=chunk.source, text=chunk.text,
            start=chunk.start, end=chunk.end, date=chunk.date, language=chunk.language,
            scores=dict(scores), roles=list(chunk.roles),
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(replace(self, roles=None))
        del out["roles"]
        return out


@dataclass
class Citation:
    """A numbered citation: the cited passage and the exact quote, `text[start:end] == quote`."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    section: str
    page: int | None
    source: str
    text: str
    quote: str
    start: int
    end: int
    date: str = ""
    # For an English question, dictionary glosses of the Japanese quote's words ({"ja", "en"}): a
    # reading aid from the word list, not from the document, shown apart from the answer text.
    glosses: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Grounding:
    """How the answer's sentences were checked against their cited passages."""

    checked: int = 0
    supported: int = 0
    dropped: int = 0
    fallback: bool = False
    fallback_reason: str = ""
    sentences: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """The answer to one question, in the question's language, with verified citations."""

    question: str
    language: str
    answer: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    grounding: Grounding = field(default_factory=Grounding)
    answerer: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    id: str = ""
    standalone_question: str = ""
    refusal_reason: str = ""
    # Under a refusal: the sentences that came closest, each in its passage (`n` from 1). Pointers for
    # the reader, never an answer: they are not cited and the answer text does not rest on them.
    closest: list[Citation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "language": self.language,
            "answer": self.answer,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "standalone_question": self.standalone_question,
            "citations": [c.to_json() for c in self.citations],
            "closest": [c.to_json() for c in self.closest],
            "passages": [p.to_json() for p in self.passages],
            "grounding": self.grounding.to_json(),
            "answerer": self.answerer,
            "timings_ms": dict(self.timings_ms),
        }


@dataclass
class Failure:
    source: str
    reason: str
    reason_ja: str = ""


@dataclass
class IngestReport:
    """What one ingestion run did; `to_json` is the `--json` report and the upload response."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    reindexed: dict[str, str] = field(default_factory=dict)  # doc_id -> why
    chunks: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def retrieval_json(qid: str, question: str, passages: list[Passage]) -> dict[str, Any]:
    """The JSON form of one `retrieve` result."""
    return {"id": qid, "question": question, "passages": [p.to_json() for p in passages]}
