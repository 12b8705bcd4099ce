"""API keys kept in a SQLite database (``gateway.keys_db``), managed with ``pointsman keys``.

Only the SHA-256 of each key is stored; the key itself is shown once, when it is made.
The gateway reloads the table every ``gateway.keys_db_reload_s`` seconds, so added and
revoked keys take effect without a restart.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointsman.errors import InputError, StoreUnavailableError

SCHEMA = """CREATE TABLE IF NOT EXISTS api_keys (
  name TEXT PRIMARY KEY, key_sha256 TEXT NOT NULL UNIQUE, user TEXT, team TEXT, plan TEXT,
  models TEXT, admin INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL)"""


def digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


@dataclass(frozen=True, slots=True)
class StoredKey:
    name: str
    sha256: bytes
    user: str | None
    team: str | None
    plan: str | None
    models: tuple[str, ...] | None
    admin: bool
    revoked: bool

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "user": self.user, "team": self.team, "plan": self.plan,
                "models": list(self.models) if self.models is not None else None,
                "admin": self.admin, "revoked": self.revoked}


def _connect(path: str | Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), timeout=5)
        conn.execute(SCHEMA)
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"keys database {path}: {exc}") from None
    return conn


def load_keys(path: str | Path) -> list[StoredKey]:
    conn = _connect(path)
    try:
        rows = conn.execute("SELECT name, key_sha256, user, team, plan, models, admin, revoked "
                            "FROM api_keys ORDER BY name").fetchall()
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"keys database {path}: {exc}") from None
    finally:
        conn.close()
    return [StoredKey(n, bytes.fromhex(h), u, t, p,
                      tuple(json.loads(m)) if m is not None else None, bool(a), bool(r))
            for n, h, u, t, p, m, a, r in rows]


def add_key(path: str | Path, name: str, *, user: str | None = None, team: str | None = None,
            plan: str | None = None, models: list[str] | None = None,
            admin: bool = False) -> str:
    """Store a new key and return it (the only time it is visible)."""
    key = "sk-pm-" + secrets.token_urlsafe(32)
    conn = _connect(path)
    try:
        with conn:
            conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                         (name, digest(key).hex(), user, team, plan,
                          json.dumps(models) if models is not None else None, int(admin),
                          time.time()))
    except sqlite3.IntegrityError:
        raise InputError(f"a key named {name!r} already exists") from None
    finally:
        conn.close()
    return key


def revoke_key(path: str | Path, name: str) -> None:
    conn = _connect(path)
    try:
        with conn:
            changed = conn.execute("UPDATE api_keys SET revoked = 1 WHERE name = ?",
                                   (name,)).rowcount
    finally:
        conn.close()
    if not changed:
        raise InputError(f"no key named {name!r}")
