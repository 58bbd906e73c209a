"""Overlapping pairs of regions within each asset, by one sort-and-sweep over the whole table.

Boxes are sorted by (asset, x0). A box's candidates are the boxes after it in that order, on the same asset,
whose x0 is below its x1: one `searchsorted` finds where each box's run ends, so the candidates of every box are
found at once and no pair of boxes on two different assets (nor two boxes apart along x) is ever formed. The work
is the number of x-overlapping pairs per asset, never all pairs of the dataset.

>>> boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6]], dtype=float)
>>> i, j, iou = overlapping_pairs(np.array([0, 0, 0]), boxes)
>>> list(zip(i.tolist(), j.tolist(), iou.round(4).tolist()))
[(0, 1, 0.1429)]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

__all__ = ["box_iou", "overlapping_pairs"]


def overlapping_pairs(
    group: npt.ArrayLike, boxes: npt.ArrayLike, min_iou: float = 0.0
) -> tuple[IntArray, IntArray, FloatArray]:
    """Pairs (i, j), i < j in input order, of boxes in the same ``group`` whose IoU exceeds ``min_iou``.

    ``group`` is an integer per box (an asset code); ``boxes`` is (n, 4) x0, y0, x1, y1 (rows with a NaN are
    left out). Returns the two position arrays and the pairs' IoU.
    """
    g = np.asarray(group, dtype=np.int64)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = np.flatnonzero(np.isfinite(b).all(axis=1))
    if len(ok) < 2:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0)
    g, b = g[ok], b[ok]
    # one sweep key: groups far apart, x0 within its group's band (extents may stray a little outside [0, 1])
    span = max(float(np.nanmax(b[:, 2]) - np.nanmin(b[:, 0])), 1.0) + 1.0
    low = float(np.nanmin(b[:, 0]))
    order = np.lexsort((b[:, 0], g))
    key = g[order] * (2.0 * span) + (b[order, 0] - low)
    stop = np.searchsorted(key, g[order] * (2.0 * span) + (b[order, 2] - low), side="left")
    start = np.arange(1, len(order) + 1)
    count = np.maximum(stop - start, 0)
    first = np.repeat(np.arange(len(order)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    second = np.repeat(start, count) + offset
    i, j = order[first], order[second]
    iou = box_iou(b[i], b[j])
    keep = iou > min_iou
    i, j, iou = i[keep], j[keep], iou[keep]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return ok[lo], ok[hi], iou


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise IoU of two (n, 4) arrays of x0, y0, x1, y1 (0 where the union is empty)."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return np.asarray(out, dtype=np.float64)
