"""Feedback on answers (good / bad, optional comment), stored durably in SQLite under the data directory.

One store serves every channel (the web page, the HTTP API, the Slack bot); each record keeps the
question, the answer JSON with its citations, the rating, the comment and who gave it.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from assistant.errors import UserError
from assistant.sqlitedb import LOCK_TIMEOUT_S, enable_wal

Rating = Literal["good", "bad"]
RATINGS: tuple[str, ...] = ("good", "bad")
MAX_COMMENT_CHARS = 4000

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    answer_id TEXT NOT NULL,
    question TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    comment TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback (answer_id);
"""


@dataclass
class FeedbackRecord:
    id: int
    created_at: str
    channel: str
    answer_id: str
    question: str
    answer: dict[str, Any]
    rating: str
    comment: str
    user: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FeedbackStore:
    """Append-only feedback records; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: cheap for SQLite, and no connection is shared across threads.
        with self._lock:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=LOCK_TIMEOUT_S)
        try:
            if not self._ready:
                enable_wal(conn, LOCK_TIMEOUT_S)
                conn.executescript(SCHEMA)
                self._ready = True
            yield conn
            conn.commit()
        finally:
            conn.close()

    def record(self, channel: str, answer_id: str, question: str, answer_json: dict[str, Any],
               rating: str, comment: str = "", user: str = "") -> int:
        """Stores one piece of feedback and returns its id; a bad rating value is a `UserError`."""
        if rating not in RATINGS:
            raise UserError("bad_rating", "Rating must be 'good' or 'bad'.",
                            "評価は good か bad を指定してください。", status=422)
        if not answer_id.strip():
            raise UserError("missing_answer_id", "The answer id is missing.", "回答IDがありません。", status=422)
        comment = comment.strip()[:MAX_COMMENT_CHARS]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created_at, channel, answer_id, question, answer_json, rating, comment, user)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, channel, answer_id, question, json.dumps(answer_json, ensure_ascii=False), rating,
                 comment, user),
            )
            return int(cur.lastrowid or 0)

    def list(self, limit: int = 100, channel: str | None = None,
             answer_id: str | None = None) -> builtins.list[FeedbackRecord]:
        """The newest records first, optionally for one channel or one answer."""
        sql = ("SELECT id, created_at, channel, answer_id, question, answer_json, rating, comment, user"
               " FROM feedback")
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if channel is not None:
            where.append("channel = ?")
            args.append(channel)
        if answer_id is not None:
            where.append("answer_id = ?")
            args.append(answer_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._connect() as conn:
            return [_row(r) for r in conn.execute(sql, args)]

    def export_jsonl(self, fp: IO[str]) -> int:
        """Writes every record, oldest first, one JSON object a line; returns how many."""
        n = 0
        for line in self.iter_jsonl():
            fp.write(line)
            n += 1
        return n

    def iter_jsonl(self) -> Iterator[str]:
        """Every record as a JSON line (newline included), oldest first, read in pages."""
        last = 0
        while True:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT id, created_at, channel, answer_id, question, answer_json, rating, comment, user"
                    " FROM feedback WHERE id > ? ORDER BY id LIMIT 500",
                    (last,),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield json.dumps(_row(r).to_json(), ensure_ascii=False) + "\n"
            last = int(rows[-1][0])

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])


def _row(r: tuple[Any, ...]) -> FeedbackRecord:
    return FeedbackRecord(id=int(r[0]), created_at=r[1], channel=r[2], answer_id=r[3], question=r[4],
                          answer=json.loads(r[5]), rating=r[6], comment=r[7], user=r[8])
