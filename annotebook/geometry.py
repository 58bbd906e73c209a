"""Geometry of annotation rows: pixels and normalised coordinates, areas, extents, IoU and box formats.

Coordinates follow `docs/data-model.md`: normalised to [0, 1] of the asset's width and height, measured on
pixel edges, so converting is a multiply or divide by width / height and nothing else. Rotation is clockwise
degrees about the box centre in *pixel* space: on a non-square image, rotating in normalised space would shear
the box.

Examples
--------
>>> from annotebook import geometry, schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "box",
...                                    "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 0.5, "rotation": 0.0}])
>>> assets = schema.assets_frame([{"dataset": "d", "asset": "a", "width": 640, "height": 480}])
>>> geometry.to_pixels(anns, assets)[["x0", "y0", "x1", "y1"]].iloc[0].tolist()
[0.0, 0.0, 640.0, 240.0]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.errors import ValidationError
from annotebook.schema import POINT_KINDS, STR, part_extent

__all__ = [
    "BOX_FORMATS",
    "BoxFormat",
    "area",
    "box_area",
    "box_convert",
    "extent",
    "iou",
    "polygon_area",
    "rotated_corners",
    "to_normalised",
    "to_pixels",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Points = tuple[tuple[float, ...], ...]
BoxFormat = Literal["xyxy", "xywh", "cxcywh"]

BOX_FORMATS: tuple[BoxFormat, ...] = ("xyxy", "xywh", "cxcywh")
_CORNERS = ("x0", "y0", "x1", "y1")
_BOXLIKE = ("box", "grounding")


# ------------------------------------------------------------------------------------------------------------
# Pixels <-> normalised


def to_pixels(anns: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``anns`` with x0, y0, x1, y1 and points in pixels of their asset; order and index unchanged.

    >>> to_pixels(anns, assets)  # doctest: +SKIP
    """
    width, height = _asset_sizes(anns, assets, _has_geometry(anns))
    return _scaled(anns, width, height, np.multiply)


def to_normalised(anns_px: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`to_pixels`: a copy of ``anns_px`` with coordinates divided by width / height.

    >>> to_normalised(to_pixels(anns, assets), assets)  # doctest: +SKIP
    """
    width, height = _asset_sizes(anns_px, assets, _has_geometry(anns_px))
    return _scaled(anns_px, width, height, np.divide)


def _has_geometry(anns: pd.DataFrame) -> BoolArray:
    """Rows holding any coordinate: these need their asset's size to be converted."""
    coords = anns[list(_CORNERS)].to_numpy(dtype=np.float64, na_value=np.nan)
    has_points = anns["points"].notna().to_numpy(dtype=bool)
    return np.asarray(~np.isnan(coords).all(axis=1) | has_points, dtype=bool)


def _keys(dataset: pd.Series, asset: pd.Series) -> pd.Series:
    """One string key per (dataset, asset); NaN where either is missing."""
    return dataset.astype(STR) + "\x1f" + asset.astype(STR)


def _asset_sizes(anns: pd.DataFrame, assets: pd.DataFrame, needed: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Width and height (NaN when unknown) per row of ``anns``; raise when a ``needed`` row has none."""
    width = assets["width"].to_numpy(dtype=np.float64, na_value=np.nan)
    height = assets["height"].to_numpy(dtype=np.float64, na_value=np.nan)
    table = pd.DataFrame({"key": _keys(assets["dataset"], assets["asset"]).to_numpy(), "w": width, "h": height})
    table = table[(table["w"] > 0) & (table["h"] > 0) & table["key"].notna()].drop_duplicates()
    table = table[~table["key"].duplicated(keep=False)]  # one asset with two sizes: neither is trusted
    keys = _keys(anns["dataset"], anns["asset"])
    pos = pd.Index(table["key"]).get_indexer(keys)
    missing = needed & (pos < 0)
    if missing.any():
        raise _missing_sizes(anns, missing, assets)
    found = pos >= 0
    out_w = np.full(len(anns), np.nan)
    out_h = np.full(len(anns), np.nan)
    out_w[found] = table["w"].to_numpy()[pos[found]]
    out_h[found] = table["h"].to_numpy()[pos[found]]
    return out_w, out_h


def _missing_sizes(anns: pd.DataFrame, missing: BoolArray, assets: pd.DataFrame) -> ValidationError:
    """The error naming every asset whose rows need a pixel size the assets table does not give."""
    rows = anns[missing]
    known = set(_keys(assets["dataset"], assets["asset"]).dropna())
    keys = _keys(rows["dataset"], rows["asset"])
    why = np.where(
        keys.isin(known),
        "has no single positive width/height in the assets table",
        "is not in the assets table",
    )
    names = [f"{d}/{a}" for d, a in zip(rows["dataset"], rows["asset"], strict=True)]
    problems = pd.DataFrame(
        {
            "id": rows["id"].to_numpy(),
            "column": "asset",
            "problem": [f"asset {n} {w}" for n, w in zip(names, why, strict=True)],
        },
        dtype=STR,
    )
    shown = list(dict.fromkeys(names))
    more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
    return ValidationError(f"no pixel size for {len(shown)} asset(s): {', '.join(shown[:10])}{more}", problems)


def _scaled(anns: pd.DataFrame, width: FloatArray, height: FloatArray, op: Callable[[Any, Any], Any]) -> pd.DataFrame:
    """A copy of ``anns`` with each x mapped through ``op(x, width)`` and each y through ``op(y, height)``."""
    out = anns.copy()
    for col, size in zip(_CORNERS, (width, height, width, height), strict=True):
        out[col] = op(anns[col].to_numpy(dtype=np.float64, na_value=np.nan), size)
    out["points"] = pd.Series(_scaled_points(anns["points"].to_numpy(), width, height, op), index=anns.index)
    return out


def _scaled_points(
    points: npt.NDArray[Any], width: FloatArray, height: FloatArray, op: Callable[[Any, Any], Any]
) -> npt.NDArray[Any]:
    """Each row's vertex parts with x through ``op(x, width[row])`` and y through ``op(y, height[row])``."""
    out = points.copy()
    rows = [i for i, v in enumerate(points) if isinstance(v, (tuple, list, np.ndarray))]  # not None / NaN
    if not rows:
        return out
    parts = [p for i in rows for p in points[i]]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.intp, count=len(parts))
    flat = np.fromiter(itertools.chain.from_iterable(parts), dtype=np.float64, count=int(lengths.sum()))
    part_row = np.repeat(np.asarray(rows, dtype=np.intp), [len(points[i]) for i in rows])
    coord_row = np.repeat(part_row, lengths)
    offset = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    size = np.where(offset % 2 == 0, width[coord_row], height[coord_row])
    scaled: list[float] = op(flat, size).tolist()
    starts = (np.cumsum(lengths) - lengths).tolist()
    scaled_parts = iter([tuple(scaled[s : s + n]) for s, n in zip(starts, lengths.tolist(), strict=True)])
    for i in rows:
        out[i] = tuple(itertools.islice(scaled_parts, len(points[i])))
    return out


# ------------------------------------------------------------------------------------------------------------
# Areas


def box_area(anns: pd.DataFrame) -> FloatArray:
    """(x1 - x0) * (y1 - y0) per row, in normalised units; a rotation does not change a box's area.

    >>> box_area(anns)  # doctest: +SKIP
    array([0.5])
    """
    x0, y0, x1, y1 = _corners(anns)
    return np.asarray((x1 - x0) * (y1 - y0), dtype=np.float64)


def polygon_area(points: Points | None) -> float:
    """Shoelace area of one row's rings: the first ring's area minus the areas of the rings after it (holes).

    NaN when there are no rings, an odd number of coordinates or a NaN vertex.

    >>> polygon_area(((0, 0, 1, 0, 1, 1, 0, 1), (0.25, 0.25, 0.75, 0.25, 0.75, 0.75)))
    0.875
    """
    if not points:
        return float("nan")
    total = 0.0
    for k, ring in enumerate(points):
        xy = np.asarray(ring, dtype=np.float64)
        if xy.size % 2:
            return float("nan")
        xy = xy.reshape(-1, 2) - xy[:2]  # shift to the first vertex: less cancellation in pixel units
        x, y = xy[:, 0], xy[:, 1]
        ring_area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        total += ring_area if k == 0 else -ring_area
    return total


def area(anns: pd.DataFrame, assets: pd.DataFrame | None = None) -> FloatArray:
    """Area per row: boxes and groundings their box, polygons their rings, lines and keypoints 0; else NaN.

    Normalised units, or pixels² when ``assets`` gives the sizes.

    >>> area(anns, assets)  # doctest: +SKIP
    array([153600.])
    """
    kind = anns["kind"]
    out = np.full(len(anns), np.nan)
    boxlike = kind.isin(_BOXLIKE).to_numpy(dtype=bool)
    polygon = (kind == "polygon").to_numpy(dtype=bool, na_value=False)
    out[boxlike] = box_area(anns)[boxlike]
    out[polygon] = [polygon_area(p) for p in anns["points"].to_numpy()[polygon]]
    out[kind.isin(("polyline", "keypoints")).to_numpy(dtype=bool)] = 0.0
    if assets is not None:
        width, height = _asset_sizes(anns, assets, (boxlike | polygon) & _has_geometry(anns))
        scale = boxlike | polygon
        out[scale] *= width[scale] * height[scale]
    return out


# ------------------------------------------------------------------------------------------------------------
# Extents and rotated boxes


def extent(anns: pd.DataFrame, assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """The axis-aligned extent (x0, y0, x1, y1) of each row, normalised, on ``anns``' index.

    Boxes give their corners, rotated boxes the extent of the rotated rectangle (rotated in pixel space when
    ``assets`` gives sizes, else in normalised space), polygons, polylines and keypoints that of their points.
    A missing (NaN) rotation counts as 0; non-spatial rows get NaN.

    >>> extent(anns, assets)  # doctest: +SKIP
    """
    kind = anns["kind"]
    coords = np.column_stack(_corners(anns))
    out = np.full((len(anns), 4), np.nan)
    boxlike = kind.isin(_BOXLIKE).to_numpy(dtype=bool)
    out[boxlike] = coords[boxlike]
    rotation = anns["rotation"].to_numpy(dtype=np.float64, na_value=np.nan)
    rotated = (kind == "box").to_numpy(dtype=bool, na_value=False) & np.isfinite(rotation) & (rotation % 360 != 0)
    if rotated.any():
        if assets is None:
            width = height = np.ones(len(anns))
        else:
            width, height = _asset_sizes(anns, assets, rotated & np.isfinite(coords).all(axis=1))
        r = rotated
        bx0, by0, bx1, by1 = coords[r].T
        corners = rotated_corners(bx0, by0, bx1, by1, rotation[r], width[r], height[r])
        out[r] = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    pointy = kind.isin(POINT_KINDS).to_numpy(dtype=bool)
    if pointy.any():
        ext = [part_extent(p) for p in anns["points"].to_numpy()[pointy]]
        out[pointy] = np.asarray(ext, dtype=np.float64).reshape(-1, 4)
    return pd.DataFrame(out, index=anns.index, columns=list(_CORNERS))


def rotated_corners(
    x0: npt.ArrayLike,
    y0: npt.ArrayLike,
    x1: npt.ArrayLike,
    y1: npt.ArrayLike,
    rotation: npt.ArrayLike,
    width: npt.ArrayLike,
    height: npt.ArrayLike,
) -> FloatArray:
    """The 4 corners, normalised, of boxes rotated clockwise by ``rotation`` degrees about their centre.

    The rotation is applied in pixel space (``width`` x ``height``). Inputs broadcast; the result has shape
    ``(..., 4, 2)``: top-left, top-right, bottom-right, bottom-left of the unrotated box, as (x, y).

    >>> rotated_corners(0.25, 0.25, 0.75, 0.75, 90, 100, 100).round(6).tolist()
    [[0.75, 0.25], [0.75, 0.75], [0.25, 0.75], [0.25, 0.25]]
    """
    bx0, by0, bx1, by1, rot, w, h = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (x0, y0, x1, y1, rotation, width, height))
    )
    cx, cy = (bx0 + bx1) / 2 * w, (by0 + by1) / 2 * h
    dx = np.stack([bx0, bx1, bx1, bx0], axis=-1) * w[..., None] - cx[..., None]
    dy = np.stack([by0, by0, by1, by1], axis=-1) * h[..., None] - cy[..., None]
    theta = np.deg2rad(rot)[..., None]
    cos, sin = np.cos(theta), np.sin(theta)
    # y points down, so this (the usual counter-clockwise formula) turns clockwise on screen
    px = cx[..., None] + dx * cos - dy * sin
    py = cy[..., None] + dx * sin + dy * cos
    return np.stack([px / w[..., None], py / h[..., None]], axis=-1)


# ------------------------------------------------------------------------------------------------------------
# IoU and box formats


def iou(a: pd.DataFrame | npt.ArrayLike, b: pd.DataFrame | npt.ArrayLike) -> FloatArray:
    """Pairwise IoU of axis-aligned boxes (x0..y1 of two frames, or (n, 4) arrays): shape (len(a), len(b)).

    Rotation is ignored. Two boxes of zero area have IoU 0; a NaN coordinate gives NaN.

    >>> iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2]])).round(4).tolist()
    [[0.1429, 1.0]]
    """
    ba, bb = _boxes(a), _boxes(b)
    ax0, ay0, ax1, ay1 = (ba[:, i, None] for i in range(4))
    bx0, by0, bx1, by1 = (bb[None, :, i] for i in range(4))
    inter = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None) * np.clip(
        np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None
    )
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(inter / union, dtype=np.float64)
    out[union == 0] = 0.0
    return np.clip(out, 0.0, 1.0)


def _boxes(v: pd.DataFrame | npt.ArrayLike) -> FloatArray:
    if isinstance(v, pd.DataFrame):
        return v[list(_CORNERS)].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(v, dtype=np.float64).reshape(-1, 4)


def box_convert(values: npt.ArrayLike, from_: BoxFormat, to: BoxFormat) -> FloatArray:
    """Boxes (last axis of 4) converted between "xyxy", "xywh" (corner, size) and "cxcywh" (centre, size).

    >>> box_convert([0.1, 0.2, 0.5, 0.6], "xyxy", "cxcywh").round(6).tolist()
    [0.3, 0.4, 0.4, 0.4]
    """
    for fmt in (from_, to):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; expected one of {', '.join(BOX_FORMATS)}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape[-1:] != (4,):
        raise ValueError(f"boxes need a last axis of 4 values, got shape {arr.shape}")
    if from_ == to:
        return arr.copy()
    a, b, c, d = np.moveaxis(arr, -1, 0)
    if from_ == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif from_ == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if to == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif to == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return np.stack([a, b, c, d], axis=-1)


def _corners(anns: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    x0, y0, x1, y1 = (anns[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in _CORNERS)
    return x0, y0, x1, y1
