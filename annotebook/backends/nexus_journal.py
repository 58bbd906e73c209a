"""The journal that makes a Nexus push repeatable: per (project, key) the write in flight, in SQLite.

It lives in ``nexus-journal.sqlite`` under the annotebook home; how a push uses it (journal before sending,
reconcile a lost answer by re-reading, finish a started delete on the next push) is told in
`annotebook.backends.nexus`. Entries older than 30 days are dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._sqlite import open_db

__all__ = ["WriteJournal"]


class WriteJournal:
    """Per (project, key) the write in flight: key is a client id (create), an old id (edit) or an id (delete)."""

    def __init__(self, path: Path):
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS writes (project TEXT, key TEXT, op TEXT, fp TEXT, asset TEXT, "
                "before TEXT, new_id TEXT, state TEXT, at REAL, PRIMARY KEY (project, key))"
            )
            db.execute("DELETE FROM writes WHERE at < ?", (time.time() - 30 * 86400,))

    @contextmanager
    def _db(self) -> Iterator[Any]:
        db = open_db(self.path)
        try:
            yield db
        finally:
            db.close()

    def deleting(self, project: str) -> list[str]:
        """Old rows whose deletion was started (their new copy confirmed) and not seen to finish."""
        with self._db() as db:
            rows = db.execute("SELECT key FROM writes WHERE project = ? AND state = 'deleting'", (project,)).fetchall()
        return [str(r[0]) for r in rows]

    def get(self, project: str, key: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT op, fp, asset, before, new_id, state FROM writes WHERE project = ? AND key = ?", (project, key)
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("op", "fp", "asset", "before", "new_id", "state"), row, strict=True)) | {
            "before": json.loads(row[3] or "[]")
        }

    def put(self, project: str, key: str, **fields: Any) -> None:
        entry: dict[str, Any] = {
            "op": None,
            "fp": None,
            "asset": None,
            "before": [],
            "new_id": None,
            "state": "pending",
        }
        entry |= self.get(project, key) or {}
        entry |= fields
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project, key, entry["op"], entry["fp"], entry["asset"], json.dumps(entry["before"]),
                 entry["new_id"], entry["state"], time.time()),
            )  # fmt: skip
