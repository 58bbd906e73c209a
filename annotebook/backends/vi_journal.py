"""The journal that makes a Vi push repeatable: per (dataset, asset) the upload sent but not yet mapped back.

It lives in ``vi-journal.sqlite`` under the annotebook home; `ViBackend.apply` reads it to recognise an upload that
landed although its answer was lost.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from .._sqlite import open_db

__all__ = ["UploadJournal"]


class UploadJournal:
    """Uploads sent but not yet mapped back (``vi-journal.sqlite`` under the annotebook home).

    An upload whose answer was lost (a cut connection, a timeout) may still land and give every row of its asset a
    new id; the next push finds the entry, sees that the asset now holds exactly the planned rows, and maps the old
    ids to the new ones instead of calling them conflicts or uploading them twice.
    """

    def __init__(self, path: Path):
        self.path = path

    def _db(self) -> Any:
        db = open_db(self.path)
        db.execute("CREATE TABLE IF NOT EXISTS uploads (place TEXT, asset TEXT, planned TEXT, at REAL, "
                   "PRIMARY KEY (place, asset))")  # fmt: skip
        return contextlib.closing(db)

    def get(self, place: str, asset: str) -> list[tuple[str, list[Any], bool]] | None:
        with self._db() as db:
            row = db.execute("SELECT planned FROM uploads WHERE place = ? AND asset = ?", (place, asset)).fetchone()
        return None if row is None else [(str(o), list(k), bool(s)) for o, k, s in json.loads(row[0])]

    def put(self, place: str, asset: str, planned: list[tuple[str, tuple[Any, ...], bool]]) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?)",
                       (place, asset, json.dumps([[o, list(k), s] for o, k, s in planned]), time.time()))  # fmt: skip

    def done(self, place: str, asset: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM uploads WHERE place = ? AND asset = ?", (place, asset))
