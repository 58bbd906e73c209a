"""The embedded local store: one SQLite file (WAL) plus an image folder; no server, no account.

A push is one ``BEGIN IMMEDIATE`` transaction: it lands whole or not at all, and two kernels writing the same
store serialise on SQLite's write lock. Every written row gets the store's next revision number, so a row changed
by another kernel since a frame's load is seen as a conflict, field by field, and nothing is overwritten.

Layout: the ``annotations`` table (one row per annotation, points / visibility / attributes as JSON) is the
truth. Beside it, ``columns`` holds a copy of each dataset's columns as of a store revision (Arrow IPC for the typed
columns, marshal for the object columns), so that a load reads arrays instead of parsing a million rows; a load
takes the copy plus the rows with a later revision and those deleted since (the trigger on ``annotations`` records
every deletion in ``gone``), all in one read snapshot, and rewrites the copy when that remainder grows. Writers
never touch the copy, so any number of kernels (and versions of annotebook without it) write the store as before;
a store file written before the copy existed opens as it is and gets its copy on its first load.
"""

from __future__ import annotations

import itertools
import json
import marshal
import math
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from .._sqlite import open_db
from ..errors import CorruptStore, NotFound, ValidationError
from .base import Capabilities

if TYPE_CHECKING:
    from .transfer_report import ExportResult, ImportReport

__all__ = ["LocalBackend"]

#: ``annotation`` (a platform's grouping of rows, Label Studio's annotation) has no place in the store
_ANN_COLS = [c for c in schema.ANNOTATION_COLUMNS if c not in ("dataset", "id", "rev", "deleted", "load", "annotation")]
_JSON_COLS = ("points", "visibility", "attributes")

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (name TEXT PRIMARY KEY, description TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS assets (
    dataset TEXT NOT NULL, asset TEXT NOT NULL, name TEXT, width INTEGER, height INTEGER, uri TEXT,
    status TEXT, frames INTEGER, rev INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dataset, asset));
CREATE TABLE IF NOT EXISTS labels (
    dataset TEXT NOT NULL, name TEXT NOT NULL, "index" INTEGER, color TEXT, keypoints TEXT, skeleton TEXT,
    PRIMARY KEY (dataset, name));
CREATE TABLE IF NOT EXISTS annotations (
    pk INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, rev INTEGER NOT NULL,
    {", ".join(f'"{c}"' for c in _ANN_COLS)});
CREATE INDEX IF NOT EXISTS annotations_asset ON annotations(dataset, asset);
CREATE INDEX IF NOT EXISTS annotations_dataset ON annotations(dataset);
CREATE INDEX IF NOT EXISTS annotations_rev ON annotations(dataset, rev);
CREATE TABLE IF NOT EXISTS gone (seq INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, pk INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS annotations_gone AFTER DELETE ON annotations
    BEGIN INSERT INTO gone (dataset, pk) VALUES (old.dataset, old.pk); END;
CREATE TABLE IF NOT EXISTS columns (
    dataset TEXT NOT NULL, part INTEGER NOT NULL, rev INTEGER NOT NULL, gone INTEGER NOT NULL, format TEXT NOT NULL,
    data BLOB NOT NULL, objects BLOB NOT NULL, PRIMARY KEY (dataset, part));
"""


def _to_sql(col: str, v: Any) -> Any:
    v = schema.normal_points(v) if col == "points" else schema.normal_value(col, v)
    if col in _JSON_COLS:
        return None if not v else json.dumps(v)
    if col == "value":
        return None if v is None else int(bool(v))
    return v


def _sql_column(col: str, values: pd.Series) -> list[Any]:
    """A column as the values `_to_sql` gives cell by cell, converted a column at a time where the dtype allows."""
    if col in _JSON_COLS or col == "value" or values.dtype == object:
        return [None if v is None else _to_sql(col, v) for v in values.to_numpy(dtype=object)]
    return values.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]


def _points_from_sql(text: str | None) -> Any:
    if text is None:
        return None
    return tuple(tuple(math.nan if c is None else _coordinate(c) for c in part) for part in json.loads(text))


def _coordinate(c: Any) -> float:
    if isinstance(c, bool) or not isinstance(c, int | float):
        raise TypeError(f"a vertex coordinate {c!r} is not a number")
    return float(c)


class LocalBackend:
    """The embedded store in ``path`` (created on first use, with the bundled sample datasets)."""

    name = "local"
    title = "the local store"
    capabilities = Capabilities(
        update=True,
        create=True,
        replace_per_asset=False,
        batch_size=None,
        client_ids=False,
        revisions="counter",
        statuses=True,
        creates_labels=True,
        atomic=True,
        conditional_write=True,
        remote=False,
        export_formats=(),
    )

    def __init__(self, path: str | Path, samples: bool = True):
        self.path = Path(path).expanduser().resolve()
        self._tx = threading.local()
        fresh = not (self.path / "store.sqlite").exists()
        self.path.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_DDL)
        if fresh and samples:
            self.install_samples()

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.path)!r})"

    def spec(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection to the store: the open transaction's, inside `transaction`, else a fresh one."""
        if getattr(self._tx, "db", None) is not None:
            yield self._tx.db
            return
        db = open_db(self.path / "store.sqlite")
        try:
            yield db
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            path = self.path / "store.sqlite"  # text that is not UTF-8: the file was written by something else
            raise CorruptStore(f"{path} holds text it cannot read ({exc})", str(path)) from exc
        finally:
            db.close()

    # -- reading -------------------------------------------------------------------------------------------
    def datasets(self) -> pd.DataFrame:
        with self._db() as db:
            rows = db.execute(
                "SELECT d.name, d.description, "
                "(SELECT COUNT(*) FROM assets a WHERE a.dataset = d.name), "
                "(SELECT COUNT(*) FROM annotations n WHERE n.dataset = d.name) FROM datasets d ORDER BY d.name"
            ).fetchall()
        df = pd.DataFrame(rows, columns=["dataset", "description", "assets", "annotations"])
        return df.astype({"dataset": schema.STR, "description": schema.STR, "assets": "Int64", "annotations": "Int64"})

    def _require(self, db: sqlite3.Connection, dataset: str) -> None:
        if db.execute("SELECT 1 FROM datasets WHERE name = ?", (dataset,)).fetchone() is None:
            names = [r[0] for r in db.execute("SELECT name FROM datasets ORDER BY name")]
            raise NotFound(f"no dataset {dataset!r} in the local store {self.path}; it has {names}")

    def assets(self, dataset: str) -> pd.DataFrame:
        with self._db() as db:
            self._require(db, dataset)
            rows = db.execute(
                "SELECT dataset, asset, name, width, height, uri, status, frames FROM assets "
                "WHERE dataset = ? ORDER BY asset",
                (dataset,),
            ).fetchall()
        df = pd.DataFrame(rows, columns=["dataset", "asset", "name", "width", "height", "uri", "status", "frames"])
        return schema.assets_frame(df)

    def labels(self, dataset: str) -> pd.DataFrame:
        with self._db() as db:
            self._require(db, dataset)
            rows = db.execute(
                'SELECT dataset, name, "index", color, keypoints, skeleton FROM labels WHERE dataset = ? '
                'ORDER BY "index", name',
                (dataset,),
            ).fetchall()
        records = [
            dict(zip(schema.LABEL_COLUMNS, (*r[:4], *(json.loads(v) if v else None for v in r[4:])), strict=True))
            for r in rows
        ]
        return schema.labels_frame(records)

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        cols = ", ".join(f'"{c}"' for c in _ANN_COLS)
        sql = f"SELECT dataset, CAST(pk AS TEXT), CAST(rev AS TEXT), {cols} FROM annotations WHERE dataset = ?"
        if assets is None:
            return self._whole(dataset, sql)
        with self._db() as db:
            self._require(db, dataset)
            db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (asset TEXT PRIMARY KEY)")
            db.execute("DELETE FROM wanted")
            db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(str(a),) for a in assets])
            rows = db.execute(sql + " AND asset IN (SELECT asset FROM wanted) ORDER BY pk", (dataset,)).fetchall()
        return self._frame(rows)

    def _frame(self, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
        """`_rows_to_frame`, with a cell the store could not have written named as the file's damage (issue 16)."""
        try:
            return _rows_to_frame(rows)
        except (TypeError, ValueError, OverflowError, KeyError, IndexError) as exc:
            path = self.path / "store.sqlite"
            raise CorruptStore(
                f"{path} holds an annotation it cannot read ({type(exc).__name__}: {exc})", str(path)
            ) from exc

    def _whole(self, dataset: str, sql: str) -> pd.DataFrame:
        """A whole dataset: the column copy plus the rows written or deleted since it, in one read snapshot.

        The copy is rewritten (after the read) when it is missing or the rows since it are many.
        """
        with self._db() as db:
            own = not db.in_transaction
            if own:
                db.execute("BEGIN")  # one snapshot: the copy, the rows since it and the counters agree
            try:
                self._require(db, dataset)
                rev, gone = _counters(db, dataset)
                copy = _read_columns(db, dataset)
                if copy is None:
                    frame, since = self._frame(db.execute(sql + " ORDER BY pk", (dataset,)).fetchall()), -1
                else:
                    base, pks, crev, cgone = copy
                    newer = db.execute(sql + " AND rev > ? ORDER BY pk", (dataset, crev)).fetchall()
                    dropped = [r[0] for r in db.execute(
                        "SELECT pk FROM gone WHERE dataset = ? AND seq > ?", (dataset, cgone))]  # fmt: skip
                    frame = _merge(base, pks, self._frame(newer), dropped)
                    since = len(newer) + len(dropped)
            finally:
                if own:
                    db.execute("COMMIT")
        if since < 0 or since > max(_REFRESH_ROWS, len(frame) * _REFRESH_SHARE):
            self._write_columns(dataset, frame, rev, gone)
        return frame

    def _write_columns(self, dataset: str, frame: pd.DataFrame, rev: int, gone: int) -> None:
        """Store ``frame`` (the dataset as of store revision ``rev`` and deletion ``gone``) as its column copy."""
        try:
            parts = _encode(frame)
        except (ValueError, TypeError):  # a value marshal cannot hold: the dataset loads from its rows
            return
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                held = db.execute(
                    "SELECT MAX(rev), MAX(gone) FROM columns WHERE dataset = ? AND format = ?", (dataset, _FORMAT)
                ).fetchone()
                if held[0] is not None and (held[0], held[1]) >= (rev, gone):
                    db.execute("COMMIT")
                    return  # another kernel stored as new a copy meanwhile
                db.execute("DELETE FROM columns WHERE dataset = ?", (dataset,))
                db.executemany(
                    "INSERT INTO columns VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(dataset, i, rev, gone, _FORMAT, data, objects) for i, (data, objects) in enumerate(parts)],
                )
                db.execute("DELETE FROM gone WHERE dataset = ? AND seq <= ?", (dataset, gone))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def image_path(self, dataset: str, asset: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT uri FROM assets WHERE dataset = ? AND asset = ?", (dataset, asset)).fetchone()
        if row is None or row[0] is None:
            return None
        uri = Path(row[0])
        return str(uri if uri.is_absolute() else self.path / uri)

    # -- writing -------------------------------------------------------------------------------------------
    def write_dataset(
        self,
        dataset: str,
        assets: pd.DataFrame,
        annotations: pd.DataFrame,
        labels: pd.DataFrame | None = None,
        description: str = "",
    ) -> None:
        """Create (or replace) a whole dataset in one transaction."""
        anns = schema.annotations_frame(annotations)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in ("assets", "labels", "annotations", "datasets"):
                    key = "name" if table == "datasets" else "dataset"
                    db.execute(f"DELETE FROM {table} WHERE {key} = ?", (dataset,))
                db.execute("INSERT INTO datasets VALUES (?, ?, datetime('now'))", (dataset, description))
                self._insert_assets(db, dataset, schema.assets_frame(assets))
                if labels is not None:
                    self._insert_labels(db, dataset, schema.labels_frame(labels))
                rev = self._next_rev(db)
                self._insert_annotations(db, dataset, anns, rev)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def import_tables(self, dataset: str, tables: list[Any]) -> dict[str, int]:
        """Add the assets, labels and annotations of parsed files to ``dataset`` (created if new), in one transaction.

        Assets already in the dataset keep their row (their size and uri are filled where missing); imported rows
        are new rows with new ids; labels are added where missing, keeping the file's index when it is free.
        """
        counts = {"assets": 0, "annotations": 0, "labels": 0}
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR IGNORE INTO datasets VALUES (?, '', datetime('now'))", (dataset,))
                rev = self._next_rev(db)
                for t in tables:
                    counts["assets"] += self._merge_assets(db, dataset, t.assets)
                    counts["labels"] += self._merge_labels(db, dataset, t.labels)
                    counts["annotations"] += len(self._insert_annotations(db, dataset, t.annotations, rev))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return counts

    def _merge_assets(self, db: sqlite3.Connection, dataset: str, assets: pd.DataFrame) -> int:
        known = {r[0] for r in db.execute("SELECT asset FROM assets WHERE dataset = ?", (dataset,))}
        new = assets[~assets["asset"].isin(known)].drop_duplicates("asset")
        self._insert_assets(db, dataset, new)
        for r in assets[assets["asset"].isin(known)].to_dict("records"):
            db.execute(
                "UPDATE assets SET width = COALESCE(width, ?), height = COALESCE(height, ?), uri = COALESCE(uri, ?) "
                "WHERE dataset = ? AND asset = ?",
                (*(schema.normal_value(c, r[c]) for c in ("width", "height", "uri")), dataset, r["asset"]),
            )
        return len(new)

    def _merge_labels(self, db: sqlite3.Connection, dataset: str, labels: pd.DataFrame) -> int:
        rows = db.execute('SELECT name, "index" FROM labels WHERE dataset = ?', (dataset,)).fetchall()
        names, used = {r[0] for r in rows}, {r[1] for r in rows}
        new = labels[~labels["name"].isin(names)].drop_duplicates("name").copy()
        top = max([i for i in used if i is not None], default=-1)
        for pos, idx in zip(new.index, new["index"], strict=True):
            if pd.isna(idx) or int(idx) in used:
                top += 1
                new.loc[pos, "index"] = top
            used.add(int(new.loc[pos, "index"]))
            top = max(top, int(new.loc[pos, "index"]))
        self._insert_labels(db, dataset, new)
        return len(new)

    def write_statuses(self, dataset: str, statuses: dict[str, str | None]) -> None:
        """Set assets' review statuses in one transaction."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._require(db, dataset)
                db.executemany(
                    "UPDATE assets SET status = ?, rev = rev + 1 WHERE dataset = ? AND asset = ?",
                    [(None if pd.isna(s) else str(s), dataset, a) for a, s in statuses.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Read files or folders and add them to ``dataset`` in one transaction; a bad file adds nothing.

        The store takes no import options. A malformed file is an `ImportRejected` naming every bad file.
        """
        from ._transfer import parse_files
        from .transfer_report import ImportReport, take_options

        take_options(options, {}, "the local store's import_files")
        tables, rows = parse_files(list(paths), dataset, format, progress)
        added = self.import_tables(dataset, tables)
        return ImportReport.of(self.name, dataset, rows, added=added)

    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """Write ``dataset`` in ``format`` under ``dest`` (with the images when ``images``); what was written.

        ``options`` go to the format's writer (``skip_unsupported=True``, ``precision=``, ...).
        """
        from ._transfer import export_tables

        with self._db() as db:
            self._require(db, dataset)
        return export_tables(self, dataset, format, dest, images=images, **options)

    def _insert_assets(self, db: sqlite3.Connection, dataset: str, assets: pd.DataFrame) -> None:
        cols = ["asset", "name", "width", "height", "uri", "status", "frames"]
        rows = [
            [dataset, *(schema.normal_value(c, v) for c, v in zip(cols, r, strict=True))]
            for r in assets[cols].itertuples(index=False)
        ]
        db.executemany("INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)", rows)

    def _insert_labels(self, db: sqlite3.Connection, dataset: str, labels: pd.DataFrame) -> None:
        rows = []
        for r in labels.to_dict("records"):
            kp = json.dumps(list(r["keypoints"])) if r["keypoints"] else None
            sk = json.dumps([list(p) for p in r["skeleton"]]) if r["skeleton"] else None
            idx = schema.normal_value("index", r["index"])
            color = schema.normal_value("color", r["color"])
            rows.append((dataset, r["name"], None if idx is None else int(idx), color, kp, sk))
        db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _insert_annotations(self, db: sqlite3.Connection, dataset: str, anns: pd.DataFrame, rev: int) -> list[str]:
        """Insert rows in one statement; a grounding row's ``parent`` naming a row of the batch gets its new id.

        The new ids are chosen here (after the highest ever given, as AUTOINCREMENT would), so the rows go in
        column by column with no per-row round trip; the caller's transaction (or one opened here) holds the lock.
        """
        n = len(anns)
        own = not db.in_transaction
        if own:
            db.execute("BEGIN IMMEDIATE")
        try:
            top = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'annotations'").fetchone()
            first = (int(top[0]) if top else 0) + 1
            new_ids = [str(i) for i in range(first, first + n)]
            renamed = dict(zip(anns["id"].astype(str).tolist(), new_ids, strict=True))
            columns = [_sql_column(c, anns[c]) for c in _ANN_COLS]
            parents = columns[_ANN_COLS.index("parent")]
            columns[_ANN_COLS.index("parent")] = [renamed.get(v, v) if v is not None else None for v in parents]
            cols = ", ".join(f'"{c}"' for c in _ANN_COLS)
            marks = ", ".join("?" for _ in _ANN_COLS)
            db.executemany(
                f"INSERT INTO annotations (pk, dataset, rev, {cols}) VALUES (?, ?, ?, {marks})",
                zip(range(first, first + n), itertools.repeat(dataset), itertools.repeat(rev), *columns),
            )
            if own:
                db.execute("COMMIT")
        except BaseException:
            if own:
                db.execute("ROLLBACK")
            raise
        return new_ids

    def _next_rev(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()
        rev = int(row[0]) + 1 if row else 1
        db.execute("INSERT OR REPLACE INTO meta VALUES ('rev', ?)", (str(rev),))
        return rev

    # -- the sync engine's primitives (`annotebook.sync.patch`: one transaction per push) ---------------------
    @contextmanager
    def transaction(self, dataset: str) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: the engine's re-read, conflict check and writes run inside it.

        Two kernels pushing to one store serialise here, so the second re-reads after the first committed and
        sees its revisions; a failure anywhere rolls everything back.
        """
        db = open_db(self.path / "store.sqlite")
        db.execute("BEGIN IMMEDIATE")
        self._tx.db, self._tx.rev = db, None
        try:
            self._require(db, dataset)
            yield
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            self._tx.db = None
            db.close()

    def _rev(self, db: sqlite3.Connection) -> int:
        """The revision every row written in this transaction gets (one per push)."""
        if getattr(self._tx, "rev", None) is None:
            self._tx.rev = self._next_rev(db)
        rev = int(self._tx.rev)
        if getattr(self._tx, "db", None) is None:  # outside a transaction every write is its own revision
            self._tx.rev = None
        return rev

    def read_rows(self, dataset: str, ids: Sequence[str]) -> pd.DataFrame:
        """The rows ``ids`` as the store holds them now (those gone are left out): a push re-reads only these."""
        cols = ", ".join(f'"{c}"' for c in _ANN_COLS)
        with self._db() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS probe (pk INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM probe")
            db.executemany("INSERT OR IGNORE INTO probe VALUES (?)", [(int(i),) for i in ids if str(i).isdigit()])
            rows = db.execute(
                f"SELECT dataset, CAST(pk AS TEXT), CAST(rev AS TEXT), {cols} FROM annotations "
                "WHERE dataset = ? AND pk IN (SELECT pk FROM probe) ORDER BY pk",
                (dataset,),
            ).fetchall()
        return self._frame(rows)

    def row_key(self, row: Mapping[str, Any]) -> str:
        """The store keeps every content column as sent: the key is the row's whole content."""
        return schema.content_key(row)

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Rows must name assets of the dataset."""
        wanted = json.dumps(sorted({str(a) for a in rows["asset"]}))
        with self._db() as db:
            unknown = [r[0] for r in db.execute(
                "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT asset FROM assets WHERE dataset = ?)",
                (wanted, dataset),
            )]  # fmt: skip
        if not unknown:
            return
        bad = rows[rows["asset"].isin(unknown)]
        if len(bad):
            problems = pd.DataFrame({"id": bad["id"], "column": "asset", "problem": "unknown asset " + bad["asset"]})
            raise ValidationError(f"{len(bad)} row(s) name assets not in dataset {dataset!r}", problems)

    def create_labels(self, dataset: str, names: list[str]) -> None:
        with self._db() as db:
            known = {r[0] for r in db.execute("SELECT name FROM labels WHERE dataset = ?", (dataset,))}
            top = db.execute('SELECT MAX("index") FROM labels WHERE dataset = ?', (dataset,)).fetchone()[0]
            start = -1 if top is None else int(top)
            new = [n for n in names if n not in known]
            db.executemany(
                "INSERT INTO labels VALUES (?, ?, ?, NULL, NULL, NULL)",
                [(dataset, name, start + 1 + i) for i, name in enumerate(new)],
            )

    def create_rows(self, dataset: str, rows: pd.DataFrame) -> list[tuple[str, str]]:
        with self._db() as db:
            rev = self._rev(db)
            return [(new, str(rev)) for new in self._insert_annotations(db, dataset, rows, rev)]

    def patch_rows(self, dataset: str, rows: pd.DataFrame) -> dict[str, str]:
        sets = ", ".join(f'"{c}" = ?' for c in _ANN_COLS)
        with self._db() as db:
            rev = self._rev(db)
            db.executemany(
                f"UPDATE annotations SET rev = ?, {sets} WHERE pk = ? AND dataset = ?",
                [[rev, *(_to_sql(c, rec[c]) for c in _ANN_COLS), int(rec["id"]), dataset]
                 for rec in rows[["id", *_ANN_COLS]].to_dict("records")],
            )  # fmt: skip
        return {str(i): str(rev) for i in rows["id"]}

    def delete_rows(self, dataset: str, rows: pd.DataFrame) -> list[str]:
        gone = []
        with self._db() as db:
            for row_id in rows["id"]:
                cur = db.execute("DELETE FROM annotations WHERE pk = ? AND dataset = ?", (int(row_id), dataset))
                if cur.rowcount == 0:
                    gone.append(str(row_id))
        return gone

    def install_samples(self) -> None:
        """Write the bundled sample datasets into this store."""
        from ..samples import make_shapes

        assets, anns, labels = make_shapes(self.path / "images" / "shapes")
        self.write_dataset("shapes", assets, anns, labels, description="generated shapes with planted mistakes")


#: rows written or deleted since the column copy above which a load rewrites the copy (or a tenth of the dataset)
_REFRESH_ROWS = 20_000
_REFRESH_SHARE = 0.1
#: rows per stored part of the copy (a SQLite value holds at most 1 GB)
_PART_ROWS = 1_000_000
#: the copy's encoding: Arrow IPC of the typed columns plus marshal of the object columns, whose format may change
#: between Python versions; a copy of another format is ignored and rewritten from the rows
_FORMAT = f"arrow-ipc/marshal-{marshal.version}/py{sys.version_info[0]}.{sys.version_info[1]}"
_TYPED = [c for c in schema.ANNOTATION_COLUMNS if c not in (*schema.OBJECT_COLUMNS, "deleted", "load")]
_ARROW_TYPES = {
    pa.string(): schema.STR,
    pa.large_string(): schema.STR,
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _counters(db: sqlite3.Connection, dataset: str) -> tuple[int, int]:
    """(the store's revision, the last deletion's sequence number) as this snapshot sees them."""
    rev = db.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()
    gone = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'gone'").fetchone()
    return (int(rev[0]) if rev else 0), (int(gone[0]) if gone else 0)


def _encode(frame: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """The frame's contract columns in parts of `_PART_ROWS`: (Arrow IPC of the typed columns, marshal of the rest).

    ids and revisions are the store's integers, kept as such (a quarter of the text's size)."""
    out = []
    for start in range(0, max(len(frame), 1), _PART_ROWS):
        part = frame.iloc[start : start + _PART_ROWS]
        arrays = {}
        for col in _TYPED:
            arr = pa.array(part[col].to_numpy() if part[col].dtype == "float64" else part[col], from_pandas=True)
            arrays[col] = pc.cast(arr, pa.int64()) if col in ("id", "rev") else arr
        table = pa.table(arrays)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        objects = marshal.dumps([part[c].tolist() for c in schema.OBJECT_COLUMNS])
        out.append((sink.getvalue().to_pybytes(), objects))
    return out


def _read_columns(db: sqlite3.Connection, dataset: str) -> tuple[pd.DataFrame, np.ndarray, int, int] | None:
    """The column copy of ``dataset`` as (frame, its ids as integers, revision, deletion sequence); None if none."""
    rows = db.execute(
        "SELECT rev, gone, format, data, objects FROM columns WHERE dataset = ? ORDER BY part", (dataset,)
    ).fetchall()
    if not rows or any(r[2] != _FORMAT for r in rows):
        return None
    frames, ids = [], []
    for _, _, _, data, objects in rows:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        ids.append(table.column("id").to_numpy())
        data_cols: dict[str, Any] = {}
        for col in _TYPED:
            arr = table.column(col)
            if col in ("id", "rev"):
                arr = pc.cast(arr, pa.string())
            series = arr.to_pandas(types_mapper=_ARROW_TYPES.get)
            # floats come as a view of Arrow's read-only buffer: the frame gets its own, writable copy
            data_cols[col] = np.array(series.to_numpy(), dtype=float) if series.dtype == "float64" else series.array
        for col, values in zip(schema.OBJECT_COLUMNS, marshal.loads(objects), strict=True):
            data_cols[col] = pd.Series(schema._objects(values), dtype=object)
        n = table.num_rows
        data_cols["deleted"] = np.zeros(n, dtype=bool)
        data_cols["load"] = pd.array([None] * n, dtype=schema.STR)
        frames.append(pd.DataFrame({c: data_cols[c] for c in schema.ANNOTATION_COLUMNS}))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, np.concatenate(ids), int(rows[0][0]), int(rows[0][1])


def _merge(base: pd.DataFrame, pks: np.ndarray, newer: pd.DataFrame, dropped: list[int]) -> pd.DataFrame:
    """The copy with rows written since it replaced or added and rows deleted since it left out, in id order."""
    if not len(newer) and not dropped:
        return base
    newer_pks = newer["id"].astype("int64").to_numpy() if len(newer) else np.array([], dtype=np.int64)
    keep = ~np.isin(pks, np.concatenate([newer_pks, np.asarray(dropped, dtype=np.int64)]))
    if not len(newer):
        return base[keep].reset_index(drop=True)
    out = pd.concat([base[keep], newer], ignore_index=True)
    order = np.concatenate([pks[keep], newer_pks])
    if len(order) > 1 and (np.diff(order) < 0).any():
        out = out.take(np.argsort(order, kind="stable")).reset_index(drop=True)
    return out


def _rows_to_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of ``SELECT dataset, id, rev, <content>`` as an annotations table, built straight in contract dtypes.

    The store writes only normal-form values, so no second coercion pass is needed (it would double the load).
    """
    names = ["dataset", "id", "rev", *_ANN_COLS]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    data: dict[str, Any] = {}
    for name, values in zip(names, columns, strict=True):
        dtype = schema.ANNOTATION_COLUMNS[name]
        if name == "points":
            data[name] = pd.Series([_points_from_sql(v) for v in values], dtype=object)
        elif name == "visibility":
            data[name] = pd.Series([None if v is None else tuple(json.loads(v)) for v in values], dtype=object)
        elif name == "attributes":
            data[name] = pd.Series([None if v is None else json.loads(v) for v in values], dtype=object)
        elif dtype == "float64":
            data[name] = np.array(values, dtype=float)
        elif dtype == "boolean":
            data[name] = pd.array([None if v is None else bool(v) for v in values], dtype="boolean")
        else:
            data[name] = pd.array(values, dtype=dtype)
    n = len(rows)
    data["deleted"] = np.zeros(n, dtype=bool)
    data["load"] = pd.array([None] * n, dtype=schema.STR)
    data["annotation"] = pd.array([None] * n, dtype=schema.STR)
    return pd.DataFrame({c: data[c] for c in schema.ANNOTATION_COLUMNS})
