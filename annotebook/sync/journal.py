"""The one journal of writes in flight, for every backend (``writes`` in the registry's SQLite file).

A write whose answer is lost (a timeout, a cut connection, a 5xx, a killed kernel) may or may not have landed.
Before the sync engine sends one it journals what it plans; the next push of the same owner re-reads and
reconciles against the entry instead of sending it again, so every edit lands exactly once.

Entries are keyed by ``(place, owner, key)``: ``place`` is the backend, its connection options and the dataset;
``owner`` is the pushing frame's load token(s). A row gone or re-id'd remotely is explained away only by an entry of
the same owner, so one load's writes can never hide another load's (or another machine's) change. The one sweep
across owners is the completion of a started edit: the old row of a confirmed recreate (state ``deleting``) and a
copy left by a refused edit (``rollback``) are deleted by the next push of any owner at that place.

``key`` is a row id (the client id of a create, the lineage id of an edit or delete) or ``unit:<unit>`` for a
whole-unit replace. ``data`` holds what reconciliation needs: the planned row key, the unit, the ids that already
looked like it before the write, the new id, the planned rows of a unit.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._sqlite import open_db

__all__ = ["WriteJournal"]

_DDL = """
CREATE TABLE IF NOT EXISTS writes (
    place TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, state TEXT NOT NULL,
    data TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (place, owner, key));
"""

#: entries not touched for this long are dropped (their pushes are long settled or abandoned)
MAX_AGE = 30 * 86400


class WriteJournal:
    """Writes in flight per (place, owner, key), in ``path`` (the registry's SQLite file)."""

    def __init__(self, path: Path):
        self.path = path
        with self._db() as db:
            db.executescript(_DDL)
            db.execute("DELETE FROM writes WHERE at < ?", (time.time() - MAX_AGE,))

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        db = open_db(self.path)
        try:
            yield db
        finally:
            db.close()

    def put(self, place: str, owner: str, key: str, op: str, state: str, /, **data: Any) -> None:
        """Record (or replace) the entry of ``key``; ``data`` merges into what the entry held."""
        old = self.get(place, owner, key)
        merged = {**(old["data"] if old else {}), **data}
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO writes VALUES (?, ?, ?, ?, ?, ?, ?)",
                (place, owner, key, op, state, json.dumps(merged, default=str), time.time()),
            )

    def put_many(self, place: str, owner: str, entries: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Record new entries ``(key, op, state, data)`` in one transaction (a push of thousands of rows)."""
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO writes VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(place, owner, k, op, st, json.dumps(data, default=str), now) for k, op, st, data in entries],
            )
            db.execute("COMMIT")

    def state(self, place: str, owner: str, key: str, state: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE writes SET state = ?, at = ? WHERE place = ? AND owner = ? AND key = ?",
                (state, time.time(), place, owner, key),
            )

    def get(self, place: str, owner: str, key: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT op, state, data FROM writes WHERE place = ? AND owner = ? AND key = ?", (place, owner, key)
            ).fetchone()
        return None if row is None else {"key": key, "op": row[0], "state": row[1], "data": json.loads(row[2])}

    def entries(self, place: str, owner: str | None = None, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The entries of one owner (every owner when None) at ``place``, optionally in some states, oldest first."""
        sql = "SELECT owner, key, op, state, data FROM writes WHERE place = ?"
        args: list[Any] = [place]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            args += list(states)
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY at", args).fetchall()
        return [{"owner": r[0], "key": r[1], "op": r[2], "state": r[3], "data": json.loads(r[4])} for r in rows]

    def done(self, place: str, owner: str, keys: list[str]) -> None:
        """Drop settled entries: what they journaled is now in the registry's history."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "DELETE FROM writes WHERE place = ? AND owner = ? AND key = ?", [(place, owner, k) for k in keys]
            )
            db.execute("COMMIT")
