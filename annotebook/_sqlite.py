"""Opening SQLite files shared by several kernels: WAL, a long busy timeout, and a retried mode switch.

Errors SQLite reports about the file itself are named here, once, for the store and the registry alike: a file that
is not a database (or is damaged) is `CorruptStore` naming the file, a full disk is `DiskFull` naming it. A
``ROLLBACK`` after SQLite already rolled back (it does on a full disk) is a no-op, so the first error is the one
raised, never "cannot rollback - no transaction is active".
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, NoReturn

from .errors import CorruptStore, DiskFull


def _named(exc: sqlite3.DatabaseError, path: str) -> Exception:
    text = str(exc)
    if "disk is full" in text or "database or disk is full" in text:
        return DiskFull(f"the disk is full: cannot write {path} ({text}); nothing of this change was kept", path)
    if "not a database" in text or "malformed" in text or "file is encrypted" in text:
        return CorruptStore(f"{path} is not a SQLite database or is damaged ({text}); move it aside", path)
    return exc


def _reraise(exc: sqlite3.DatabaseError, path: str) -> NoReturn:
    named = _named(exc, path)
    if named is exc:
        raise exc
    raise named from exc


class _Connection(sqlite3.Connection):
    """A connection whose errors about its file name the file (see the module's docstring)."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "ROLLBACK" and not self.in_transaction:
            return self.cursor()
        try:
            return super().execute(sql, *args)
        except sqlite3.DatabaseError as exc:
            _reraise(exc, self._path)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, *args)
        except sqlite3.DatabaseError as exc:
            _reraise(exc, self._path)

    def executescript(self, script: str) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.DatabaseError as exc:
            _reraise(exc, self._path)

    _path = ""


def open_db(path: Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL on; waits up to ``timeout`` s for other writers."""
    try:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, factory=_Connection)
    except sqlite3.DatabaseError as exc:
        _reraise(exc, str(path))
    db._path = str(path)
    db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            # switching to WAL takes an exclusive lock that SQLite does not wait for (no busy handler), so two
            # kernels opening a new file at once may see "database is locked" here: retry until the deadline
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.05)
        except BaseException:
            db.close()
            raise
