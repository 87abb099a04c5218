"""An in-memory `KeywordStore` over integer-indexed sparse vectors.

Sparse-vector databases (Chroma's distributed and hosted builds among them) take a chunk's keyword
weights as parallel lists of integer indices and float values and score a query by their dot product.
This store keeps exactly that form, so it shows what such a backend receives and returns, and lets the
seam between our term weighting and the storage be tested where no such database runs.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass


def term_index(term: str) -> int:
    """A term's stable 31-bit index: the same on every host and in every process (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big") >> 1


@dataclass(frozen=True)
class SparseVector:
    """Parallel, index-sorted lists, as sparse-vector indexes take them."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def from_weights(cls, weights: Mapping[str, float]) -> SparseVector:
        merged: defaultdict[int, float] = defaultdict(float)
        for term, weight in weights.items():
            merged[term_index(term)] += weight  # a 31-bit collision merely sums two terms' weights
        pairs = sorted(merged.items())
        return cls(tuple(i for i, _ in pairs), tuple(v for _, v in pairs))

    def dot(self, query: Mapping[int, float]) -> float:
        return sum(v * query[i] for i, v in zip(self.indices, self.values, strict=True) if i in query)


class MemoryKeywordStore:
    """Chunks as sparse vectors in a dict, document frequencies counted on write, scoring by dot product."""

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}
        self.vectors: dict[str, tuple[str, SparseVector]] = {}  # chunk id -> (doc id, vector)
        self.df: Counter[int] = Counter()

    def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value

    def upsert(self, vectors: Iterable[tuple[str, str, Mapping[str, float]]]) -> None:
        for chunk_id, doc_id, weights in vectors:
            self.delete([chunk_id])
            vector = SparseVector.from_weights(weights)
            self.vectors[chunk_id] = (doc_id, vector)
            self.df.update(vector.indices)

    def delete(self, chunk_ids: Iterable[str]) -> None:
        for chunk_id in chunk_ids:
            old = self.vectors.pop(chunk_id, None)
            if old is not None:
                self.df.subtract(old[1].indices)

    def document_frequencies(self, terms: Collection[str]) -> dict[str, int]:
        out = {t: self.df[term_index(t)] for t in terms}
        return {t: n for t, n in out.items() if n > 0}

    def count(self) -> int:
        return len(self.vectors)

    def top_k(self, query: Mapping[str, float], k: int,
              doc_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        if not query or k <= 0:
            return []
        q = SparseVector.from_weights(query)
        qmap = dict(zip(q.indices, q.values, strict=True))
        scored = ((vector.dot(qmap), chunk_id) for chunk_id, (doc_id, vector) in self.vectors.items()
                  if doc_ids is None or doc_id in doc_ids)
        best = heapq.nsmallest(k, ((-s, c) for s, c in scored if s > 0))
        return [(c, -s) for s, c in best]
