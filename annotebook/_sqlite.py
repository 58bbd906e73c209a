"""Opening SQLite files shared by several kernels: WAL, a long busy timeout, and a retried mode switch."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def open_db(path: Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL on; waits up to ``timeout`` s for other writers."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
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
