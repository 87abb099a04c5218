"""Dense search in Chroma through langchain-chroma: embedded under the data directory, or a server.

Chroma never embeds on its own here (its default embedding function downloads a model): every
vector comes from our `Embedder` through the LangChain embeddings adapter.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlparse

from assistant.errors import ServiceUnavailable
from assistant.settings import Settings

_BATCH = 256


def make_chroma_client(settings: Settings) -> Any:
    """An embedded `PersistentClient` under the data directory, or an `HttpClient` for a server URL."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1", port=url.port or 8000, ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises plain exceptions when the server is down
            raise chroma_down(settings.chroma_url, exc) from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def chroma_down(url: str, exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(
        "chroma_unavailable",
        f"The vector database at {url} cannot be reached ({type(exc).__name__}). Try again later.",
        f"ベクトルデータベース（{url}）に接続できません（{type(exc).__name__}）。しばらくしてから再試行してください。",
    )


class VectorStore:
    """Chunk vectors keyed by chunk id, with `doc_id` and `date` metadata for filtering."""

    def __init__(self, settings: Settings, embeddings: Any) -> None:
        from langchain_chroma import Chroma

        self.settings = settings
        self.client = make_chroma_client(settings)
        try:
            self.store = Chroma(
                collection_name=settings.collection,
                embedding_function=embeddings,
                client=self.client,
                collection_metadata={"hnsw:space": "cosine"},
            )
        except Exception as exc:
            if settings.chroma_url:
                raise chroma_down(settings.chroma_url, exc) from exc
            raise

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if self.settings.chroma_url and _is_connection_error(exc):
                raise chroma_down(self.settings.chroma_url, exc) from exc
            raise

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), _BATCH):
            got = self._call(self.store.get, ids=list(ids[i : i + _BATCH]), include=[])
            found.update(got["ids"])
        return found

    def add(self, ids: Sequence[str], embed_texts: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Embeds `embed_texts` (title, section and search form) and upserts them under `ids`."""
        for i in range(0, len(ids), _BATCH):
            self._call(
                self.store.add_texts,
                texts=list(embed_texts[i : i + _BATCH]),
                metadatas=list(metadatas[i : i + _BATCH]),
                ids=list(ids[i : i + _BATCH]),
            )

    def delete(self, ids: Collection[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), _BATCH):
            self._call(self.store.delete, ids=ids[i : i + _BATCH])

    def ids_for_docs(self, doc_ids: Collection[str]) -> set[str]:
        if not doc_ids:
            return set()
        got = self._call(self.store.get, where={"doc_id": {"$in": list(doc_ids)}}, include=[])
        return set(got["ids"])

    def search(self, vector: list[float], k: int, doc_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) best first, optionally only within `doc_ids`."""
        if doc_ids is not None and not doc_ids:
            return []
        where = {"doc_id": {"$in": list(doc_ids)}} if doc_ids is not None else None
        # Despite its name this returns Chroma's distance (cosine space: 1 - similarity), lowest first.
        hits = self._call(self.store.similarity_search_by_vector_with_relevance_scores, vector, k=k, filter=where)
        return [(doc.id, 1.0 - float(distance)) for doc, distance in hits if doc.id]

    def count(self) -> int:
        return int(self._call(self.store._collection.count))

    def heartbeat(self) -> bool:
        try:
            self.client.heartbeat()
            return True
        except Exception:
            return False


def _is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & {"ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError",
                         "ConnectionRefusedError"}) or "Could not connect" in str(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 10:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out
