"""Opening the project's SQLite files in WAL mode, safely when several processes open one at once.

Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once,
without calling the busy handler, when another connection is creating the same file. Opening
therefore retries that step until the connection's own timeout runs out.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

# How long the small stores (feedback, query log) wait for another writer before giving up.
LOCK_TIMEOUT_S = 30.0
_RETRY_FIRST_S = 0.02
_RETRY_MAX_S = 0.5


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """`PRAGMA journal_mode=WAL`, retried with jittered backoff while another connection holds the file."""
    deadline = time.monotonic() + timeout
    pause = _RETRY_FIRST_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, _RETRY_MAX_S)


def connect_wal(path: Path, timeout: float, **kwargs: Any) -> sqlite3.Connection:
    """A connection to `path` in WAL mode; `timeout` bounds both lock waits and the WAL switch."""
    conn = sqlite3.connect(str(path), timeout=timeout, **kwargs)
    try:
        enable_wal(conn, timeout)
    except BaseException:
        conn.close()
        raise
    return conn
