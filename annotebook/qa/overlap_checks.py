"""Checks between regions of one asset: duplicates, two labels on one object, boxes that miss their outline.

Pairs come from `annotebook.qa.pairs.overlapping_pairs` (a sort-and-sweep per asset), so the cost follows the
number of overlapping regions, never the number of pairs in the dataset. Regions are box and polygon rows,
compared by their axis-aligned extents (a rotated box by its rotated corners' extent).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._view import View
from .findings import Found

__all__ = ["ambiguous_overlap", "duplicate", "outline_mismatch"]

#: IoU at or above which two rows count as exact copies (float noise aside)
EXACT = 1.0 - 1e-9


def _pairs(view: View, min_iou: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    i, j, iou = view.region_pairs
    keep = iou > min_iou
    return i[keep], j[keep], iou[keep]


def duplicate(view: View, *, iou: float = 0.8) -> Found:
    """Pairs of regions with the same label and kind whose IoU is at least ``iou`` (default 0.8: a near copy
    whose corners moved by a few percent of its size stays above 0.9; two neighbouring objects rarely reach it).

    The later row of each pair (in frame order) is reported, naming the earlier one in ``other``; severity
    warning; score: the IoU. Detail says "exact duplicate" when the corners are equal.
    """
    i, j, v = _pairs(view, iou - 1e-12)
    same = (view.label_codes[i] == view.label_codes[j]) & (view.label_codes[i] >= 0) & (view.kind[i] == view.kind[j])
    i, j, v = i[same], j[same], v[same]
    exact = v >= EXACT
    words = np.where(exact, "exact duplicate of ", "near duplicate (IoU {}) of ").astype(object)
    detail = [d.format(f"{x:.2f}") + str(o) for d, x, o in zip(words, v, view.ids[i], strict=True)]
    return Found("duplicate", view.ids[j], view.asset[j], "warning", detail, v, view.ids[i])


def ambiguous_overlap(view: View, *, iou: float = 0.7) -> Found:
    """Pairs of regions with different labels whose IoU is at least ``iou`` (default 0.7): one object with two
    labels, or a wrong label. Both rows are reported, each naming the other; severity warning; score: the IoU.
    """
    i, j, v = _pairs(view, iou - 1e-12)
    differ = (view.label_codes[i] != view.label_codes[j]) & (view.label_codes[i] >= 0) & (view.label_codes[j] >= 0)
    i, j, v = i[differ], j[differ], v[differ]
    a, b = np.concatenate([i, j]), np.concatenate([j, i])
    vv = np.concatenate([v, v])
    detail = [
        f"overlaps {o} labelled {lo!r} (IoU {x:.2f})" for o, lo, x in zip(view.ids[b], view.label[b], vv, strict=True)
    ]
    return Found("ambiguous_overlap", view.ids[a], view.asset[a], "warning", detail, vv, view.ids[b])


def outline_mismatch(view: View, *, match: float = 0.5, agree: float = 0.9) -> Found:
    """Boxes that disagree with the outline (polygon) of the same object: a box and a polygon of the same label
    that are each other's best match (IoU at least ``match``, default 0.5) but whose IoU stays below ``agree``
    (default 0.9; a box drawn around an outline is its extent, IoU 1 up to rounding). Severity warning; the box
    is reported, naming the polygon; score: 1 - IoU.
    """
    i, j, v = _pairs(view, match - 1e-12)
    box_i = view.kind[i] == "box"
    b, p = np.where(box_i, i, j), np.where(box_i, j, i)
    ok = (view.kind[b] == "box") & (view.kind[p] == "polygon") & (view.label_codes[b] == view.label_codes[p])
    b, p, v = b[ok], p[ok], v[ok]
    mutual = _best(b, v) & _best(p, v)
    hit = mutual & (v < agree)
    detail = [f"box does not match outline {o} (IoU {x:.2f})" for o, x in zip(view.ids[p][hit], v[hit], strict=True)]
    return Found(
        "outline_mismatch", view.ids[b][hit], view.asset[b][hit], "warning", detail, 1 - v[hit], view.ids[p][hit]
    )


def _best(key: npt.NDArray[np.intp], value: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Per pair: whether it has the highest value among the pairs of its key (first one on ties)."""
    out = np.zeros(len(key), dtype=bool)
    if not len(key):
        return out
    order = np.lexsort((-value, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]]
    out[order[first]] = True
    return out
