"""The embedded local store: one SQLite file (WAL) plus an image folder; no server, no account.

A push is one ``BEGIN IMMEDIATE`` transaction: it lands whole or not at all, and two kernels writing the same
store serialise on SQLite's write lock. Every written row gets the store's next revision number, so a row changed
by another kernel since a frame's load is seen as a conflict, field by field, and nothing is overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import schema
from .._sqlite import open_db
from ..errors import NotFound, ValidationError
from .base import Capabilities

if TYPE_CHECKING:
    from .transfer_report import ExportResult, ImportReport

__all__ = ["LocalBackend"]

_ANN_COLS = [c for c in schema.ANNOTATION_COLUMNS if c not in ("dataset", "id", "rev", "deleted", "load")]
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
"""


def _to_sql(col: str, v: Any) -> Any:
    v = schema.normal_points(v) if col == "points" else schema.normal_value(col, v)
    if col in _JSON_COLS:
        return None if not v else json.dumps(v)
    if col == "value":
        return None if v is None else int(bool(v))
    return v


def _points_from_sql(text: str | None) -> Any:
    return None if text is None else tuple(map(tuple, json.loads(text)))


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
        with self._db() as db:
            self._require(db, dataset)
            if assets is None:
                rows = db.execute(sql + " ORDER BY pk", (dataset,)).fetchall()
            else:
                db.execute("CREATE TEMP TABLE wanted (asset TEXT PRIMARY KEY)")
                db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(str(a),) for a in assets])
                rows = db.execute(sql + " AND asset IN (SELECT asset FROM wanted) ORDER BY pk", (dataset,)).fetchall()
        return _rows_to_frame(rows)

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
        """Insert rows; a grounding row's ``parent`` naming a row of the same batch gets that row's new id."""
        marks = ", ".join("?" for _ in _ANN_COLS)
        cols = ", ".join(f'"{c}"' for c in _ANN_COLS)
        sql = f"INSERT INTO annotations (dataset, rev, {cols}) VALUES (?, ?, {marks}) RETURNING pk"
        records = anns[["id", *_ANN_COLS]].to_dict("records")
        batch = {r["id"] for r in records}
        order = sorted(range(len(records)), key=lambda i: records[i]["parent"] in batch)
        new_ids: dict[str, str] = {}
        for i in order:
            rec = records[i]
            if rec["parent"] in new_ids:
                rec["parent"] = new_ids[rec["parent"]]
            row = [dataset, rev, *(_to_sql(c, rec[c]) for c in _ANN_COLS)]
            new_ids[rec["id"]] = str(db.execute(sql, row).fetchone()[0])
        return [new_ids[r["id"]] for r in records]

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
        return _rows_to_frame(rows)

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
    return pd.DataFrame({c: data[c] for c in schema.ANNOTATION_COLUMNS})
