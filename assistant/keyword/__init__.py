"""Japanese and English keyword search: Sudachi analysis, BM25 term weights, SQLite postings
(or any `KeywordStore`, such as the in-memory sparse-vector one)."""

from assistant.keyword.index import (
    Bm25Params,
    KeywordIndex,
    KeywordIndexError,
    KeywordStore,
    SqliteKeywordStore,
    idf,
    query_weights,
    term_weights,
)
from assistant.keyword.memory import MemoryKeywordStore, SparseVector, term_index
from assistant.keyword.tokenize import TOKENIZER_VERSION, Analysis, tokenize, tokenize_query

__all__ = [
    "TOKENIZER_VERSION",
    "Analysis",
    "Bm25Params",
    "KeywordIndex",
    "KeywordIndexError",
    "KeywordStore",
    "MemoryKeywordStore",
    "SparseVector",
    "SqliteKeywordStore",
    "idf",
    "query_weights",
    "term_index",
    "term_weights",
    "tokenize",
    "tokenize_query",
]
