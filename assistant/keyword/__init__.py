"""Japanese and English keyword search: Sudachi analysis, BM25 term weights, SQLite postings."""

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
from assistant.keyword.tokenize import TOKENIZER_VERSION, Analysis, tokenize, tokenize_query

__all__ = [
    "TOKENIZER_VERSION",
    "Analysis",
    "Bm25Params",
    "KeywordIndex",
    "KeywordIndexError",
    "KeywordStore",
    "SqliteKeywordStore",
    "idf",
    "query_weights",
    "term_weights",
    "tokenize",
    "tokenize_query",
]
