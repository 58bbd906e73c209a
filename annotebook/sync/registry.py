"""The on-disk registry that traces a frame to its load (data contract R-2, R-11).

`registry.sqlite` under the annotebook home holds the loads (backend, connection options without secrets,
dataset), the push history of every row and the push journal; `loads/<token>.parquet` holds each load's base
snapshot, written before the load returns its frame: a load is traceable from the moment it returns, whatever
happens to the kernel after (a snapshot that cannot be written fails the load, naming why).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from .._home import home
from .._sqlite import open_db
from ..errors import TraceError

__all__ = ["Lineage", "Registry", "recover", "registry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loads (
    token TEXT PRIMARY KEY, backend TEXT NOT NULL, spec TEXT NOT NULL, dataset TEXT NOT NULL,
    created REAL NOT NULL, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL, id TEXT NOT NULL, rev TEXT,
    prev_id TEXT NOT NULL, prev_rev TEXT, content TEXT, deleted INTEGER NOT NULL, pushed REAL NOT NULL);
CREATE INDEX IF NOT EXISTS history_token ON history(token);
CREATE TABLE IF NOT EXISTS journal (
    push TEXT PRIMARY KEY, dataset TEXT NOT NULL, tokens TEXT NOT NULL, created REAL NOT NULL,
    state TEXT NOT NULL, intent TEXT NOT NULL, report TEXT);
"""

LINEAGE_COLUMNS = ("rev", *schema.CONTENT_COLUMNS)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot store {type(v).__name__} in the registry")


def encode_content(row: Mapping[str, Any]) -> str:
    """JSON of a row's content columns in normal form (NaN kept as null)."""
    out = {c: schema.normal_value(c, row.get(c)) for c in schema.CONTENT_COLUMNS}
    return json.dumps(out, default=_json_default, allow_nan=True)


def decode_content(text: str) -> dict[str, Any]:
    raw = json.loads(text)
    return {c: schema.normal_value(c, raw.get(c)) for c in schema.CONTENT_COLUMNS}


@dataclass
class Lineage:
    """What the backend holds, as far as one load knows: its base plus every push since (R-2)."""

    token: str
    backend: str
    spec: dict[str, Any]
    dataset: str
    base: pd.DataFrame  # indexed by id: rev + content columns, as loaded
    current: pd.DataFrame  # indexed by current id: rev + content columns + gone
    alias: dict[str, str] = field(default_factory=dict)  # earlier id -> current id
    at_rev: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)

    def resolve(self, ids: Iterable[str]) -> list[str]:
        """Follow id changes (client id -> backend id, Nexus edits) to the current id."""
        out = []
        for i in ids:
            seen = 0
            while i in self.alias and seen < 100:
                i, seen = self.alias[i], seen + 1
            out.append(i)
        return out

    def content_at(self, row_id: str, rev: str | None) -> dict[str, Any] | None:
        """The content this lineage had for ``row_id`` at ``rev`` (None: unknown)."""
        if (row_id, rev) in self.at_rev:
            return self.at_rev[(row_id, rev)]
        if row_id in self.base.index:
            row = self.base.loc[row_id]
            if _same(row["rev"], rev):
                return {c: schema.normal_value(c, row[c]) for c in schema.CONTENT_COLUMNS}
        return None

    def apply_history(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Move the lineage forward by pushed entries (id, rev, prev_id, prev_rev, content, deleted)."""
        cur = self.current
        rows: dict[str, dict[str, Any]] = {}
        dropped: set[str] = set()
        for e in entries:
            prev_id, new_id, content = e["prev_id"], e["id"], e["content"]
            if prev_id != new_id:
                self.alias[prev_id] = new_id
                dropped.add(prev_id)
            if content is None:  # a deletion keeps the last content it had
                old = rows.get(prev_id) or (cur.loc[prev_id].to_dict() if prev_id in cur.index else {})
                content = {c: old.get(c) for c in schema.CONTENT_COLUMNS}
            else:
                self.at_rev[(new_id, e["rev"])] = dict(content)
                if e["prev_rev"] is None:
                    self.at_rev[(prev_id, None)] = dict(content)
            rows[new_id] = {**content, "rev": e["rev"], "gone": bool(e["deleted"])}
        if not rows:
            return
        patch = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cur.columns)
        patch = patch.astype(
            {c: t for c, t in cur.dtypes.items() if t is not object and str(t) != "object"}, errors="ignore"
        )
        keep = cur.index.difference(patch.index.union(pd.Index(list(dropped))))
        self.current = pd.concat([cur.loc[keep], patch])


def _same(a: Any, b: Any) -> bool:
    na = a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA
    nb = b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA
    return (na and nb) or (not na and not nb and str(a) == str(b))


class Registry:
    """Loads, their base snapshots and the push history, in one SQLite file plus parquet snapshots."""

    def __init__(self, root: Path):
        self.root = root
        (root / "loads").mkdir(parents=True, exist_ok=True)
        self.path = root / "registry.sqlite"
        self._lineages: dict[str, Lineage] = {}
        self._writers: dict[str, threading.Thread] = {}
        self._errors: dict[str, BaseException] = {}
        with self._db() as db:
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return _Closing(open_db(self.path))  # type: ignore[return-value]

    # -- loads ---------------------------------------------------------------------------------------------
    def new_load(self, backend: str, spec: Mapping[str, Any], dataset: str, frame: pd.DataFrame) -> str:
        """Record a load of ``frame`` (already carrying ids and revs); returns its token."""
        token = "L" + uuid.uuid4().hex[:20]
        with self._db() as db:
            db.execute(
                "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?)",
                (token, backend, json.dumps(dict(spec), sort_keys=True), dataset, time.time(), len(frame)),
            )
        base = _base_frame(frame)
        # the snapshot is on disk before the frame is handed over: a kernel killed right after the load (or a
        # parquet of the frame saved then) stays traceable (issue 16); a snapshot that cannot be written is an error
        # now, not a TraceError at the first diff
        self._write_base(token, base)
        if token in self._errors:
            with self._db() as db:
                db.execute("DELETE FROM loads WHERE token = ?", (token,))
            raise TraceError(f"the base snapshot of load {token} could not be written") from self._errors.pop(token)
        self._lineages[token] = Lineage(token, backend, dict(spec), dataset, base, _with_gone(base))
        return token

    def _write_base(self, token: str, base: pd.DataFrame) -> None:
        target = self.root / "loads" / f"{token}.parquet"
        tmp = target.with_suffix(".tmp")
        try:
            out = base.reset_index()
            out["attributes"] = [json.dumps(a, default=_json_default) if a else None for a in out["attributes"]]
            out.to_parquet(tmp, index=False)
            tmp.replace(target)
        except BaseException as exc:  # re-raised by wait()
            self._errors[token] = exc

    def wait(self, token: str | None = None) -> None:
        """Wait for background snapshot writes (one token, or all)."""
        tokens = [token] if token else list(self._writers)
        for t in tokens:
            writer = self._writers.pop(t, None)
            if writer is not None:
                writer.join()
            if t in self._errors:
                raise TraceError(f"the base snapshot of load {t} could not be written") from self._errors.pop(t)

    def load_info(self, token: str) -> tuple[str, dict[str, Any], str]:
        """(backend, spec, dataset) of a load."""
        with self._db() as db:
            row = db.execute("SELECT backend, spec, dataset FROM loads WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise TraceError(
                f"load {token} is not in the registry at {self.path}: the frame was loaded under another "
                "ANNOTEBOOK_HOME, or the registry was removed"
            )
        return row[0], json.loads(row[1]), row[2]

    def lineage(self, token: str) -> Lineage:
        """The lineage of a load: from memory, else from its snapshot and history on disk."""
        if token in self._lineages:
            return self._lineages[token]
        self.wait(token)
        backend, spec, dataset = self.load_info(token)
        path = self.root / "loads" / f"{token}.parquet"
        if not path.exists():
            raise TraceError(f"the base snapshot of load {token} is missing ({path})")
        raw = pd.read_parquet(path)
        raw["attributes"] = [json.loads(a) if isinstance(a, str) else None for a in raw["attributes"]]
        base = _base_frame(schema.coerce(raw).set_index("id"), indexed=True)
        lineage = Lineage(token, backend, spec, dataset, base, _with_gone(base))
        lineage.apply_history(self._history(token))
        self._lineages[token] = lineage
        return lineage

    def _history(self, token: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, rev, prev_id, prev_rev, content, deleted FROM history WHERE token = ? ORDER BY seq",
                (token,),
            ).fetchall()
        return [
            {
                "id": r[0],
                "rev": r[1],
                "prev_id": r[2],
                "prev_rev": r[3],
                "content": decode_content(r[4]) if r[4] else None,
                "deleted": r[5],
            }
            for r in rows
        ]

    def record(self, token: str, entries: list[dict[str, Any]]) -> None:
        """Record pushed rows of one load (entries as in `Lineage.apply_history`) and move its lineage on."""
        now = time.time()
        with self._db() as db, _transaction(db):
            db.executemany(
                "INSERT INTO history (token, id, rev, prev_id, prev_rev, content, deleted, pushed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        token,
                        e["id"],
                        e["rev"],
                        e["prev_id"],
                        e["prev_rev"],
                        encode_content(e["content"]) if e["content"] is not None else None,
                        int(bool(e["deleted"])),
                        now,
                    )
                    for e in entries
                ],
            )
        if token in self._lineages:
            self._lineages[token].apply_history(entries)

    # -- journal (R-11) -----------------------------------------------------------------------------------
    def journal_open(self, dataset: str, tokens: list[str], intent: Mapping[str, Any]) -> str:
        push = "P" + uuid.uuid4().hex[:20]
        with self._db() as db:
            db.execute(
                "INSERT INTO journal VALUES (?, ?, ?, ?, 'pending', ?, NULL)",
                (push, dataset, json.dumps(tokens), time.time(), json.dumps(intent, default=_json_default)),
            )
        return push

    def journal_close(self, push: str, state: str, report: Mapping[str, Any]) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE journal SET state = ?, report = ? WHERE push = ?",
                (state, json.dumps(report, default=_json_default), push),
            )

    def journal(self) -> pd.DataFrame:
        """Every push this registry has seen: push id, dataset, created, state, intent, report."""
        with self._db() as db:
            rows = db.execute("SELECT push, dataset, created, state, intent, report FROM journal").fetchall()
        return pd.DataFrame(rows, columns=["push", "dataset", "created", "state", "intent", "report"])

    # -- the editor's edits (issue 16) ---------------------------------------------------------------------------
    def recover(self, load: str | None = None) -> pd.DataFrame:
        """The editor's edits not pushed yet: a table of them per load, or (``load=``) that load's edited rows as a
        frame traced to the load, to diff and push (see `recover`)."""
        from .journal import edit_journal

        journal = edit_journal(self.path)
        pending: dict[str, list[dict[str, Any]]] = {}
        for e in journal.entries(load):
            if self._settled(e):
                journal.drop(e["token"], [e["id"]])
            else:
                pending.setdefault(e["token"], []).append(e)
        if load is not None:
            return self._recovered_frame(load, pending.get(load, []))
        rows = []
        for token, entries in pending.items():
            backend, _, dataset = self.load_info(token)
            rows.append({"load": token, "backend": backend, "dataset": dataset, "edits": len(entries),
                         "last_edit": pd.Timestamp(max(e["at"] for e in entries), unit="s", tz="UTC")})  # fmt: skip
        return pd.DataFrame(rows, columns=["load", "backend", "dataset", "edits", "last_edit"])

    def _settled(self, entry: Mapping[str, Any]) -> bool:
        """Whether what the entry journaled is what the load's lineage holds (pushed, or never changed)."""
        lineage = self.lineage(entry["token"])
        (row_id,) = lineage.resolve([entry["id"]])
        if row_id not in lineage.current.index:
            return bool(entry["deleted"])  # a row added then deleted in the editor: nothing to push
        now = lineage.current.loc[row_id]
        if bool(now["gone"]) != bool(entry["deleted"]):
            return False
        if entry["deleted"]:  # deleted here and there: what it held before does not matter
            return True
        return all(schema.normal_value(c, now[c]) == entry["content"][c] for c in schema.CONTENT_COLUMNS)

    def _recovered_frame(self, token: str, entries: list[dict[str, Any]]) -> pd.DataFrame:
        lineage = self.lineage(token)
        records = []
        for e in entries:
            (row_id,) = lineage.resolve([e["id"]])
            known = row_id in lineage.current.index
            rev = lineage.current.loc[row_id, "rev"] if known else None
            ident = {"dataset": e["dataset"] or lineage.dataset, "id": row_id if known else e["id"], "rev": rev}
            records.append({**e["content"], **ident, "deleted": e["deleted"], "load": token})
        return schema.annotations_frame(records) if records else schema.annotations_frame([]).assign(load=token)


def recover(load: str | None = None) -> pd.DataFrame:
    """Editor edits that were never pushed (a kernel killed after the edits, before the push).

    ``recover()`` lists them per load (load, backend, dataset, edits, last_edit); ``recover(load)`` gives that load's
    edited rows back as a frame traced to the load: ``frame.annot.diff()`` shows exactly those edits and
    ``frame.annot.push()`` pushes them. An edit that has been pushed (or undone) is settled and no longer listed.

    >>> import annotebook as ab
    >>> ab.recover()                                   # doctest: +SKIP
    >>> anns = ab.recover("L3f9...")                   # doctest: +SKIP
    >>> anns.annot.push()                              # doctest: +SKIP
    """
    return registry().recover(load)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction: autocommit mode would make every row of an executemany its own commit."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class _Closing:
    """sqlite3 connection as a context manager that closes (the stdlib one only commits)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()


def _base_frame(frame: pd.DataFrame, indexed: bool = False) -> pd.DataFrame:
    cols = list(LINEAGE_COLUMNS)
    base = frame[cols] if indexed else frame.set_index("id")[cols]
    base = base.copy()
    # dicts are mutable: the base keeps its own copies so an in-place edit of the frame cannot leak into it
    base["attributes"] = pd.Series(
        [dict(a) if isinstance(a, dict) else a for a in base["attributes"]], index=base.index, dtype=object
    )
    return base


def _with_gone(base: pd.DataFrame) -> pd.DataFrame:
    cur = base.copy()
    cur["gone"] = False
    return cur


_REGISTRIES: dict[Path, Registry] = {}


def registry(root: Path | None = None) -> Registry:
    """The registry under ``root`` (default: the annotebook home), one object per directory."""
    root = (root or home()).resolve()
    if root not in _REGISTRIES:
        _REGISTRIES[root] = Registry(root)
    return _REGISTRIES[root]


@atexit.register
def _flush() -> None:
    for reg in _REGISTRIES.values():
        with contextlib.suppress(TraceError):  # nothing to report to at exit; lineage() names a missing snapshot
            reg.wait()
