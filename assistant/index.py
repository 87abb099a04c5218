"""The SQLite side of the index: ingestion records, the active chunks, and the keyword index.

SQLite is the source of truth for which chunks exist. A document's chunks, its keyword postings and
its record change in one transaction; Chroma holds vectors by chunk id, and a vector whose chunk is
not in the `chunks` table is invisible to queries. A journal of vectors written but not yet
committed, or no longer used once committed, lets the next opening or run delete what a killed run
(or a clean-up the vector store was down for) left behind.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.keyword.index import KeywordIndex, KeywordIndexMismatch
from assistant.sqlitedb import connect_wal
from assistant.text.structure import dump_roles, load_roles
from assistant.types import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    date TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    publisher TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    versions TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    display_text TEXT NOT NULL DEFAULT '',
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    section TEXT NOT NULL DEFAULT '',
    page INTEGER,
    roles TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS vector_journal (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL
);
"""


@dataclass
class DocRecord:
    doc_id: str
    source: str
    origin: str
    title: str
    date: str
    language: str
    publisher: str
    sha256: str
    size: int
    versions: dict[str, str]
    meta: dict[str, Any]
    ingested_at: str
    chunks: int = 0


class Index:
    """Records, chunks and keyword postings in one SQLite file (WAL mode, one writer at a time)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self.conn = connect_wal(path, timeout=60, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # Postings land all over the (term, chunk) B-tree; a 64 MB page cache keeps large indexes
        # from rereading their inner pages on every insert (about 10% faster adds at 40k chunks).
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.executescript(SCHEMA)
        self._migrate_roles()
        try:
            self.keyword = KeywordIndex(self.conn)
        except KeywordIndexMismatch:
            self.keyword = self._reset_keyword_index()

    def _reset_keyword_index(self) -> KeywordIndex:
        """The keyword weighting changed: empty the keyword index and mark every document for re-indexing."""
        with self.transaction() as conn:
            for table in ("kw_posting", "kw_chunk", "kw_term", "kw_meta"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("UPDATE documents SET versions = json_set(versions, '$.tokenizer', 'reset')")
        return KeywordIndex(self.conn)

    def close(self) -> None:
        self.conn.close()

    def _migrate_roles(self) -> None:
        """An index built before chunks stored their lines' roles: adds the column, then derives the roles
        of every chunk without them once, from its text (`text.structure.roles_from_text`). A run killed
        half way leaves the rest NULL, and the next opening completes them."""
        # Rows still without roles are found through a partial index: no scan of the table at each opening.
        missing = "CREATE INDEX IF NOT EXISTS chunks_roles_missing ON chunks(chunk_id) WHERE roles IS NULL"
        if "roles" in {r[1] for r in self.conn.execute("PRAGMA table_info(chunks)")}:
            self.conn.execute(missing)
            if self.conn.execute("SELECT 1 FROM chunks WHERE roles IS NULL LIMIT 1").fetchone() is None:
                return
        from assistant.text.structure import roles_from_text

        with self.transaction() as conn:
            if "roles" not in {r[1] for r in conn.execute("PRAGMA table_info(chunks)")}:
                conn.execute("ALTER TABLE chunks ADD COLUMN roles TEXT")
                conn.execute(missing)
            rows = conn.execute(
                "SELECT c.chunk_id, c.text, c.section, COALESCE(d.title, '') FROM chunks c"
                " LEFT JOIN documents d USING (doc_id) WHERE c.roles IS NULL").fetchall()
            conn.executemany("UPDATE chunks SET roles = ? WHERE chunk_id = ?",
                             [(dump_roles(roles_from_text(text, section, title)), cid)
                              for cid, text, section, title in rows])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: other processes wait, a crash rolls everything back."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # Records -----------------------------------------------------------------------------------
    def get_record(self, doc_id: str) -> DocRecord | None:
        row = self.conn.execute(
            "SELECT doc_id, source, origin, title, date, language, publisher, sha256, size, versions, meta,"
            " ingested_at, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)"
            " FROM documents d WHERE doc_id = ?",
            (doc_id,),
        ).fetchone()
        return _record(row) if row else None

    def records(self, origin: str | None = None) -> list[DocRecord]:
        sql = (
            "SELECT doc_id, source, origin, title, date, language, publisher, sha256, size, versions, meta,"
            " ingested_at, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id) FROM documents d"
        )
        args: tuple[str, ...] = ()
        if origin is not None:
            sql += " WHERE origin = ?"
            args = (origin,)
        return [_record(r) for r in self.conn.execute(sql + " ORDER BY doc_id", args)]

    def display_text(self, doc_id: str) -> str | None:
        row = self.conn.execute("SELECT display_text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def chunk_ids(self, doc_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT chunk_id FROM chunks")}

    # Journal of vectors that may be in Chroma without being committed here ---------------------
    def journal_add(self, entries: Iterable[tuple[str, str]]) -> None:
        """Records (chunk_id, doc_id) pairs whose vectors are about to be written."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO vector_journal (chunk_id, doc_id) VALUES (?, ?)", list(entries))

    def journal_orphans(self) -> list[str]:
        """Journalled vector ids that no committed chunk uses: left by a killed run, or by a clean-up
        the vector store was down for."""
        rows = self.conn.execute(
            "SELECT j.chunk_id FROM vector_journal j LEFT JOIN chunks c ON c.chunk_id = j.chunk_id"
            " WHERE c.chunk_id IS NULL"
        )
        return [r[0] for r in rows]

    def journal_clear(self, chunk_ids: Iterable[str] | None = None) -> None:
        with self.transaction() as conn:
            if chunk_ids is None:
                conn.execute("DELETE FROM vector_journal")
            else:
                conn.executemany("DELETE FROM vector_journal WHERE chunk_id = ?", [(c,) for c in chunk_ids])

    # Writes ------------------------------------------------------------------------------------
    def replace_documents(
            self, items: Sequence[tuple[DocRecord, str, Sequence[Chunk], Sequence[Mapping[str, float]]]]
    ) -> list[list[str]]:
        """Swaps documents' records, chunks and keyword postings in one transaction; returns each one's
        stale chunk ids (old ones the new chunks do not reuse).

        Items are (record, display text, chunks, each chunk's keyword vector from `keyword.weigh`).
        One commit for a batch: each document is still either wholly old or wholly new, and far fewer
        syncs are paid. The same commit journals the stale ids, so that their vectors are deleted even if
        the process dies before the caller deletes them, and drops the live ones from the journal.
        """
        with self.transaction() as conn:
            stale = [self._replace(conn, *item) for item in items]
            conn.executemany("DELETE FROM vector_journal WHERE chunk_id = ?",
                             [(c.chunk_id,) for item in items for c in item[2]])
            conn.executemany("INSERT OR REPLACE INTO vector_journal (chunk_id, doc_id) VALUES (?, ?)",
                             [(c, item[0].doc_id) for item, ids in zip(items, stale, strict=True) for c in ids])
            return stale

    def _replace(self, conn: sqlite3.Connection, record: DocRecord, display_text: str, chunks: Sequence[Chunk],
                 keyword_vectors: Sequence[Mapping[str, float]]) -> list[str]:
        old = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (record.doc_id,))]
        self.keyword.delete(old)
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (record.doc_id,))
        conn.executemany(
            "INSERT OR REPLACE INTO chunks (chunk_id, doc_id, ordinal, text, start, end, section, page, roles)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.chunk_id, c.doc_id, c.ordinal, c.text, c.start, c.end, c.section, c.page, dump_roles(c.roles))
             for c in chunks],
        )
        self.keyword.add_weighted((c.chunk_id, c.doc_id, v) for c, v in zip(chunks, keyword_vectors, strict=True))
        conn.execute(
            "INSERT OR REPLACE INTO documents (doc_id, source, origin, title, date, language, publisher,"
            " sha256, size, versions, meta, display_text, ingested_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.doc_id, record.source, record.origin, record.title, record.date, record.language,
                record.publisher, record.sha256, record.size, json.dumps(record.versions),
                json.dumps(record.meta, ensure_ascii=False), display_text, record.ingested_at,
            ),
        )
        live = {c.chunk_id for c in chunks}
        return [c for c in old if c not in live]

    def delete_document(self, doc_id: str) -> list[str]:
        """Removes a document and journals its chunk ids in the same commit; returns them (the caller
        deletes their vectors, and then clears them from the journal)."""
        with self.transaction() as conn:
            old = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]
            self.keyword.delete(old)
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO vector_journal (chunk_id, doc_id) VALUES (?, ?)",
                [(c, doc_id) for c in old],
            )
        return old

    # Reads for retrieval -----------------------------------------------------------------------
    def load_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Active chunks by id, with their documents' title, source, date and language."""
        out: dict[str, Chunk] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                "SELECT c.chunk_id, c.doc_id, c.text, c.start, c.end, d.title, c.section, c.page, d.source,"
                f" d.date, d.language, c.ordinal, c.roles FROM chunks c JOIN documents d USING (doc_id)"
                f" WHERE c.chunk_id IN ({marks})",
                part,
            )
            for r in rows:
                out[r[0]] = _chunk(r)
        return out

    def doc_chunks(self, doc_id: str, limit: int | None = None) -> list[Chunk]:
        """A document's chunks in order; the first `limit` only, if given."""
        rows = self.conn.execute(
            "SELECT c.chunk_id, c.doc_id, c.text, c.start, c.end, d.title, c.section, c.page, d.source,"
            " d.date, d.language, c.ordinal, c.roles FROM chunks c JOIN documents d USING (doc_id)"
            " WHERE c.doc_id = ? ORDER BY c.ordinal LIMIT ?",
            (doc_id, -1 if limit is None else limit),
        )
        return [_chunk(r) for r in rows]

    def doc_ids_matching(self, doc_ids: Collection[str] = (), date_from: str | None = None,
                         date_to: str | None = None) -> set[str]:
        """Documents passing the filters; dates compare as ISO prefixes (2025-08 is within 2025-08-01..31)."""
        sql = "SELECT doc_id, date FROM documents"
        found = set()
        wanted = set(doc_ids)
        for doc_id, date in self.conn.execute(sql):
            if wanted and doc_id not in wanted:
                continue
            if date_from and (not date or date_upper(date) < date_from):
                continue
            if date_to and (not date or date > date_to):
                continue
            found.add(doc_id)
        return found

    def counts(self) -> dict[str, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return {"documents": int(docs), "chunks": int(chunks)}


def date_upper(date: str) -> str:
    """The last day a partial ISO date covers, as a comparable string ('2025-08' -> '2025-08-31')."""
    if len(date) == 4:
        return date + "-12-31"
    if len(date) == 7:
        return date + "-31"
    return date


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _chunk(row: Sequence[Any]) -> Chunk:
    """A chunk from its row: the chunk's columns, its document's, then its stored roles."""
    (chunk_id, doc_id, text, start, end, title, section, page, source, date, language, ordinal, roles) = row
    return Chunk(chunk_id, doc_id, text, start, end, title, section, page, source, date, language, ordinal,
                 load_roles(roles) if roles else [])


def _record(row: Sequence[Any]) -> DocRecord:
    return DocRecord(
        doc_id=row[0], source=row[1], origin=row[2], title=row[3], date=row[4], language=row[5],
        publisher=row[6], sha256=row[7], size=row[8], versions=json.loads(row[9]), meta=json.loads(row[10]),
        ingested_at=row[11], chunks=int(row[12]),
    )
