"""Where the editor's edits land: one small interface, and its implementation on the user's own DataFrame.

`FrameSink` writes into the very DataFrame object the editor was opened on, as the data contract asks
(docs/data-model.md, R-1, R-6, R-9): a changed row is found by its ``id`` and written by position (``.iat``), so
any index works, duplicate labels included; an added row goes through ``frame.annot.add_rows(frame.annot.new_rows
(...))`` (in place, full dtypes, a fresh client id); a deletion sets ``deleted``. `MemorySink` keeps rows in a
dict, for tests of the state that need no pandas.

>>> from annotebook import schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "id": "1", "label": "cat", "kind": "box",
...                                    "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}])
>>> FrameSink(anns).update("1", {"label": "dog"})
>>> anns.loc[0, "label"]
'dog'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SIZE", "AssetInfo", "FrameSink", "MemorySink", "Sink"]

#: the pixel size used for an asset whose size is unknown (no assets row, no readable image)
DEFAULT_SIZE = (1000.0, 1000.0)


@dataclass(frozen=True)
class AssetInfo:
    """What the editor needs to know of one asset besides its rows."""

    asset: str
    dataset: str | None
    width: float
    height: float
    uri: str | None = None
    status: str | None = None
    name: str | None = None
    size_known: bool = True


class Sink(Protocol):
    """The one way edits reach the table."""

    def info(self, asset: str) -> AssetInfo:
        """Size, image and status of ``asset``."""
        ...

    def rows(self, asset: str) -> list[dict[str, Any]]:
        """The asset's rows that are not deleted, in table order, as dicts of the contract's columns."""
        ...

    def add(self, asset: str, fields: Mapping[str, Any]) -> str:
        """Add a row on ``asset``; returns its new id."""
        ...

    def asset_of(self, id: str) -> str | None:
        """The asset of live row ``id``, or None when there is no such row."""
        ...

    def update(self, id: str, fields: Mapping[str, Any]) -> None:
        """Write ``fields`` into row ``id``."""
        ...

    def delete(self, id: str) -> None:
        """Set row ``id``'s ``deleted`` flag."""
        ...

    def restore(self, id: str) -> None:
        """Clear row ``id``'s ``deleted`` flag (undo of a delete, redo of an add)."""
        ...

    def set_status(self, asset: str, status: str | None) -> None:
        """Set the asset's review status (where an assets table was given)."""
        ...


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _column(frame: pd.DataFrame, name: str) -> int:
    """The position of column ``name`` (which must be there once)."""
    where = frame.columns.get_loc(name)
    if not isinstance(where, int):
        raise ValueError(f"the frame has column {name!r} more than once")
    return where


class FrameSink:
    """A `Sink` on an annotations DataFrame, edited in place, and optionally the user's assets DataFrame, which
    receives the review status. ``lookup`` is an assets table only read for sizes and images (by default
    ``assets``): the frame's own table from its connection, which the editor must not write into."""

    def __init__(self, frame: pd.DataFrame, assets: pd.DataFrame | None = None, lookup: pd.DataFrame | None = None):
        self.frame = frame
        self.assets = assets
        self.lookup = assets if lookup is None else lookup
        self._pos: dict[str, int] = {}  # id -> position where it was last seen
        self._what: dict[str, tuple[str, str]] = {}  # id -> (asset, kind) it was seen with
        self._alias: dict[str, str] = {}  # an id the editor knows -> the id the row has now (after a push)

    # -- reading -----------------------------------------------------------------------------------------------
    def info(self, asset: str) -> AssetInfo:
        row = self._asset_row(asset)
        dataset = _text(row.get("dataset")) if row else self._dataset_of(asset)
        uri = _text(row.get("uri")) if row else None
        width, height = (_number(row.get("width")), _number(row.get("height"))) if row else (None, None)
        known = width is not None and height is not None
        if not known and uri is not None and "://" not in uri:
            from ..formats._image_size import image_size

            size = image_size(Path(uri))
            width, height = (float(size[0]), float(size[1])) if size else (None, None)
            known = size is not None
        return AssetInfo(
            asset=asset,
            dataset=dataset,
            width=width if known and width else DEFAULT_SIZE[0],
            height=height if known and height else DEFAULT_SIZE[1],
            uri=uri,
            status=_text(row.get("status")) if row else None,
            name=_text(row.get("name")) if row else None,
            size_known=known,
        )

    def rows(self, asset: str) -> list[dict[str, Any]]:
        frame = self.frame
        live = ~frame["deleted"].to_numpy(dtype=bool, na_value=False)
        positions = np.flatnonzero((frame["asset"] == asset).to_numpy(dtype=bool, na_value=False) & live)
        records = cast(list[dict[str, Any]], frame.iloc[positions].to_dict("records"))
        for pos, rec in zip(positions.tolist(), records, strict=True):
            self._pos[str(rec["id"])] = pos
            self._what[str(rec["id"])] = (asset, str(rec["kind"]))
        return records

    def _asset_row(self, asset: str) -> dict[str, Any] | None:
        table = self.lookup
        if table is None or "asset" not in table.columns:
            return None
        hits = np.flatnonzero((table["asset"] == asset).to_numpy(dtype=bool, na_value=False))
        return cast(dict[str, Any], table.iloc[int(hits[0])].to_dict()) if len(hits) else None

    def _dataset_of(self, asset: str) -> str | None:
        rows = self.frame.loc[(self.frame["asset"] == asset).to_numpy(dtype=bool, na_value=False), "dataset"]
        values = rows.dropna().unique().tolist()
        return str(values[0]) if values else None

    def asset_of(self, id: str) -> str | None:
        frame = self.frame
        hits = np.flatnonzero((frame["id"] == id).to_numpy(dtype=bool, na_value=False))
        live = [int(h) for h in hits if not bool(frame["deleted"].iat[int(h)])]
        return str(frame["asset"].iat[live[0]]) if live else None

    # -- finding a row by id -----------------------------------------------------------------------------------
    def locate(self, id: str) -> int:
        """The position of row ``id`` in the frame (following an id a push replaced in place, R-14)."""
        id = self._alias.get(id, id)
        ids = self.frame["id"]
        pos = self._pos.get(id)
        if pos is not None and pos < len(ids) and ids.iat[pos] == id:
            return pos
        hits = np.flatnonzero((ids == id).to_numpy(dtype=bool, na_value=False))
        if len(hits) == 1:
            self._pos[id] = int(hits[0])
            return int(hits[0])
        if len(hits) > 1:
            raise LookupError(f"row id {id!r} is in the frame {len(hits)} times; ids must be unique (R-1)")
        return self._follow(id, pos)

    def _follow(self, id: str, pos: int | None) -> int:
        """A row gone by id whose position now holds a row of the same asset and kind that no id the editor knows
        names: a push gave the row its backend id in place (R-14), and the edit follows it."""
        frame = self.frame
        if pos is not None and pos < len(frame):
            now = str(frame["id"].iat[pos])
            same = (str(frame["asset"].iat[pos]), str(frame["kind"].iat[pos])) == self._what.get(id)
            if same and now not in self._pos and now not in self._alias.values():
                self._alias[id] = now
                self._pos[now] = pos
                self._what[now] = self._what[id]
                return pos
        raise LookupError(f"row {id!r} is no longer in the frame the editor was opened on; reopen the editor")

    # -- writing -----------------------------------------------------------------------------------------------
    def add(self, asset: str, fields: Mapping[str, Any]) -> str:
        frame = self.frame
        record = {"asset": asset, **fields}
        dataset = self._dataset_of(asset) or self.info(asset).dataset
        if dataset is not None:
            record["dataset"] = dataset
        rows = frame.annot.new_rows([record])
        new_id = str(frame.annot.add_rows(rows)[0])
        self._pos[new_id] = len(frame) - 1
        self._what[new_id] = (asset, str(fields.get("kind")))
        self._journal(new_id)
        return new_id

    def update(self, id: str, fields: Mapping[str, Any]) -> None:
        pos = self.locate(id)
        frame = self.frame
        for col, value in fields.items():
            frame.iat[pos, _column(frame, col)] = value
        self._journal(id)

    def delete(self, id: str) -> None:
        self.frame.iat[self.locate(id), _column(self.frame, "deleted")] = True
        self._journal(id)

    def restore(self, id: str) -> None:
        self.frame.iat[self.locate(id), _column(self.frame, "deleted")] = False
        self._journal(id)

    def _journal(self, id: str) -> None:
        """Every edit is on disk as it lands (issue 16): `annotebook.recover` gives it back after a kernel dies."""
        from ..sync.journal import journal_edit

        journal_edit(self.frame, self.locate(id))

    def set_status(self, asset: str, status: str | None) -> None:
        if self.assets is None:
            raise ValueError("the asset status goes into an assets frame: open the editor with assets=...")
        hits = np.flatnonzero((self.assets["asset"] == asset).to_numpy(dtype=bool, na_value=False))
        if not len(hits):
            raise LookupError(f"asset {asset!r} is not in the assets frame")
        j = _column(self.assets, "status")
        for pos in hits.tolist():
            self.assets.iat[pos, j] = status


class MemorySink:
    """A `Sink` on plain dicts: rows by id in insertion order; for tests and for trying the editor's logic."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, sizes: Mapping[str, tuple[float, float]] = {}):
        self.table: dict[str, dict[str, Any]] = {}
        for r in rows or []:
            self.table[str(r["id"])] = {"deleted": False, **r}
        self.sizes = dict(sizes)
        self.status: dict[str, str | None] = {}
        self._next = 0

    def info(self, asset: str) -> AssetInfo:
        w, h = self.sizes.get(asset, DEFAULT_SIZE)
        return AssetInfo(asset=asset, dataset="memory", width=w, height=h, status=self.status.get(asset))

    def rows(self, asset: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.table.values() if r["asset"] == asset and not r["deleted"]]

    def asset_of(self, id: str) -> str | None:
        row = self.table.get(id)
        return None if row is None or row["deleted"] else str(row["asset"])

    def add(self, asset: str, fields: Mapping[str, Any]) -> str:
        self._next += 1
        new_id = f"new-{self._next}"
        self.table[new_id] = {**fields, "id": new_id, "asset": asset, "deleted": False}
        return new_id

    def update(self, id: str, fields: Mapping[str, Any]) -> None:
        self.table[id].update(fields)

    def delete(self, id: str) -> None:
        self.table[id]["deleted"] = True

    def restore(self, id: str) -> None:
        self.table[id]["deleted"] = False

    def set_status(self, asset: str, status: str | None) -> None:
        self.status[asset] = status
