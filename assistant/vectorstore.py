"""Dense search in Chroma through langchain-chroma: embedded under the data directory, or a server.

Chroma never embeds on its own here (its default embedding function downloads a model): every
vector comes from our `Embedder` through the LangChain embeddings adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from assistant.errors import ServiceUnavailable
from assistant.settings import Settings

_BATCH = 256
# After a call to a server failed: how long further calls fail at once before one tries again.
RETRY_AFTER_S = 2.0


def make_chroma_client(settings: Settings) -> Any:
    """An embedded `PersistentClient` under the data directory, or a client of the server at `chroma_url`
    whose every call, building it included, is bounded by the Chroma time-outs."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        # What `chromadb.HttpClient` sets up, with a client class that bounds its HTTP sessions.
        chroma_settings = ChromaSettings(
            anonymized_telemetry=False, chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=url.hostname or "127.0.0.1", chroma_server_http_port=url.port or 8000,
            chroma_server_ssl_enabled=url.scheme == "https",
        )
        try:
            return _bounded_client_class(settings)(settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain exceptions when the server is down
            raise chroma_down(settings.chroma_url, exc) from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=ChromaSettings(anonymized_telemetry=False))


def _bounded_client_class(settings: Settings) -> Any:
    """chromadb's `Client` whose httpx sessions time out: chromadb 1.5 builds them with `timeout=None`
    and offers no setting, so a silent or stopped server would hang every call, and building the
    client too (it asks the server who the user is, then checks the tenant and the database)."""
    import httpx
    from chromadb.api.client import Client

    timeout = httpx.Timeout(settings.chroma_timeout_s, connect=settings.chroma_connect_timeout_s)

    def bound(server: Any) -> None:
        server._session.timeout = timeout

    class BoundedClient(Client):
        def get_user_identity(self) -> Any:  # the first call to the server
            bound(self._server)
            return super().get_user_identity()

        def _validate_tenant_database(self, tenant: str, database: str) -> None:
            admin: Any = self._admin_client  # it has a session of its own
            bound(admin._server)
            super()._validate_tenant_database(tenant, database)

    return BoundedClient


def chroma_down(url: str, exc: BaseException) -> ServiceUnavailable:
    # Named after the transport error (ReadTimeout, ConnectError…), not the ValueError chromadb wraps it in.
    exc = next((e for e in _chain(exc) if _is_transport_error(e)), exc)
    return ServiceUnavailable(
        "chroma_unavailable",
        f"The vector database at {url} cannot be reached ({type(exc).__name__}). Try again later.",
        f"ベクトルデータベース（{url}）に接続できません（{type(exc).__name__}）。しばらくしてから再試行してください。",
    )


class VectorStore:
    """Chunk vectors keyed by chunk id, with `doc_id` and `date` metadata for filtering.

    A server is connected on first use (and at the next use again if that fails): a data directory
    opens, and the web server starts and answers /healthz with 503, while Chroma is down; each call
    fails within the Chroma time-outs with `chroma_unavailable` until it is back.
    """

    def __init__(self, settings: Settings, embeddings: Any) -> None:
        self.settings = settings
        self._embeddings = embeddings
        self._client: Any = None
        self._store: Any = None
        self._down: ServiceUnavailable | None = None  # the last failure while the server is down
        self._probe = threading.Lock()
        self._retry_at = 0.0
        if not settings.chroma_url:
            self._connect()  # embedded: nothing to wait for, and its errors are the program's

    def _connect(self) -> Any:
        from langchain_chroma import Chroma

        # No lock: requests arriving while Chroma is down each wait for their own attempt, not for each other's.
        client = make_chroma_client(self.settings)
        try:
            store = Chroma(
                collection_name=self.settings.collection,
                embedding_function=self._embeddings,
                client=client,
                collection_metadata={"hnsw:space": "cosine"},
            )
        except Exception as exc:
            if self.settings.chroma_url:
                raise chroma_down(self.settings.chroma_url, exc) from exc
            raise
        self._client, self._store = client, store
        return store

    @property
    def store(self) -> Any:
        """The langchain-chroma store, connected if need be (`chroma_unavailable` if the server is down)."""
        if self._store is None:
            with self._guard():
                self._connect()
        return self._store

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._guard():
                self._connect()
        return self._client

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turns a server's transport errors into `chroma_unavailable`. Once a call has failed so, calls
        fail at once for `RETRY_AFTER_S`, then one request at a time tries the server again while the
        others fail at once, instead of each holding a thread for the whole time-out."""
        if not self.settings.chroma_url:
            yield
            return
        down = self._down
        probing = down is not None
        if probing and (time.monotonic() < self._retry_at or not self._probe.acquire(blocking=False)):
            assert down is not None
            raise ServiceUnavailable(down.code, down.message, down.message_ja)
        try:
            yield
        except ServiceUnavailable as exc:
            self._down, self._retry_at = exc, time.monotonic() + RETRY_AFTER_S
            raise
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            self._down, self._retry_at = chroma_down(self.settings.chroma_url, exc), time.monotonic() + RETRY_AFTER_S
            raise self._down from exc
        else:
            self._down = None
        finally:
            if probing:
                self._probe.release()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._guard():
            return fn(*args, **kwargs)

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

    def all_ids(self, page: int = 5000) -> set[str]:
        """Every vector id in the collection, read a page at a time (10k ids: about 20 ms embedded)."""
        found: set[str] = set()
        offset = 0
        while True:
            got = self._call(self.store._collection.get, include=[], limit=page, offset=offset)
            found.update(got["ids"])
            if len(got["ids"]) < page:
                return found
            offset += page

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
    """Refused, reset or timed out (connect, read, write or pool), as httpx raises it or chromadb rewraps it."""
    return any(_is_transport_error(e) for e in _chain(exc)) or "Could not connect" in str(exc)


def _is_transport_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 10:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out
