"""Helpers every format shares to build and complete canonical tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ._export import CHUNK_ROWS

__all__ = ["annotations_table", "complete_labels"]


def complete_labels(labels: pd.DataFrame | None, anns: pd.DataFrame) -> pd.DataFrame:
    """The labels table with every label used in ``anns`` present; new labels get the next free ``index``."""
    table = schema.labels_frame(labels)
    used = [str(x) for x in pd.unique(anns["label"].dropna())]
    missing = [name for name in used if name not in set(table["name"])]
    if missing:
        top = table["index"].max()
        start = 0 if pd.isna(top) else int(top) + 1
        dataset = anns["dataset"].dropna().iloc[0] if anns["dataset"].notna().any() else None
        extra = schema.labels_frame(
            [{"dataset": dataset, "name": n, "index": start + i} for i, n in enumerate(missing)]
        )
        table = pd.concat([table, extra], ignore_index=True) if len(table) else extra
    return table


def annotations_table(anns: pd.DataFrame) -> pd.DataFrame:
    """``schema.annotations_frame(anns)``, without its copies when ``anns`` is in that form already (a frame a
    reader or the store made): then its columns are shared, not copied, which for a 200,000-row frame is the
    largest allocation of a write. Under pandas' copy-on-write, what a writer does to the result never reaches
    ``anns``.

    >>> anns = schema.annotations_frame([{"asset": "a", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}])
    >>> np.shares_memory(annotations_table(anns)["x0"].to_numpy(), anns["x0"].to_numpy())
    True
    """
    columns = schema.ANNOTATION_COLUMNS
    if not anns.columns.is_unique or not all(c in anns.columns and anns[c].dtype == t for c, t in columns.items()):
        return schema.annotations_frame(anns)
    ordered = anns[[*columns, *(c for c in anns.columns if c not in columns)]]
    return ordered if _in_normal_form(ordered) else schema.annotations_frame(anns)


def _in_normal_form(anns: pd.DataFrame) -> bool:
    """Whether `schema.annotations_frame` would leave the values of ``anns`` (contract columns, contract dtypes) as
    they are: ids present, boxes' rotation set, object cells in normal form, point rows' extents up to date."""
    box = (anns["kind"] == "box").to_numpy(dtype=bool)
    if anns["id"].isna().any() or anns["rotation"].isna().to_numpy()[box].any():
        return False
    try:
        cells = (
            _normal_cells(anns["points"], lambda v: schema.normal_points(v) is v)
            and _normal_cells(anns["visibility"], lambda v: schema.normal_value("visibility", v) is v)
            and _normal_cells(anns["attributes"], _normal_attributes)
        )
    except (TypeError, ValueError):  # a cell schema.annotations_frame refuses: let it say so
        return False
    return cells and _extents_up_to_date(anns)


def _extents_up_to_date(anns: pd.DataFrame) -> bool:
    """x0..y1 of the point rows are `schema.extents` of their points (what `schema.refresh_extents` would set),
    read `CHUNK_ROWS` rows at a time: every vertex of a large frame at once would be the largest array of a write."""
    rows = np.flatnonzero(anns["kind"].isin(schema.POINT_KINDS).to_numpy())
    points, columns = anns["points"].to_numpy(), [anns[c].to_numpy(dtype=float) for c in ("x0", "y0", "x1", "y1")]
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        new, old = schema.extents(points[part]), np.column_stack([c[part] for c in columns])
        if not (np.array_equal(new, old, equal_nan=True) and np.array_equal(np.signbit(new), np.signbit(old))):
            return False
    return True


def _normal_cells(column: pd.Series, normal: Callable[[Any], bool]) -> bool:
    """An object column in normal form: its missing cells None, the others ``normal`` (as `schema.coerce` has it)."""
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    nones = values[missing].tolist().count(None)  # list.count: an identity test per cell, in C
    return nones == int(missing.sum()) and all(map(normal, values[~missing]))


def _normal_attributes(v: Any) -> bool:
    """A present attributes cell in normal form: a non-empty plain dict, or a value that is not a mapping (kept)."""
    if not isinstance(v, Mapping):
        return True
    return type(v) is dict and bool(v) and _same(schema.normal_attributes(v), v)


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are equal values of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_same(x, b[k]) for k, x in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a is b or a == b)
