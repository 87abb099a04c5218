"""The one front door: `Assistant`, used by the CLI, the web page, the HTTP API and the Slack bot."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ServiceUnavailable, UserError, check_question
from assistant.index import Index
from assistant.ingest import UPLOAD_ORIGIN, Deletion, Ingestor, Job, sanitize_filename
from assistant.retrieval import Mode, Retriever
from assistant.settings import Settings, apply_offline_env
from assistant.types import Answer, Chunk, IngestReport, Passage

log = logging.getLogger(__name__)

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
    """Answers questions over the indexed documents; build one with `make_assistant`."""

    def __init__(self, settings: Settings, index: Index, vectors: Any, embedder: Any, retriever: Retriever,
                 ingestor: Ingestor, pipeline: Any = None) -> None:
        self.settings = settings
        self.index = index
        self.vectors = vectors
        self.embedder = embedder
        self.retriever = retriever
        self.ingestor = ingestor
        self._pipeline = pipeline
        # What `make_assistant` re-indexed on opening: documents an earlier version indexed otherwise.
        self.refreshed: IngestReport | None = None

    # Questions -----------------------------------------------------------------------------------
    def allowed_docs(self, filters: Filters | None) -> set[str] | None:
        if filters is None or filters.is_empty():
            return None
        return self.index.doc_ids_matching(filters.doc_ids, filters.date_from, filters.date_to)

    def retrieve(self, question: str, top_k: int | None = None, filters: Filters | None = None,
                 mode: Mode = "hybrid", timings: dict[str, float] | None = None) -> list[Passage]:
        question = check_question(question, self.settings.max_question_chars)
        return self.retriever.search(question, top_k or self.settings.top_k, self.allowed_docs(filters), mode,
                                     timings)

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            from assistant.answering.chain import make_pipeline

            self._pipeline = make_pipeline(self.settings, self.embedder, self._retrieve_for_pipeline,
                                           document=self._document_passages)
        return self._pipeline

    def _retrieve_for_pipeline(self, question: str, top_k: int, filters: Filters | None) -> list[Passage]:
        return self.retriever.search(question, top_k, self.allowed_docs(filters), "hybrid")

    def _document_passages(self, doc_id: str) -> list[Passage]:
        from assistant.answering.overview import MAX_CHUNKS

        return [Passage.from_chunk(c, rank=i, score=0.0)
                for i, c in enumerate(self.index.doc_chunks(doc_id, MAX_CHUNKS), start=1)]

    def ask(self, question: str, history: History = (), top_k: int | None = None,
            filters: Filters | None = None) -> Answer:
        answer: Answer = self.pipeline.ask(question, history=history, top_k=top_k, filters=filters)
        return answer

    def ask_stream(self, question: str, history: History = (), top_k: int | None = None,
                   filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yields text deltas as they are produced, then the final `Answer`."""
        yield from self.pipeline.ask_stream(question, history=history, top_k=top_k, filters=filters)

    # Documents -----------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[Path] = (), prune: bool = False,
               progress: ProgressFn | None = None) -> IngestReport:
        return self.ingestor.run(list(paths) or [Path("corpus")], prune=prune, progress=progress)

    def add_upload(self, filename: str, data: bytes, progress: ProgressFn | None = None) -> IngestReport:
        """Stores an uploaded file under the documents folder (name sanitised) and ingests it.

        When ingestion fails the folder is left as it was: a new file is removed, a replaced one put back.
        """
        from assistant.loaders import supported_suffixes
        from assistant.types import Failure

        name = sanitize_filename(filename)
        report = IngestReport()
        suffix = Path(name).suffix.lower()
        if suffix not in supported_suffixes():
            report.failed.append(Failure(filename, f"unsupported file type '{suffix or name}'",
                                         f"対応していないファイル形式です（{suffix or name}）"))
            return report
        if len(data) > self.settings.max_file_bytes:
            mb = len(data) / 1048576
            report.failed.append(Failure(
                filename, f"file is {mb:.1f} MB, over the limit of {self.settings.max_file_mb:g} MB",
                f"ファイルが{mb:.1f}MBで、上限の{self.settings.max_file_mb:g}MBを超えています"))
            return report
        digest = hashlib.sha256(data).hexdigest()
        for rec in self.index.records(origin=UPLOAD_ORIGIN):
            if rec.sha256 == digest:
                report.skipped.append(rec.doc_id)
                report.warnings.append({"source": filename, "warning": f"duplicate of {rec.doc_id}"})
                return report
        folder = self.settings.documents_dir
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / name).resolve()
        if target.parent != folder.resolve():  # belt and braces: sanitize_filename already strips folders
            raise UserError("bad_filename", "Bad file name.", "ファイル名が不正です。")
        tmp = target.with_name(f".{target.name}.part")
        previous = target.read_bytes() if target.is_file() else None

        def put_back() -> None:
            # A failed ingestion leaves the index as it was, so the folder goes back to what it held.
            if previous is None:
                target.unlink(missing_ok=True)
            else:
                tmp.write_bytes(previous)
                tmp.replace(target)

        tmp.write_bytes(data)
        tmp.replace(target)
        job = Job(target, f"uploads/{name}", UPLOAD_ORIGIN, f"uploads/{name}")
        try:
            report = self.ingestor.run_jobs([job], progress=progress)
        except BaseException:
            put_back()
            raise
        if report.failed:
            put_back()
        return report

    def list_documents(self) -> list[DocumentInfo]:
        return [
            DocumentInfo(r.doc_id, r.title, r.source, r.origin if r.origin == UPLOAD_ORIGIN else "corpus",
                         r.chunks, r.date, r.language, r.ingested_at, r.sha256)
            for r in self.index.records()
        ]

    def get_document(self, doc_id: str) -> tuple[DocumentInfo, list[Chunk], str] | None:
        """A document's info, its chunks in order and its display text, for the document viewer."""
        rec = self.index.get_record(doc_id)
        if rec is None:
            return None
        info = DocumentInfo(rec.doc_id, rec.title, rec.source,
                            rec.origin if rec.origin == UPLOAD_ORIGIN else "corpus", rec.chunks, rec.date,
                            rec.language, rec.ingested_at, rec.sha256)
        return info, self.index.doc_chunks(doc_id), self.index.display_text(doc_id) or ""

    def delete_document(self, doc_id: str) -> Deletion | None:
        """Removes a document and, for an upload, its file; None if there is none. It is removed even
        when the vector store is down: `Deletion.vectors_pending` then counts the vectors left to delete."""
        rec = self.index.get_record(doc_id)
        if rec is None:
            return None
        deletion = self.ingestor.delete(doc_id)
        if deletion is not None and rec.origin == UPLOAD_ORIGIN:
            self.ingestor.file_of(rec).unlink(missing_ok=True)
        return deletion

    def health(self) -> dict[str, Any]:
        counts = self.index.counts()
        vectors = self.vectors.count()
        if vectors != counts["chunks"] and self.index.journal_orphans():
            # A delete or a run while the store was down left vectors to remove: the store answers again.
            self.ingestor.recover_pending()
            vectors = self.vectors.count()
        return {
            "status": "ok",
            "model": getattr(self.embedder, "version", ""),
            "index": "chroma-server" if self.settings.chroma_url else "chroma-embedded",
            "documents": counts["documents"],
            "chunks": counts["chunks"],
            "vectors": vectors,
            "keyword_chunks": self.index.keyword.count(),
            "answerer": self.settings.llm,
        }


def make_assistant(settings: Settings | None = None) -> Assistant:
    """Builds the embedding model if needed, opens the index and the vector store."""
    apply_offline_env()
    settings = settings or Settings()
    from assistant.datadir import restrict_file_modes

    restrict_file_modes(Path(settings.data_dir))
    from assistant.embedding import LCEmbeddings, load_embedder
    from assistant.vectorstore import VectorStore

    embedder = load_embedder(settings)
    index = Index(settings.index_db)
    vectors = VectorStore(settings, LCEmbeddings(embedder))
    from assistant.text.lexicon import load_lexicon

    retriever = Retriever(index, vectors, embedder, settings.candidates_k, with_title=settings.embed_with_title,
                          lexicon=load_lexicon(str(settings.model_dir)))
    ingestor = Ingestor(settings, index, vectors, embedder.version)
    assistant = Assistant(settings, index, vectors, embedder, retriever, ingestor)
    # Vectors a killed run or a delete during a Chroma outage left behind, deleted now rather than at the
    # next ingest (which may never come): they take places in the dense candidates of every question.
    ingestor.recover_pending()
    if ingestor.outdated():
        # After an upgrade that changes the model or the chunking: the old vectors would be compared
        # with questions the new model embeds.
        try:
            assistant.refreshed = ingestor.refresh()
        except ServiceUnavailable as exc:  # questions fail too meanwhile; the next opening re-indexes
            log.warning("re-indexing postponed: %s", exc.message)
            return assistant
        for failure in assistant.refreshed.failed:
            log.warning("%s: %s", failure.source, failure.reason)
    return assistant
