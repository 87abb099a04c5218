"""The one front door: `Assistant`, used by the CLI, the web page, the HTTP API and the Slack bot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from assistant.types import Answer, IngestReport, Passage

ProgressFn = Callable[[int, int, str], None]  # (done, total, what)


@dataclass
class Filters:
    """Restricts retrieval: to some documents, and to documents dated within a range (ISO dates)."""

    doc_ids: list[str] = field(default_factory=list)
    date_from: str | None = None
    date_to: str | None = None

    def is_empty(self) -> bool:
        return not self.doc_ids and not self.date_from and not self.date_to


@dataclass
class DocumentInfo:
    doc_id: str
    title: str
    source: str
    origin: str  # "corpus" folder it was ingested from, or "upload"
    chunks: int
    date: str
    language: str
    ingested_at: str
    sha256: str


History = Sequence[dict[str, str]]  # [{"role": "user"|"assistant", "content": "..."}]


class Assistant:
    """Answers questions over the indexed documents; see `make_assistant` to build one."""

    def __init__(self, settings: Settings, index: Any, retriever: Any, answerer: Any) -> None:
        self.settings = settings
        self.index = index
        self.retriever = retriever
        self.answerer = answerer

    def retrieve(self, question: str, top_k: int | None = None, filters: Filters | None = None) -> list[Passage]:
        raise NotImplementedError

    def ask(self, question: str, history: History = (), top_k: int | None = None,
            filters: Filters | None = None) -> Answer:
        raise NotImplementedError

    def ask_stream(self, question: str, history: History = (), top_k: int | None = None,
                   filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yields text deltas as they are produced, then the final `Answer`."""
        raise NotImplementedError

    def ingest(self, paths: Sequence[Path] = (), prune: bool = False,
               progress: ProgressFn | None = None) -> IngestReport:
        raise NotImplementedError

    def add_upload(self, filename: str, data: bytes, progress: ProgressFn | None = None) -> IngestReport:
        """Stores an uploaded file under the documents folder (name sanitised) and ingests it."""
        raise NotImplementedError

    def list_documents(self) -> list[DocumentInfo]:
        raise NotImplementedError

    def delete_document(self, doc_id: str) -> bool:
        raise NotImplementedError

    def health(self) -> dict[str, Any]:
        raise NotImplementedError


def make_assistant(settings: Settings | None = None) -> Assistant:
    raise NotImplementedError
