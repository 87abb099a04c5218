"""Incremental, atomic ingestion: files in, chunks out, in SQLite (records, keyword) and Chroma (vectors).

Per document the order is: vectors journalled and written, then one SQLite transaction swaps the
document's record, chunks and keyword postings and journals the stale vector ids, then stale vectors
are deleted. A run killed at any point leaves queries seeing each document's previous or new state;
the next opening of the data directory, or the next run, deletes the journalled vectors no chunk uses.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ServiceUnavailable
from assistant.index import DocRecord, Index, now_iso
from assistant.keyword.tokenize import TOKENIZER_VERSION
from assistant.loaders import LOADER_VERSION, load_document
from assistant.settings import Settings
from assistant.text.chunking import CHUNKER_VERSION, chunk_display
from assistant.text.lang import detect_language
from assistant.text.normalize import NORMALIZER_VERSION, build_display, search_form, title_line
from assistant.text.structure import chunk_roles, document_roles
from assistant.types import Chunk, Failure, IngestReport, LoadError
from assistant.vectorstore import VectorStore

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
UPLOAD_ORIGIN = "upload"
SIDECAR_SUFFIX = ".meta.json"
_FLUSH_CHUNKS = 128


@dataclass(frozen=True)
class Deletion:
    """A document removed from SQLite; `vectors_pending` of its vectors could not be deleted yet (the
    vector store was down): they stay journalled, and the next recovery deletes them."""

    doc_id: str
    chunks: int
    vectors_pending: int = 0


INGEST_NICE = 10


def lower_priority() -> None:
    """Runs the calling thread, and the threads it starts, at a lower CPU priority than the threads that
    answer questions, so that ingesting beside a server does not stall it: on Linux a thread's nice value
    is its own and passes to the threads it creates."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INGEST_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: ingestion runs as it is
        log.info("ingestion keeps its priority: %s", exc)


@dataclass
class Job:
    """One file to consider: where it is, its stable id, and the folder (origin) it came from."""

    path: Path
    doc_id: str
    origin: str
    source: str


@dataclass
class Prepared:
    job: Job
    record: DocRecord
    display_text: str
    chunks: list[Chunk]
    embed_texts: list[str]  # search form with title and section: embedded and keyword-indexed
    reembed: bool
    status: str  # added | changed
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


def current_versions(settings: Settings, embedder_version: str) -> dict[str, str]:
    """Everything whose change means a document must be re-indexed."""
    return {
        "embedder": embedder_version,
        "loader": LOADER_VERSION,
        "normalizer": NORMALIZER_VERSION,
        "chunker": CHUNKER_VERSION,
        "tokenizer": TOKENIZER_VERSION,
        "chunking": f"{settings.chunk_chars}/{settings.chunk_max_chars}/{settings.chunk_overlap_sentences}",
        "embed_text": "title+section" if settings.embed_with_title else "text",
        "keyword_text": "title+section" if settings.embed_with_title else "text",
    }


def version_change(old: dict[str, str], new: dict[str, str]) -> str:
    changed = [k for k in new if old.get(k) != new[k]]
    return ", ".join(f"{k} changed ({old.get(k, '-')} -> {new[k]})" for k in changed)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            h.update(block)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        h.update(b"\0sidecar\0" + sidecar.read_bytes())
    return h.hexdigest()


def make_chunk_ids(doc_id: str, texts: Sequence[str]) -> list[str]:
    """Ids from the document id and the chunk's content; a repeated text gets a counter."""
    seen: dict[str, int] = {}
    out = []
    for text in texts:
        digest = hashlib.sha1(f"{doc_id}\0{text}".encode()).hexdigest()[:20]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        out.append(digest if n == 0 else f"{digest}-{n}")
    return out


def discover(paths: Sequence[Path]) -> tuple[list[Job], list[Failure], list[str]]:
    """Files to ingest under the given paths, plus failures for missing paths; returns origins too."""
    jobs: list[Job] = []
    failures: list[Failure] = []
    origins: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            origin = str(path.resolve())
            origins.append(origin)
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = file.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or file.name.endswith(SIDECAR_SUFFIX):
                    continue
                jobs.append(Job(file, rel.as_posix(), origin, str(file)))
        elif path.is_file():
            jobs.append(Job(path, path.name, str(path.resolve().parent), str(path)))
        else:
            failures.append(Failure(str(path), "no such file or folder", "ファイルまたはフォルダが見つかりません"))
    return jobs, failures, origins


class Ingestor:
    """Runs ingestion against one `Index` and one `VectorStore`."""

    def __init__(self, settings: Settings, index: Index, vectors: VectorStore, embedder_version: str) -> None:
        self.settings = settings
        self.index = index
        self.vectors = vectors
        self.versions = current_versions(settings, embedder_version)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="embed", initializer=lower_priority)

    @contextmanager
    def writer(self, wait: bool = True) -> Iterator[bool]:
        """One writer at a time per data directory, across threads and processes (an exclusive file lock).

        Without it, one run's recovery could delete vectors another run has written but not yet committed.
        Yields whether the lock is held: always when `wait`, else only if no one else held it.
        """
        lock_path = self.settings.index_db.with_name("ingest.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as fp:
            try:
                fcntl.flock(fp, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fp, fcntl.LOCK_UN)

    def recover(self) -> int:
        """Deletes the journalled vectors no committed chunk uses (a killed run's, or a clean-up the vector
        store was down for); returns how many. The journal is kept if the vector store fails."""
        orphans = self.index.journal_orphans()
        if orphans:
            self.vectors.delete(orphans)
        self.index.journal_clear()
        return len(orphans)

    def recover_pending(self) -> int:
        """`recover` when a data directory is opened or the store answers again, unless another process
        is writing (its run recovers first) or the store is down (the journal waits for the next try)."""
        with self.writer(wait=False) as held:
            if not held:
                return 0
            try:
                removed = self.recover()
            except ServiceUnavailable as exc:
                log.info("vector clean-up postponed, the journal is kept: %s", exc.message)
                return 0
        if removed:
            log.warning("removed %d vectors that no chunk uses (left by an interrupted run or delete)", removed)
        return removed

    def reconcile(self) -> int:
        """Deletes the vectors whose ids no chunk in SQLite has, journal or not; returns how many.
        The collection must be this data directory's alone. Reads every id once from each store (10k
        ids: about 20 ms from embedded Chroma). Call under `writer`; `ingest --prune` runs it."""
        unknown = self.vectors.all_ids() - self.index.all_chunk_ids()
        if unknown:
            self.vectors.delete(unknown)
            log.warning("removed %d vectors that no chunk uses", len(unknown))
        return len(unknown)

    def run(self, paths: Sequence[Path], prune: bool = False, progress: ProgressFn | None = None) -> IngestReport:
        with self.writer():
            return self._run(paths, prune, progress)

    def _run(self, paths: Sequence[Path], prune: bool, progress: ProgressFn | None) -> IngestReport:
        started = time.perf_counter()
        jobs, failures, origins = discover(paths)
        report = self._execute(jobs, progress, failures)
        if prune:
            seen = {(j.origin, j.doc_id) for j in jobs}
            for origin in origins:
                for rec in self.index.records(origin=origin):
                    if (origin, rec.doc_id) not in seen:
                        self._delete(rec.doc_id)
                        report.removed.append(rec.doc_id)
            if removed := self.reconcile():
                report.warnings.append({"source": str(self.settings.chroma_url or self.settings.chroma_dir),
                                        "warning": f"removed {removed} vectors that no chunk uses"})
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def file_of(self, rec: DocRecord) -> Path:
        """The file a document was read from: an upload's copy in the documents folder, else the file
        under the folder it was ingested from (`discover`: its id is its path there)."""
        if rec.origin == UPLOAD_ORIGIN:
            return self.settings.documents_dir / Path(rec.source).name
        return Path(rec.origin) / rec.doc_id

    def outdated(self) -> list[tuple[DocRecord, str]]:
        """Documents an earlier version indexed otherwise (another embedding model, chunker, tokenizer
        or chunk size), each with what changed."""
        return [(r, why) for r in self.index.records() if (why := version_change(r.versions, self.versions))]

    def refresh(self, progress: ProgressFn | None = None) -> IngestReport:
        """Re-indexes the documents `outdated` lists from their files, uploads included, so that the
        store never mixes vectors of two models: a question embedded by the new model against passages
        embedded by the old one is scored by neither. A document whose file is gone keeps its old
        index and is reported failed, in both languages."""
        with self.writer():
            jobs: list[Job] = []
            failures: list[Failure] = []
            for rec, why in self.outdated():
                path = self.file_of(rec)
                if path.is_file():
                    log.warning("re-indexing %s: %s", rec.doc_id, why)
                    jobs.append(Job(path, rec.doc_id, rec.origin, rec.source))
                else:
                    failures.append(Failure(rec.source, f"not re-indexed ({why}): its file {path} is gone",
                                            f"再インデックスできません（{why}）：ファイル {path} がありません"))
            return self._execute(jobs, progress, failures) if jobs or failures else IngestReport()

    def run_jobs(self, jobs: list[Job], progress: ProgressFn | None = None) -> IngestReport:
        with self.writer():
            return self._execute(jobs, progress)

    def _execute(self, jobs: list[Job], progress: ProgressFn | None, failures: Sequence[Failure] = ()
                 ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(failed=list(failures))
        self.recover()
        self._process(jobs, report, progress)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def delete(self, doc_id: str) -> Deletion | None:
        """Removes a document (None if there is none); see `Deletion` for a vector store that is down."""
        with self.writer():
            return self._delete(doc_id)

    def _delete(self, doc_id: str) -> Deletion | None:
        if self.index.get_record(doc_id) is None:
            return None
        old = self.index.delete_document(doc_id)  # the commit that removes it also journals its chunk ids
        try:
            self.vectors.delete(old)
        except ServiceUnavailable as exc:
            log.warning("deleted %s; its %d vectors are journalled for later: %s", doc_id, len(old), exc.message)
            return Deletion(doc_id, len(old), vectors_pending=len(old))
        self.index.journal_clear(old)
        return Deletion(doc_id, len(old))

    # Internals -----------------------------------------------------------------------------------
    def _process(self, jobs: list[Job], report: IngestReport, progress: ProgressFn | None) -> None:
        pending: list[Prepared] = []
        pending_chunks = 0
        for done, job in enumerate(jobs, 1):
            try:
                prepared = self._prepare(job, report)
            except LoadError as exc:
                report.failed.append(Failure(job.source, exc.reason, exc.reason_ja))
                prepared = None
            except Exception as exc:  # a bad document never stops the run
                log.exception("failed to ingest %s", job.source)
                report.failed.append(Failure(job.source, f"unexpected error: {type(exc).__name__}: {exc}",
                                             f"予期しないエラー: {type(exc).__name__}: {exc}"))
                prepared = None
            if prepared is not None:
                pending.append(prepared)
                pending_chunks += len(prepared.chunks)
                if pending_chunks >= _FLUSH_CHUNKS:
                    self._flush(pending, report)
                    pending, pending_chunks = [], 0
            if progress:
                progress(done, len(jobs), job.source)
        if pending:
            self._flush(pending, report)

    def _prepare(self, job: Job, report: IngestReport) -> Prepared | None:
        size = job.path.stat().st_size
        if size > self.settings.max_file_bytes:
            mb, limit = size / 1048576, self.settings.max_file_mb
            raise LoadError(
                f"file is {mb:.1f} MB, over the limit of {limit:g} MB (ASSISTANT_MAX_FILE_MB)",
                f"ファイルが{mb:.1f}MBで、上限の{limit:g}MB（ASSISTANT_MAX_FILE_MB）を超えています",
            )
        digest = file_digest(job.path)
        old = self.index.get_record(job.doc_id)
        reason = ""
        if old is not None:
            reason = version_change(old.versions, self.versions)
            if old.sha256 == digest and not reason:
                report.skipped.append(job.doc_id)
                return None
        loaded = load_document(job.path, self.settings.max_file_bytes, self.settings.ocr, self.settings.ocr_languages,
                               max_pdf_pages=self.settings.max_pdf_pages)
        display = build_display(loaded.blocks)
        if not display.text.strip():
            raise LoadError("empty document: no text found", "文書が空です（テキストがありません）")
        spans = chunk_display(display, self.settings.chunk_chars, self.settings.chunk_max_chars,
                              self.settings.chunk_overlap_sentences)
        meta = loaded.meta
        title = meta.title or job.path.stem
        language = meta.language or detect_language(display.text[:4000])
        texts = [display.text[s.start : s.end] for s in spans]
        ids = make_chunk_ids(job.doc_id, texts)
        # Each line's role (heading, item, field, table row...) is fixed here, once, for the answerer to read.
        roles = document_roles(display, title)
        chunks = [
            Chunk(chunk_id=cid, doc_id=job.doc_id, text=text, start=s.start, end=s.end, title=title,
                  section=s.section or "", page=s.page, source=job.source, date=meta.date, language=language,
                  ordinal=i, roles=chunk_roles(roles, s.start, s.end))
            for i, (cid, text, s) in enumerate(zip(ids, texts, spans, strict=True))
        ]
        search_texts = [search_form(t).text for t in texts]
        embed_texts = [self._embed_text(title, c.section, s) for c, s in zip(chunks, search_texts, strict=True)]
        sections = meta.sections or list(dict.fromkeys(c.section for c in chunks if c.section))
        record = DocRecord(
            doc_id=job.doc_id, source=job.source, origin=job.origin, title=title, date=meta.date,
            language=language, publisher=meta.publisher, sha256=digest, size=size, versions=dict(self.versions),
            meta={"sections": sections, **meta.extra}, ingested_at=now_iso(),
        )
        # Vectors embed the title too: a new title (e.g. from an edited sidecar) needs new vectors.
        reembed = old is None or old.title != title or any(
            old.versions.get(k) != self.versions[k] for k in ("embedder", "embed_text"))
        status = "added" if old is None else "changed"
        return Prepared(job, record, display.text, chunks, embed_texts, reembed, status,
                        reason if old is not None and old.sha256 == digest else "", loaded.warnings)

    def _embed_text(self, title: str, section: str, search_text: str) -> str:
        if not self.settings.embed_with_title:
            return search_text
        head = title_line(title, section)
        return f"{head}\n{search_text}" if head else search_text

    def _flush(self, batch: list[Prepared], report: IngestReport) -> None:
        new_ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        for p in batch:
            ids = [c.chunk_id for c in p.chunks]
            keep = set() if p.reembed else self.vectors.existing_ids(ids)
            for c, t in zip(p.chunks, p.embed_texts, strict=True):
                if c.chunk_id not in keep:
                    new_ids.append(c.chunk_id)
                    texts.append(t)
                    metas.append({"doc_id": c.doc_id, "date": c.date or "", "ordinal": c.ordinal})
        # Journalled before they are written: a run killed before the commit leaves them to `recover`.
        self.index.journal_add((c.chunk_id, c.doc_id) for p in batch for c in p.chunks)
        # Embedding keeps both cores busy only part of the time: the keyword vectors are weighed on
        # this thread meanwhile (onnxruntime and SQLite release the GIL). Writes keep their order.
        embedding = self._pool.submit(self.vectors.add, new_ids, texts, metas) if new_ids else None
        try:
            # The keyword index sees what the embedding sees: title and section, then the chunk.
            weights = [[self.index.keyword.weigh(t) for t in p.embed_texts] for p in batch]
        finally:
            if embedding is not None:
                embedding.result()
        # The commit journals the stale ids: a run killed before they are deleted leaves them to `recover`.
        stales = self.index.replace_documents(
            [(p.record, p.display_text, p.chunks, w) for p, w in zip(batch, weights, strict=True)])
        stale = [c for ids in stales for c in ids]
        for p in batch:
            getattr(report, p.status).append(p.job.doc_id)
            report.chunks += len(p.chunks)
            if p.reason:
                report.reindexed[p.job.doc_id] = p.reason
            report.warnings.extend({"source": p.job.source, "warning": w} for w in p.warnings)
        if stale:
            self.vectors.delete(stale)
            self.index.journal_clear(stale)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def sanitize_filename(name: str) -> str:
    """A safe file name for the documents folder: no folders, no control characters, no leading dots.

    Invisible characters are dropped: format characters (bidi overrides such as U+202E, zero-width
    characters, the BOM), line and paragraph separators and the C1 controls.
    """
    # A bidi override shows "report\u202efdp.exe" as "reportexe.pdf". ASCII controls become "_" below.
    invisible = ("Cc", "Cf", "Cs", "Zl", "Zp")
    name = "".join(ch for ch in name if ch < "\x80" or unicodedata.category(ch) not in invisible)
    name = unicodedata.normalize("NFC", name.replace("\\", "/")).split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[:120] or "upload"
    return f"{stem}.{suffix[:16]}" if suffix else stem


