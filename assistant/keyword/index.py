"""BM25 keyword index: term weighting kept apart from storage, stored in SQLite postings.

A chunk is stored as a sparse vector (term -> document-side BM25 weight, fixed at add time, so
adding or deleting never reweights other chunks); a query is a sparse vector of IDFs computed from
the current document frequencies; the score is their dot product. The same vectors can later be
stored in any sparse-vector store that implements `KeywordStore`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.keyword.tokenize import (
    _ASCII_TOKEN,
    _CJK_RUN,
    BIGRAM_PREFIX,
    DEFAULT_ANALYSIS,
    TOKENIZER_VERSION,
    Analysis,
    tokenize,
    tokenize_query,
)


class KeywordIndexError(RuntimeError):
    """The keyword index cannot be used as it is (built by another tokenizer, or SQLite lacks JSON)."""


class KeywordIndexMismatch(KeywordIndexError):
    """The stored postings were weighted by another tokenizer or BM25 setting: rebuild them."""


@dataclass(frozen=True)
class Bm25Params:
    """BM25 constants; lengths are the expected terms per chunk (words, bigrams) of ~400-character chunks."""

    k1: float = 0.9
    b: float = 0.4
    bigram_weight: float = 0.3
    avg_words: float = 140.0
    avg_bigrams: float = 300.0
    # Bounds the postings a query sums, whatever the corpus size: the most frequent (least telling)
    # query terms are left out once their postings would exceed it.
    max_query_postings: int = 30_000
    # In a Japanese question, a Latin word or a number (NATO, LNG, 1989) is one term, while a Japanese
    # word also brings its parts and its character bigrams: this evens them out. Query time only.
    latin_in_cjk: float = 2.0

    def signature(self) -> str:
        # max_query_postings and latin_in_cjk are left out: they act at query time only, so changing
        # them needs no rebuild.
        return f"k1={self.k1};b={self.b};bigram={self.bigram_weight};avg={self.avg_words}/{self.avg_bigrams}"


DEFAULT_PARAMS = Bm25Params()


def term_weights(terms: Sequence[str], params: Bm25Params = DEFAULT_PARAMS) -> dict[str, float]:
    """Document side of BM25 for one chunk: saturated, length-normalised term frequencies."""
    counts = Counter(terms)
    n_bigrams = sum(c for t, c in counts.items() if t.startswith(BIGRAM_PREFIX))
    n_words = sum(counts.values()) - n_bigrams
    # Words and bigrams are two fields with their own lengths, so bigrams cannot crowd out words.
    norm_words = params.k1 * (1 - params.b + params.b * n_words / params.avg_words)
    norm_bigrams = params.k1 * (1 - params.b + params.b * n_bigrams / params.avg_bigrams)
    weights: dict[str, float] = {}
    for term, tf in counts.items():
        if term.startswith(BIGRAM_PREFIX):
            weights[term] = params.bigram_weight * tf * (params.k1 + 1) / (tf + norm_bigrams)
        else:
            weights[term] = tf * (params.k1 + 1) / (tf + norm_words)
    return weights


def idf(document_frequency: int, n_chunks: int) -> float:
    """BM25 inverse document frequency (the +1 form, never negative)."""
    return math.log(1 + (n_chunks - document_frequency + 0.5) / (document_frequency + 0.5))


def query_weights(terms: Iterable[str], frequencies: Mapping[str, int], n_chunks: int,
                  params: Bm25Params = DEFAULT_PARAMS) -> dict[str, float]:
    """Query side of BM25: each distinct known term weighted by its IDF; near-stopwords left out."""
    known = sorted((frequencies[t], t) for t in dict.fromkeys(terms) if frequencies.get(t, 0) > 0)
    weights: dict[str, float] = {}
    budget = params.max_query_postings
    for df, term in known:
        if weights and df > budget:
            break
        weights[term] = idf(df, n_chunks)
        budget -= df
    return weights


class KeywordStore(Protocol):
    """Where the sparse vectors live; runs inside the caller's transaction.

    `SqliteKeywordStore` is the one-machine store; `MemoryKeywordStore` (assistant.keyword.memory)
    holds the same weights as integer-indexed sparse vectors, the form a sparse-vector database takes.
    """

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def upsert(self, vectors: Iterable[tuple[str, str, Mapping[str, float]]]) -> None: ...
    def delete(self, chunk_ids: Iterable[str]) -> None: ...
    def document_frequencies(self, terms: Collection[str]) -> dict[str, int]: ...
    def count(self) -> int: ...
    def top_k(self, query: Mapping[str, float], k: int,
              doc_ids: Collection[str] | None = None) -> list[tuple[str, float]]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kw_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kw_chunk (
    id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL, terms BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS kw_chunk_doc ON kw_chunk (doc_id);
CREATE TABLE IF NOT EXISTS kw_term (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE, df INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kw_posting (
    term INTEGER NOT NULL, chunk INTEGER NOT NULL, weight REAL NOT NULL, PRIMARY KEY (term, chunk)
) WITHOUT ROWID;
"""

# Only the postings of the query's terms are read; SQLite sums them, so a query never loads the index.
_TOP_K = """
WITH q(term, w) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))
SELECT c.chunk_id, s.score FROM (
    SELECT p.chunk AS chunk, SUM(p.weight * q.w) AS score
    FROM q JOIN kw_term AS t ON t.term = q.term JOIN kw_posting AS p ON p.term = t.id
    {filter}
    GROUP BY p.chunk ORDER BY score DESC, p.chunk LIMIT ?
) AS s JOIN kw_chunk AS c ON c.id = s.chunk
ORDER BY s.score DESC, s.chunk
"""
_DOC_FILTER = "WHERE p.chunk IN (SELECT id FROM kw_chunk WHERE doc_id IN (SELECT value FROM json_each(?)))"


class SqliteKeywordStore:
    """`KeywordStore` over postings tables; never commits, rolls back or begins a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        try:
            conn.execute("SELECT json_each.value FROM json_each('[1]')").fetchall()
        except sqlite3.OperationalError as exc:
            raise KeywordIndexError(
                f"SQLite {sqlite3.sqlite_version} lacks the JSON functions the keyword index needs "
                "(built in since SQLite 3.38)") from exc
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM kw_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kw_meta (key, value) VALUES (?, ?)", (key, value))

    def upsert(self, vectors: Iterable[tuple[str, str, Mapping[str, float]]]) -> None:
        batch = list(vectors)
        if not batch:
            return
        self.delete(chunk_id for chunk_id, _, _ in batch)
        df = Counter(term for _, _, vector in batch for term in vector)
        self.conn.executemany(
            "INSERT INTO kw_term (term, df) VALUES (?, ?) ON CONFLICT (term) DO UPDATE SET df = df + excluded.df",
            df.items())
        term_ids = self._term_ids(df)
        postings: list[tuple[int, int, float]] = []
        for chunk_id, doc_id, vector in batch:
            ids = array("q", (term_ids[t] for t in vector))
            cursor = self.conn.execute(
                "INSERT INTO kw_chunk (chunk_id, doc_id, terms) VALUES (?, ?, ?)",
                (chunk_id, doc_id, ids.tobytes()))
            row = cursor.lastrowid
            assert row is not None  # every successful INSERT sets it
            postings.extend((term_ids[t], row, w) for t, w in vector.items())
        # In key order, each insert lands next to the previous one instead of on a random page.
        postings.sort()
        self.conn.executemany("INSERT INTO kw_posting (term, chunk, weight) VALUES (?, ?, ?)", postings)

    def delete(self, chunk_ids: Iterable[str]) -> None:
        rows = self.conn.execute(
            "SELECT id, terms FROM kw_chunk WHERE chunk_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(dict.fromkeys(chunk_ids))),)).fetchall()
        if not rows:
            return
        removed: Counter[int] = Counter()
        postings: list[tuple[int, int]] = []
        for row_id, blob in rows:
            ids = array("q")
            ids.frombytes(blob)
            removed.update(ids)
            postings.extend((t, row_id) for t in ids)
        postings.sort()
        self.conn.executemany("DELETE FROM kw_posting WHERE term = ? AND chunk = ?", postings)
        self.conn.executemany("UPDATE kw_term SET df = df - ? WHERE id = ?",
                              ((n, t) for t, n in removed.items()))
        self.conn.executemany("DELETE FROM kw_term WHERE id = ? AND df <= 0", ((t,) for t in removed))
        self.conn.executemany("DELETE FROM kw_chunk WHERE id = ?", ((r,) for r, _ in rows))

    def document_frequencies(self, terms: Collection[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT term, df FROM kw_term WHERE term IN (SELECT value FROM json_each(?))",
            (json.dumps(list(terms), ensure_ascii=False),))
        return {str(t): int(n) for t, n in rows}

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM kw_chunk").fetchone()[0])

    def top_k(self, query: Mapping[str, float], k: int,
              doc_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        if not query or k <= 0 or (doc_ids is not None and not doc_ids):
            return []
        pairs = json.dumps([[t, w] for t, w in query.items()], ensure_ascii=False)
        params: tuple[str | int, ...]
        if doc_ids is None:
            sql, params = _TOP_K.format(filter=""), (pairs, k)
        else:
            sql, params = _TOP_K.format(filter=_DOC_FILTER), (pairs, json.dumps(list(doc_ids)), k)
        return [(str(c), float(s)) for c, s in self.conn.execute(sql, params)]

    def _term_ids(self, terms: Iterable[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT term, id FROM kw_term WHERE term IN (SELECT value FROM json_each(?))",
            (json.dumps(list(terms), ensure_ascii=False),))
        return {str(t): int(i) for t, i in rows}


class KeywordIndex:
    """BM25 search over chunks' search text; writes run in the caller's transaction, never committed here."""

    def __init__(self, conn: sqlite3.Connection | None = None, *, store: KeywordStore | None = None,
                 analysis: Analysis = DEFAULT_ANALYSIS, params: Bm25Params = DEFAULT_PARAMS) -> None:
        """Over SQLite postings in `conn`, or over any other `store` (exactly one of the two)."""
        if (conn is None) == (store is None):
            raise ValueError("KeywordIndex needs either a SQLite connection or a KeywordStore")
        self.analysis = analysis
        self.params = params
        self.store: KeywordStore = store if store is not None else SqliteKeywordStore(conn)  # type: ignore[arg-type]
        self.version = f"{TOKENIZER_VERSION};{analysis.mode};bigrams={analysis.bigrams};{params.signature()}"
        built_with = self.store.get_meta("version")
        if built_with is not None and built_with != self.version and self.store.count() > 0:
            raise KeywordIndexMismatch(
                f"the keyword index was built with {built_with!r} but this code uses {self.version!r}; "
                "rebuild it (re-ingest the documents)")

    def weigh(self, text: str) -> dict[str, float]:
        """The sparse vector (term -> BM25 document weight) of one search text; touches no storage."""
        return term_weights(tokenize(text, self.analysis), self.params)

    def add(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Index (chunk_id, doc_id, search_text) rows; a chunk_id already present is replaced."""
        self.add_weighted((chunk_id, doc_id, self.weigh(text)) for chunk_id, doc_id, text in rows)

    def add_weighted(self, rows: Iterable[tuple[str, str, Mapping[str, float]]]) -> None:
        """Index rows whose sparse vectors `weigh` has already made (e.g. while vectors were embedded)."""
        vectors = list(rows)
        if vectors:
            self.store.set_meta("version", self.version)
            self.store.upsert(vectors)

    def delete(self, chunk_ids: Iterable[str]) -> None:
        """Remove chunks; unknown ids are ignored."""
        self.store.delete(chunk_ids)

    def search(self, query: str, k: int, doc_ids: Collection[str] | None = None,
               renderings: Sequence[Sequence[str]] = ()) -> list[tuple[str, float]]:
        """Best k (chunk_id, score) for a query in search form, optionally only within `doc_ids`.

        `renderings`: for each word of a question in another language, its alternative renderings in
        the documents' language (`text.lexicon`); they share the word's weight, so a word with three
        renderings counts no more than one with one."""
        terms = tokenize_query(query, self.analysis)
        groups = [[tokenize_query(r, self.analysis) for r in group] for group in renderings]
        extra = {t for group in groups for toks in group for t in toks}
        if not terms and not extra:
            return []
        frequencies = self.store.document_frequencies(set(terms) | extra)
        n = self.store.count()
        weights = query_weights(terms, frequencies, n, self.params)
        if self.params.latin_in_cjk != 1.0 and _CJK_RUN.search(query):  # a Japanese question
            weights = {t: w * self.params.latin_in_cjk if _ASCII_TOKEN.match(t) else w for t, w in weights.items()}
        for group in groups:
            present = [toks for toks in group if any(frequencies.get(t, 0) for t in toks)]
            for toks in present:
                for term, w in query_weights(toks, frequencies, n, self.params).items():
                    weights[term] = max(weights.get(term, 0.0), w / len(present))
        return self.store.top_k(weights, k, doc_ids)

    def count(self) -> int:
        """Number of indexed chunks."""
        return self.store.count()
