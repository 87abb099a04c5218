"""Users (scrypt password hashes), API bearer tokens (SHA-256 hashes) and server-side sessions.

Users file (`ASSISTANT_AUTH_FILE`), one a line: `name:scrypt$n$r$p$salt$hash` (base64 salt and hash).
Tokens file (`ASSISTANT_API_TOKENS_FILE`), one a line: `name:sha256$hexdigest`. Lines starting with `#`
are comments. Both files are re-read when they change. A session cookie holds a random id (signed);
the server keeps only its hash, its user and its expiry, so logging out revokes it. Add entries with
`python -m assistant.auth add-user NAME FILE` and `python -m assistant.auth add-token NAME FILE`.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from assistant.sqlitedb import LOCK_TIMEOUT_S, connect_wal

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_COOKIE = "assistant_session"
SESSION_TTL_S = 12 * 3600
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt_b64}${digest_b64}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(hash_b64)
        digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def hash_token(token: str) -> str:
    # Tokens are 32 random bytes, so a plain SHA-256 is enough; no salt or slow hash is needed.
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


class _EntriesFile:
    """`name:value` lines, re-read when the file's modification time changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[float, int] | None = None
        self._entries: dict[str, str] = {}

    def entries(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return {}
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            self._entries = parse_entries(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        return self._entries


def parse_entries(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = line.split(":", 1)
        out[name.strip()] = value.strip()
    return out


class SessionStore:
    """Live sessions by the SHA-256 of their id: in a SQLite file (kept across restarts) or in memory."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = connect_wal(path, LOCK_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        else:
            self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self.conn.execute("CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, user TEXT NOT NULL,"
                          " expires REAL NOT NULL)")

    def add(self, session_id: str, user: str, expires: float) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            self.conn.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (_id_hash(session_id), user, expires))

    def user(self, session_id: str, now: float) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT user, expires FROM sessions WHERE id_hash = ?",
                                    (_id_hash(session_id),)).fetchone()
        return str(row[0]) if row and float(row[1]) >= now else None

    def remove(self, session_id: str) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_id_hash(session_id),))


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Authenticator:
    """Checks passwords, bearer tokens and session cookies; `enabled` is False when no users file is set."""

    def __init__(self, users_file: Path | None, tokens_file: Path | None, secret: bytes,
                 sessions: SessionStore | None = None, session_ttl_s: float = SESSION_TTL_S) -> None:
        self.users = _EntriesFile(users_file)
        self.tokens = _EntriesFile(tokens_file)
        self.secret = secret
        self.sessions = sessions or SessionStore()
        self.session_ttl_s = session_ttl_s
        self.enabled = users_file is not None or tokens_file is not None

    def check_password(self, user: str, password: str) -> bool:
        stored = self.users.entries().get(user)
        if stored is None:
            verify_password(password, hash_password("x"))  # same work either way: no user enumeration
            return False
        return verify_password(password, stored)

    def check_token(self, token: str) -> str | None:
        """The token's name, or None."""
        if not token:
            return None
        hashed = hash_token(token)
        for name, stored in self.tokens.entries().items():
            if hmac.compare_digest(stored, hashed):
                return name
        return None

    def make_session(self, user: str, now: float | None = None) -> str:
        """A new session for `user`; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        self.sessions.add(session_id, user, (now or time.time()) + self.session_ttl_s)
        return session_id + "." + self._sign(session_id)

    def read_session(self, cookie: str | None, now: float | None = None) -> str | None:
        """The user a live, unexpired session cookie belongs to, or None."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return None
        user = self.sessions.user(session_id, now or time.time())
        return user if user is not None and user in self.users.entries() else None

    def end_session(self, cookie: str | None) -> None:
        """Logging out: the session is gone on the server, whoever still holds the cookie."""
        session_id = self._session_id(cookie)
        if session_id is not None:
            self.sessions.remove(session_id)

    def _session_id(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie or len(cookie) > 512:
            return None
        session_id, sig = cookie.rsplit(".", 1)
        return session_id if hmac.compare_digest(sig, self._sign(session_id)) else None

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()


def load_session_secret(path: Path) -> bytes:
    """The server's session-signing key, created (mode 600) on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fp:
        fp.write(key.hex())
    return key


def add_entry(path: Path, name: str, value: str) -> None:
    """Adds or replaces `name` in a users or tokens file (mode 600)."""
    if not name or not set(name) <= NAME_CHARS:
        raise ValueError("names may use letters, digits and . _ - @")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [ln for ln in lines if ln.split(":", 1)[0].strip() != name]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write("\n".join([*kept, f"{name}:{value}"]) + "\n")
    os.replace(tmp, path)


def add_user(path: Path, name: str, password: str) -> None:
    add_entry(path, name, hash_password(password))


def add_token(path: Path, name: str) -> str:
    """Creates a token for `name`, stores only its hash, and returns the token (shown once)."""
    token = secrets.token_urlsafe(32)
    add_entry(path, name, hash_token(token))
    return token


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.auth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    u = sub.add_parser("add-user", help="add a user (asks for the password)")
    u.add_argument("name")
    u.add_argument("file", type=Path)
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    t = sub.add_parser("add-token", help="add an API token and print it once")
    t.add_argument("name")
    t.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "add-user":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
            if len(password) < 8:
                print("The password needs at least 8 characters.", file=sys.stderr)
                return 2
            add_user(args.file, args.name, password)
            print(f"Added user {args.name} to {args.file}")
        else:
            print(add_token(args.file, args.name))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
