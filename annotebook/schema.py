"""The canonical tables of `docs/data-model.md`: columns, dtypes, coercion and the one normal form.

Examples
--------
>>> from annotebook import schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "box",
...                                    "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}])
>>> anns.loc[0, "id"].startswith("new-")
True
"""

from __future__ import annotations

import itertools
import math
import uuid
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ANNOTATION_COLUMNS",
    "ASSET_COLUMNS",
    "CONTENT_COLUMNS",
    "KINDS",
    "LABEL_COLUMNS",
    "SPATIAL_KINDS",
    "annotations_frame",
    "assets_frame",
    "changed_fields",
    "coerce",
    "labels_frame",
    "new_id",
    "normal_attributes",
    "normal_points",
    "normal_value",
    "part_extent",
    "refresh_extents",
]

STR = pd.StringDtype(na_value=np.nan)

#: what the table builders take: records (dicts), a dict of columns, or a DataFrame
Records = Iterable[Mapping[str, Any]] | Mapping[str, Any] | pd.DataFrame | None

#: column -> dtype of the annotations table, in display order
ANNOTATION_COLUMNS: dict[str, Any] = {
    "dataset": STR,
    "asset": STR,
    "id": STR,
    "rev": STR,
    "label": STR,
    "kind": STR,
    "x0": "float64",
    "y0": "float64",
    "x1": "float64",
    "y1": "float64",
    "rotation": "float64",
    "points": object,
    "visibility": object,
    "value": "boolean",
    "text": STR,
    "answer": STR,
    "parent": STR,
    "span_start": "Int64",
    "span_end": "Int64",
    "attributes": object,
    "status": STR,
    "author": STR,
    "score": "float64",
    "frame": "Int64",
    "split": STR,
    "annotation": STR,
    "deleted": bool,
    "load": STR,
}

ASSET_COLUMNS: dict[str, Any] = {
    "dataset": STR,
    "asset": STR,
    "name": STR,
    "width": "Int64",
    "height": "Int64",
    "uri": STR,
    "status": STR,
    "frames": "Int64",
    "load": STR,
}

LABEL_COLUMNS: dict[str, Any] = {
    "dataset": STR,
    "name": STR,
    "index": "Int64",
    "color": STR,
    "keypoints": object,
    "skeleton": object,
}

KINDS = ("box", "polygon", "polyline", "keypoints", "tag", "caption", "grounding", "qa")
SPATIAL_KINDS = ("box", "polygon", "polyline", "keypoints", "grounding")
POINT_KINDS = ("polygon", "polyline", "keypoints")

#: the columns whose values a push sends: everything but identity, revision, trace and the deletion flag
CONTENT_COLUMNS = tuple(c for c in ANNOTATION_COLUMNS if c not in ("dataset", "id", "rev", "deleted", "load"))
OBJECT_COLUMNS = ("points", "visibility", "attributes")


def new_id() -> str:
    """A fresh client-made row id (never reused)."""
    return f"new-{uuid.uuid4().hex[:16]}"


def _empty_column(dtype: Any, n: int) -> Any:
    if dtype is object:
        return pd.Series([None] * n, dtype=object)
    if dtype is bool:
        return pd.Series(np.zeros(n, dtype=bool))
    return pd.Series([None] * n, dtype=dtype) if n else pd.Series([], dtype=dtype)


def _frame(records: Records, columns: dict[str, Any]) -> pd.DataFrame:
    if isinstance(records, pd.DataFrame):
        df = records.copy()
    elif isinstance(records, Mapping):  # columns: {"label": [...], ...}
        df = pd.DataFrame(dict(records))
    else:
        df = pd.DataFrame(list(records or []))
    n = len(df)
    for col, dtype in columns.items():
        if col not in df.columns:
            df[col] = _empty_column(dtype, n).to_numpy() if n else _empty_column(dtype, 0)
    extra = [c for c in df.columns if c not in columns]
    return coerce(df[[*columns, *extra]], columns)


def annotations_frame(records: Records = None) -> pd.DataFrame:
    """Build an annotations table from records (dicts): missing columns are filled, dtypes coerced, ids minted."""
    df = _frame(records, ANNOTATION_COLUMNS)
    missing = df["id"].isna()
    if missing.any():
        df.loc[missing, "id"] = [new_id() for _ in range(int(missing.sum()))]
    return refresh_extents(df)


def assets_frame(records: Records = None) -> pd.DataFrame:
    """Build an assets table from records (dicts)."""
    return _frame(records, ASSET_COLUMNS)


def labels_frame(records: Records = None) -> pd.DataFrame:
    """Build a labels table from records (dicts)."""
    return _frame(records, LABEL_COLUMNS)


def coerce(df: pd.DataFrame, columns: Mapping[str, Any] = ANNOTATION_COLUMNS) -> pd.DataFrame:
    """Return ``df`` with the contract's columns cast to their dtypes and object columns in normal form."""
    out = df.copy()
    for col, dtype in columns.items():
        if col not in out.columns:
            continue
        if dtype is object:
            norm = {
                "points": normal_points,
                "visibility": _normal_ints,
                "attributes": _attributes_or_none,
            }.get(col)
            if norm is not None:
                out[col] = pd.Series(_normalised(out[col].to_numpy(dtype=object), norm), index=out.index, dtype=object)
            elif col in ("keypoints",):
                out[col] = pd.Series([_names(v) for v in out[col]], index=out.index, dtype=object)
            elif col == "skeleton":
                out[col] = pd.Series([_pairs(v) for v in out[col]], index=out.index, dtype=object)
        elif dtype is bool:  # missing is False; not fillna, which downcasts object columns with a warning in 2.x
            out[col] = pd.Series(out[col].to_numpy(dtype=object, na_value=False).astype(bool), index=out.index)
        elif str(out[col].dtype) != str(dtype) or dtype is STR:
            out[col] = out[col].astype(dtype)
    if "rotation" in columns and "kind" in out.columns:  # a box without rotation has rotation 0
        unrotated = (out["kind"] == "box").to_numpy(dtype=bool) & out["rotation"].isna().to_numpy()
        if unrotated.any():
            out.loc[unrotated, "rotation"] = 0.0
    return out


# ---------------------------------------------------------------------------------------------------------------
# The one normal form: every comparison of values goes through these.


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and math.isnan(v)


def normal_points(v: Any) -> tuple[tuple[float, ...], ...] | None:
    """Vertex parts as a tuple of flat float tuples; accepts lists, tuples, arrays, (n, 2) pairs; None if missing."""
    if type(v) is tuple and (not v or type(v[0]) is tuple):
        return v  # already normal: the common case, kept cheap for 200,000-row frames
    if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and _is_missing(v)):
        return None
    items = list(v)
    if items and all(_is_number(x) for x in items):
        items = [items]  # one flat ring given without its parts tuple
    elif items and all(_is_pair(x) for x in items):
        items = [items]  # one ring given as (x, y) pairs
    parts = []
    for part in items:
        arr = np.asarray([np.nan if x is None else x for x in np.ravel(np.asarray(part, dtype=object))], dtype=float)
        parts.append(tuple(float(x) for x in arr))
    return tuple(parts)


def _is_number(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float, np.number)) and not isinstance(x, bool))


def _is_pair(x: Any) -> bool:
    return isinstance(x, (list, tuple, np.ndarray)) and len(x) == 2 and all(_is_number(y) for y in x)


def _normal_ints(v: Any) -> tuple[int, ...] | None:
    if type(v) is tuple and all(type(x) is int for x in v):
        return v
    if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and _is_missing(v)):
        return None
    out = []
    for x in v:
        if _is_missing(x) or float(x) != int(float(x)):
            raise ValueError(f"visibility values must be whole numbers, got {x!r}")
        out.append(int(float(x)))
    return tuple(out)


def _names(v: Any) -> tuple[str, ...] | None:
    if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and _is_missing(v)):
        return None
    return tuple(str(x) for x in v)


def _pairs(v: Any) -> tuple[tuple[int, int], ...] | None:
    if v is None or (not isinstance(v, (list, tuple, np.ndarray)) and _is_missing(v)):
        return None
    return tuple((int(a), int(b)) for a, b in v)


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_scalar(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_scalar(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _scalar(x) for k, x in v.items()}
    return v


def normal_attributes(v: Any) -> dict[str, Any]:
    """Attributes as a plain dict with None values dropped; None and {} are the same."""
    if v is None or not isinstance(v, Mapping):
        if v is None or _is_missing(v):
            return {}
        raise TypeError(f"attributes must be a dict, got {type(v).__name__}")
    return {str(k): _scalar(x) for k, x in v.items() if not _is_missing(x) if x is not None}


def _attributes_or_none(v: Any) -> dict[str, Any] | None:
    if v is not None and not isinstance(v, Mapping) and not _is_missing(v):
        return v
    d = normal_attributes(v)
    return d or None


def normal_value(column: str, v: Any) -> Any:
    """The normal form of one cell of ``column``: what diff compares."""
    if column == "points":
        p = normal_points(v)
        if p is not None and any(x != x for part in p for x in part):  # NaN (unlabelled keypoint) == NaN
            p = tuple(tuple(None if x != x else x for x in part) for part in p)  # type: ignore[misc]
        return p
    if column == "visibility":
        return _normal_ints(v)
    if column == "attributes":
        return normal_attributes(v) if isinstance(v, Mapping) or v is None or _is_missing(v) else v
    if _is_missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def part_extent(points: tuple[tuple[float, ...], ...] | None) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the finite vertices of all parts; NaNs when there are none."""
    if not points:
        return (math.nan,) * 4
    xs = [p[i] for p in points for i in range(0, len(p) - 1, 2) if not math.isnan(p[i])]
    ys = [p[i + 1] for p in points for i in range(0, len(p) - 1, 2) if not math.isnan(p[i + 1])]
    if not xs or not ys:
        return (math.nan,) * 4
    return (min(xs), min(ys), max(xs), max(ys))


def _normalised(values: np.ndarray, norm: Any) -> np.ndarray:
    """``norm`` applied to the present values only: missing ones (None, NaN) normalise to None anyway."""
    out = np.full(len(values), None, dtype=object)
    present = np.flatnonzero(~pd.isna(values))
    if len(present):
        out[present] = _objects([norm(v) for v in values[present]])
    return out


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def extents(points: Iterable[tuple[tuple[float, ...], ...] | None]) -> np.ndarray:
    """(n, 4) `part_extent` of many rows at once, vectorised over all their vertices."""
    rows = [p or () for p in points]
    n = len(rows)
    parts = list(itertools.chain.from_iterable(rows))
    lengths = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
    if (lengths % 2).any():  # an odd part: part_extent's own rule, row by row
        return np.array([part_extent(p) for p in rows], dtype=float).reshape(-1, 4)
    flat = np.fromiter(itertools.chain.from_iterable(parts), dtype=np.float64, count=int(lengths.sum()))
    per_row = np.bincount(np.repeat(np.repeat(np.arange(n), [len(p) for p in rows]), lengths // 2), minlength=n)
    out = np.full((n, 4), np.nan)
    filled = np.flatnonzero(per_row)
    if len(filled):
        first = (np.cumsum(per_row) - per_row)[filled]
        xs, ys = flat[0::2], flat[1::2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for j, (fn, v) in enumerate(((np.fmin, xs), (np.fmin, ys), (np.fmax, xs), (np.fmax, ys))):
                out[filled, j] = fn.reduceat(v, first)
    out[np.isnan(out).any(axis=1)] = np.nan  # no finite x or no finite y: no extent
    return out


def refresh_extents(df: pd.DataFrame) -> pd.DataFrame:
    """Set x0..y1 of polygon, polyline and keypoints rows from their points (in place); returns ``df``."""
    rows = df["kind"].isin(POINT_KINDS).to_numpy()
    if rows.any():
        ext = extents(df["points"].to_numpy()[rows])
        for j, col in enumerate(("x0", "y0", "x1", "y1")):
            values = df[col].to_numpy(dtype=float, copy=True)
            values[rows] = ext[:, j]
            df[col] = values
    return df


def changed_fields(a: Mapping[str, Any], b: Mapping[str, Any], columns: Iterable[str] = CONTENT_COLUMNS) -> list[str]:
    """The content columns where rows ``a`` and ``b`` differ in normal form."""
    return [c for c in columns if normal_value(c, a.get(c)) != normal_value(c, b.get(c))]


def content_key(row: Mapping[str, Any], columns: Iterable[str] = CONTENT_COLUMNS) -> str:
    """The row's ``columns`` in normal form as one JSON text: equal exactly when diff would find no change."""
    import json

    def plain(v: Any) -> Any:
        if isinstance(v, np.generic):
            return v.item()
        raise TypeError(f"cannot key a {type(v).__name__}")

    return json.dumps({c: normal_value(c, row.get(c)) for c in columns}, default=plain, sort_keys=True)
