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

import pandas as pd

from .._sqlite import open_db

__all__ = ["EditJournal", "WriteJournal", "journal_edit"]

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


# -- the editor's edits (issue 16) -----------------------------------------------------------------------------------
_EDITS_DDL = """
CREATE TABLE IF NOT EXISTS edits (
    token TEXT NOT NULL, id TEXT NOT NULL, dataset TEXT, deleted INTEGER NOT NULL, content TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (token, id));
"""


class EditJournal:
    """The editor's edits as they happen, per (load token, row id): the row's whole content after its last edit.

    pandas edits live in the frame (keeping it is the user's part); an editor's edits are also written here the
    moment they land in the frame, so a kernel killed before a push loses none: `recover` gives them back. An entry
    is pending while its content differs from what the load's lineage holds (its base plus every push since), so a
    push settles entries without being told; settled entries are dropped when `recover` meets them.
    """

    def __init__(self, path: Path):
        self.path = path
        with self._db() as db:
            db.executescript(_EDITS_DDL)

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        db = open_db(self.path)
        try:
            yield db
        finally:
            db.close()

    def record(self, row: dict[str, Any]) -> None:
        """Journal ``row`` (a frame's row as a dict) as it is now; rows without a load token are not traceable."""
        from .registry import encode_content

        token = row.get("load")
        if not isinstance(token, str) or not token:
            return
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO edits VALUES (?, ?, ?, ?, ?, ?)",
                (token, str(row["id"]), _plain(row.get("dataset")), int(bool(row.get("deleted"))),
                 encode_content(row), time.time()),
            )  # fmt: skip

    def entries(self, token: str | None = None) -> list[dict[str, Any]]:
        """The journaled rows (of one load, or all), oldest first: token, id, dataset, deleted, content, at."""
        from .registry import decode_content

        sql, args = "SELECT token, id, dataset, deleted, content, at FROM edits", []
        if token is not None:
            sql, args = sql + " WHERE token = ?", [token]
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY at", args).fetchall()
        return [{"token": r[0], "id": r[1], "dataset": r[2], "deleted": bool(r[3]), "content": decode_content(r[4]),
                 "at": r[5]} for r in rows]  # fmt: skip

    def drop(self, token: str, ids: list[str]) -> None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM edits WHERE token = ? AND id = ?", [(token, i) for i in ids])
            db.execute("COMMIT")


def _plain(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and v != v) or v is pd.NA else str(v)


_EDIT_JOURNALS: dict[Path, EditJournal] = {}


def edit_journal(path: Path) -> EditJournal:
    """The edit journal in the registry file ``path`` (one object per file)."""
    if path not in _EDIT_JOURNALS:
        _EDIT_JOURNALS[path] = EditJournal(path)
    return _EDIT_JOURNALS[path]


def journal_edit(frame: pd.DataFrame, pos: int) -> None:
    """Journal the row at position ``pos`` of ``frame`` as the editor just left it (the editor's one hook)."""
    from .registry import registry

    edit_journal(registry().path).record({str(k): v for k, v in frame.iloc[pos].to_dict().items()})
