"""Checks of each row's own geometry: contract problems, regions outside the image, degenerate regions,
keypoints outside their instance's box, and grounding phrases that disagree with their caption.

Every check takes a `View` and returns a `Found`; thresholds are keyword arguments, documented where defined.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ._points import FlatParts, flat_parts, polygon_areas
from ._view import View
from .findings import Found
from .pairs import overlapping_pairs

__all__ = ["degenerate", "grounding", "invalid", "keypoints_outside", "out_of_bounds"]

_GROUNDING_COLUMNS = ("parent", "span_start", "span_end", "text")
_OUTSIDE = "outside [0, 1]"  # validation's words for a coordinate off the image: `out_of_bounds` reports those


def _problems(view: View) -> pd.DataFrame:
    return view.problems


def invalid(view: View) -> Found:
    """Rows that break the data contract (`annotebook.validation.validate`), severity error.

    Coordinates outside the image are left to `out_of_bounds` and grounding spans to `grounding`, so each
    problem is reported once.
    """
    p = _problems(view)
    theirs = p["problem"].str.contains(_OUTSIDE, regex=False) | (
        (p["kind"] == "grounding") & p["column"].isin(_GROUNDING_COLUMNS)
    )
    p = p[~theirs.fillna(False).to_numpy(dtype=bool)]
    detail = (p["column"] + ": " + p["problem"]).to_numpy(dtype=object)
    return Found("invalid", p["id"], p["asset"], "error", detail, np.ones(len(p)))


def grounding(view: View) -> Found:
    """Grounding rows whose caption row is missing, is not a caption, or does not spell the phrase at the
    span (validation's grounding rules), and grounding rows whose caption lies on another asset; severity error.
    """
    p = _problems(view)
    mine = ((p["kind"] == "grounding") & p["column"].isin(_GROUNDING_COLUMNS)).fillna(False).to_numpy(dtype=bool)
    p = p[mine]
    ids, assets, details = list(p["id"]), list(p["asset"]), list(p["column"] + ": " + p["problem"])
    rows = view.of_kind("grounding")
    if rows.any():
        caption_asset = pd.Series(view.asset, index=view.ids).groupby(level=0).first()
        parent = view.column("parent")[rows]
        theirs = caption_asset.reindex(parent.astype(object)).to_numpy(dtype=object)
        elsewhere = pd.notna(theirs) & (theirs != view.asset[rows])
        ids += list(view.ids[rows][elsewhere])
        assets += list(view.asset[rows][elsewhere])
        details += [
            f"its caption {c} is on asset {a}" for c, a in zip(parent[elsewhere], theirs[elsewhere], strict=True)
        ]
    return Found("grounding", ids, assets, "error", details, np.ones(len(ids)))


def out_of_bounds(view: View, *, tolerance_px: float = 0.5) -> Found:
    """Spatial rows whose extent (a rotated box: its rotated corners) leaves the image by more than
    ``tolerance_px`` pixels (1e-6 of the image where the asset's size is unknown); severity error.

    Score: the share of the extent's area outside the image.
    """
    ext = view.extent
    tol = np.where(view.sized, tolerance_px / np.where(view.sized, view.size[:, 0], 1.0), 1e-6)
    toly = np.where(view.sized, tolerance_px / np.where(view.sized, view.size[:, 1], 1.0), 1e-6)
    finite = np.isfinite(ext).all(axis=1)
    with np.errstate(invalid="ignore"):
        out = finite & ((ext[:, 0] < -tol) | (ext[:, 1] < -toly) | (ext[:, 2] > 1 + tol) | (ext[:, 3] > 1 + toly))
    e = ext[out]
    w, h = e[:, 2] - e[:, 0], e[:, 3] - e[:, 1]
    inside = np.clip(np.minimum(e[:, 2], 1) - np.maximum(e[:, 0], 0), 0, None) * np.clip(
        np.minimum(e[:, 3], 1) - np.maximum(e[:, 1], 0), 0, None
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(w * h > 0, 1 - inside / (w * h), 1.0)
    detail = [
        f"extent ({a:.3f}, {b:.3f}, {c:.3f}, {d:.3f}) leaves the image ({s:.0%} of it outside)"
        for a, b, c, d, s in zip(*e.T, share, strict=True)
    ]
    return Found("out_of_bounds", view.ids[out], view.asset[out], "error", detail, share)


def degenerate(view: View, *, min_px: float = 1.0) -> Found:
    """Regions with no area: a box (or grounding box) of zero width or height, a polygon whose outline
    encloses nothing (collinear vertices) - severity error; and regions thinner than ``min_px`` pixels
    (only where the asset's size is known) - severity warning.
    """
    boxy = view.of_kind("box", "grounding")
    polygon = view.of_kind("polygon")
    wh = view.wh
    with np.errstate(invalid="ignore"):
        flat_box = boxy & ((wh[:, 0] <= 0) | (wh[:, 1] <= 0))
        area = np.full(len(view), np.nan)
        area[polygon] = polygon_areas(view.column("points")[polygon])
        flat_polygon = polygon & (area <= 0)
        thin = (boxy | polygon) & view.sized & ~flat_box & ~flat_polygon & (np.fmin(wh[:, 0], wh[:, 1]) < min_px)
    zero = flat_box | flat_polygon
    at = np.flatnonzero(zero | thin)
    severity = np.where(zero[at], "error", "warning")
    detail = np.where(
        flat_box[at],
        "zero width or height",
        np.where(flat_polygon[at], "its outline encloses no area", f"thinner than {min_px:g} pixel"),
    )
    score = np.where(zero[at], 1.0, 0.5)
    return Found("degenerate", view.ids[at], view.asset[at], severity, detail, score)


def keypoints_outside(view: View, *, margin: float = 0.05) -> Found:
    """Keypoints rows with a labelled point outside their instance's box by more than ``margin`` of the box's
    size; the instance is the box on the same asset that overlaps the keypoints' extent most. Keypoints with no
    overlapping box are left alone. Severity warning; score: the share of labelled points outside.
    """
    if not view.of_kind("keypoints").any():
        return Found("keypoints_outside", [], [], "warning", [], [])
    kp = view.of_kind("keypoints") & np.isfinite(view.extent).all(axis=1)
    box = view.of_kind("box") & np.isfinite(view.corners).all(axis=1)
    cand = np.flatnonzero(kp | box)
    i, j, iou = overlapping_pairs(
        view.asset_codes[cand], np.where(box[cand, None], view.corners[cand], view.extent[cand])
    )
    i, j = cand[i], cand[j]
    k, b = np.where(kp[i], i, j), np.where(kp[i], j, i)
    pair = kp[k] & box[b]
    k, b, iou = k[pair], b[pair], iou[pair]
    order = np.lexsort((-iou, k))
    best = order[np.r_[True, k[order][1:] != k[order][:-1]]] if len(order) else order
    k, b = k[best], b[best]
    flat = flat_parts(view.column("points")[k])
    vis = view.column("visibility")[k]
    labelled = _labelled(flat, vis)
    row = flat.row_of_vertex
    corners = view.corners[b][row]
    mx = margin * (corners[:, 2] - corners[:, 0])
    my = margin * (corners[:, 3] - corners[:, 1])
    x, y = flat.xy[:, 0], flat.xy[:, 1]
    outside = labelled & (
        (x < corners[:, 0] - mx) | (x > corners[:, 2] + mx) | (y < corners[:, 1] - my) | (y > corners[:, 3] + my)
    )
    n_out = np.bincount(row, weights=outside, minlength=len(k))
    n_lab = np.bincount(row, weights=labelled, minlength=len(k))
    hit = n_out > 0
    detail = [
        f"{int(o)} of {int(n)} labelled points outside box {bid}"
        for o, n, bid in zip(n_out[hit], n_lab[hit], view.ids[b][hit], strict=True)
    ]
    return Found(
        "keypoints_outside",
        view.ids[k][hit],
        view.asset[k][hit],
        "warning",
        detail,
        (n_out / np.maximum(n_lab, 1))[hit],
        view.ids[b][hit],
    )


def _labelled(flat: FlatParts, visibility: np.ndarray) -> np.ndarray:
    """Per vertex: labelled (visibility not 0 where given, else a finite coordinate)."""
    finite: np.ndarray = np.asarray(np.isfinite(flat.xy).all(axis=1))
    vis_rows = [v if isinstance(v, (tuple, list)) else () for v in visibility]
    lengths = np.fromiter(map(len, vis_rows), dtype=np.intp, count=len(vis_rows))
    per_row = np.bincount(flat.row_of_vertex, minlength=len(vis_rows))
    usable = lengths == per_row
    if not usable.any():
        return finite
    values = np.fromiter(
        itertools.chain.from_iterable(v for v, ok in zip(vis_rows, usable, strict=True) if ok), dtype=np.float64
    )
    labelled = finite.copy()
    at_usable = usable[flat.row_of_vertex]
    labelled[at_usable] = finite[at_usable] & (values != 0)
    return labelled
