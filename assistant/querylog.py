"""The query log: question, answer id and time for each question asked, kept for a set number of days.

Switched off with `ASSISTANT_QUERY_LOG=0`; records older than `ASSISTANT_QUERY_LOG_RETENTION_DAYS` are
deleted when the log is opened and, at most once an hour, while recording.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assistant.sqlitedb import LOCK_TIMEOUT_S, enable_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asked_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    question TEXT NOT NULL,
    answer_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queries_time ON queries (asked_at);
"""
PRUNE_EVERY_S = 3600.0
MAX_QUESTION_CHARS = 20_000


@dataclass
class QueryRecord:
    asked_at: str
    channel: str
    question: str
    answer_id: str


class QueryLog:
    """Append-only log in SQLite; `enabled=False` makes every call a no-op and writes nothing."""

    def __init__(self, path: Path, retention_days: int = 30, enabled: bool = True) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.enabled = enabled
        self._lock = threading.Lock()
        self._ready = False
        self._last_prune = 0.0

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=LOCK_TIMEOUT_S)
        if not self._ready:
            with self._lock:
                enable_wal(conn, LOCK_TIMEOUT_S)
                conn.executescript(SCHEMA)
                self._ready = True
        return conn

    def record(self, question: str, answer_id: str = "", channel: str = "api") -> None:
        if not self.enabled:
            return
        now = datetime.now(UTC)
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO queries (asked_at, channel, question, answer_id) VALUES (?, ?, ?, ?)",
                (now.isoformat(timespec="seconds"), channel, question[:MAX_QUESTION_CHARS], answer_id),
            )
            conn.commit()
        finally:
            conn.close()
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self.prune()

    def prune(self, now: datetime | None = None) -> int:
        """Deletes records older than the retention period; returns how many."""
        if not self.enabled or not self.path.exists():
            return 0
        self._last_prune = time.monotonic()
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        conn = self._connect()
        try:
            cur = conn.execute("DELETE FROM queries WHERE asked_at < ?", (cutoff.isoformat(timespec="seconds"),))
            conn.commit()
            return cur.rowcount
        finally:
            conn.close()

    def recent(self, limit: int = 100) -> list[QueryRecord]:
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT asked_at, channel, question, answer_id FROM queries ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            conn.close()
        return [QueryRecord(*r) for r in rows]
