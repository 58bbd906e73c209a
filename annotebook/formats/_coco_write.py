"""Canonical tables -> a COCO document (a dict ready for JSON); the writing half of `annotebook.formats.coco`.

Geometry is scaled to pixels in whole columns (boxes as one (n, 4) array, every polygon vertex in one flat array);
only the final records are built row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import FormatError
from ._coco_read import IMAGE_EXTRAS, KEYPOINTS_SUFFIX, ring_areas
from ._rows import file_name
from ._tables import complete_labels

__all__ = ["RESERVED_ATTRIBUTES", "coco_document"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: attributes that are COCO fields of their own; every other attribute goes to the annotation's "attributes"
RESERVED_ATTRIBUTES = ("area", "iscrowd", "mask", "rle_counts", "rle_size")
_CARRIED = ("box", "polygon", "keypoints")


def _error(message: str, field: str | None = None) -> FormatError:
    return FormatError(message, field=field)


def _rows_named(anns: pd.DataFrame, mask: npt.NDArray[np.bool_], limit: int = 5) -> str:
    shown = [f"{i!r} ({k})" for i, k in zip(anns["id"][mask][:limit], anns["kind"][mask][:limit], strict=True)]
    more = f" and {int(mask.sum()) - limit} more" if mask.sum() > limit else ""
    return ", ".join(shown) + more


def carried_rows(anns: pd.DataFrame, skip_unsupported: bool) -> pd.DataFrame:
    """The live rows COCO can carry; others raise, unless ``skip_unsupported`` leaves them out."""
    if "deleted" in anns.columns:
        anns = anns[~anns["deleted"].to_numpy(dtype=bool)]
    kind = anns["kind"].to_numpy(dtype=object)
    rotation = anns["rotation"].to_numpy(dtype=np.float64, na_value=np.nan)
    rotated = (kind == "box") & ~np.isnan(rotation) & (rotation % 360 != 0)
    bad = ~np.isin(kind, _CARRIED) | rotated
    if bad.any() and not skip_unsupported:
        raise _error(
            f"COCO cannot carry rows {_rows_named(anns, bad)}: it holds axis-aligned boxes, polygons and keypoints "
            "only (a rotated box has no COCO form); pass skip_unsupported=True to write the rest",
            "kind",
        )
    anns = anns[~bad]
    unlabelled = anns["label"].isna().to_numpy()
    if unlabelled.any():
        raise _error(f"rows {_rows_named(anns, unlabelled)} have no label; COCO needs a category", "label")
    return anns


# ---------------------------------------------------------------------------------------------------------------
# categories and images


def categories(labels: pd.DataFrame | None, anns: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """COCO categories from the labels table (index = category id), and label name -> category id."""
    table = complete_labels(labels, anns).drop_duplicates("name")
    index: Any = np.asarray([None if _missing(v) else int(v) for v in table["index"].tolist()], dtype=object)
    if any(v is None for v in index):
        used = [int(v) for v in index if v is not None]
        nxt = iter(range(max(used, default=0) + 1, 1 << 62))
        index = np.asarray([next(nxt) if v is None else v for v in index], dtype=object)
    dup = pd.Index(index).duplicated()
    if dup.any():
        name = table["name"].iloc[int(np.flatnonzero(dup)[0])]
        raise _error(f"label {name!r} shares its index with another label; COCO category ids are unique", "index")
    supers = table["supercategory"] if "supercategory" in table.columns else pd.Series([None] * len(table))
    out = []
    for name, cid, sup, names, skeleton in zip(
        table["name"], index, supers, table["keypoints"], table["skeleton"], strict=True
    ):
        cat: dict[str, Any] = {"id": int(cid), "name": str(name)}
        if isinstance(sup, str):
            cat["supercategory"] = sup
        if names is not None:
            cat["keypoints"] = list(names)
            cat["skeleton"] = [[int(a) + 1, int(b) + 1] for a, b in (skeleton or ())]
        out.append(cat)
    out.sort(key=lambda c: c["id"])
    return out, {c["name"]: c["id"] for c in out}


@dataclass
class _Images:
    records: list[dict[str, Any]]
    assets: pd.Index  # asset -> position
    ids: list[int]
    width: FloatArray
    height: FloatArray


def images(assets: pd.DataFrame) -> _Images:
    """COCO images from the assets table: file_name = asset, sizes required, ids from ``image_id`` when given."""
    table = assets.drop_duplicates("asset")
    width = table["width"].to_numpy(dtype=np.float64, na_value=np.nan)
    height = table["height"].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~(width > 0) | ~(height > 0)
    if bad.any():
        asset = table["asset"].iloc[int(np.flatnonzero(bad)[0])]
        raise _error(f"asset {asset!r} has no pixel size; COCO needs every image's width and height", "width")
    ids = _image_ids(table)
    # a frame read from a file names its images by path (asset); one from a store by an id, with the file in name
    names = [file_name(a, n) for a, n in zip(table["asset"], table["name"], strict=True)]
    extras = {k: table[k].astype(object).tolist() for k in IMAGE_EXTRAS if k in table.columns}
    records = []
    for k, (iid, name, w, h) in enumerate(zip(ids, names, width.tolist(), height.tolist(), strict=True)):
        rec: dict[str, Any] = {"id": iid, "file_name": name, "width": int(w), "height": int(h)}
        for key, values in extras.items():
            if not _missing(values[k]):
                rec[key] = values[k].item() if isinstance(values[k], np.generic) else values[k]
        records.append(rec)
    return _Images(records, pd.Index(table["asset"].astype(object)), ids, width, height)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _image_ids(table: pd.DataFrame) -> list[int]:
    given = table["image_id"].tolist() if "image_id" in table.columns else [None] * len(table)
    return _fresh_ints([None if _missing(v) else int(v) for v in given])  # type: ignore[arg-type]


def _fresh_ints(given: list[int | None]) -> list[int]:
    """The given ints where present and not yet used; fresh ones (past the largest, from 1) elsewhere."""
    top = max((v for v in given if v is not None), default=0)
    seen: set[int] = set()
    out = []
    for v in given:
        if v is None or v in seen:
            top += 1
            v = top
        seen.add(v)
        out.append(v)
    return out


# ---------------------------------------------------------------------------------------------------------------
# geometry in pixels


def _sizes(anns: pd.DataFrame, imgs: _Images) -> tuple[IntArray, FloatArray, FloatArray]:
    at = imgs.assets.get_indexer(pd.Index(anns["asset"].astype(object)))
    if (at < 0).any():
        asset = anns["asset"].iloc[int(np.flatnonzero(at < 0)[0])]
        raise _error(f"asset {asset!r} is not in the assets table, so its pixel size is unknown", "asset")
    return at, imgs.width[at], imgs.height[at]


def box_pixels(anns: pd.DataFrame, rows: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
    """(len(rows), 4) [x, y, width, height] in pixels of box rows."""
    c = anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    bad = ~np.isfinite(c).all(axis=1) | (c[:, 0] > c[:, 2]) | (c[:, 1] > c[:, 3])
    if bad.any():
        row = anns["id"].iloc[int(rows[np.flatnonzero(bad)[0]])]
        raise _error(f"row {row!r}: a box needs finite x0 <= x1 and y0 <= y1", "x0")
    x0, y0 = c[:, 0] * w[rows], c[:, 1] * h[rows]
    return np.column_stack([x0, y0, c[:, 2] * w[rows] - x0, c[:, 3] * h[rows] - y0])


@dataclass
class _PolygonPixels:
    segmentation: list[list[list[float]]]
    bbox: FloatArray
    area: FloatArray


def polygon_pixels(anns: pd.DataFrame, rows: IntArray, w: FloatArray, h: FloatArray) -> _PolygonPixels:
    """Pixel rings, extents and areas (sum of the rings: COCO's parts are a union) of polygon rows."""
    column: list[Any] = anns["points"].tolist()
    parts: list[Any] = [column[i] or () for i in rows.tolist()]
    counts = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
    rings: list[Any] = list(chain.from_iterable(parts))
    lengths = np.fromiter(map(len, rings), dtype=np.intp, count=len(rings))
    owner = np.repeat(np.arange(len(rows)), counts)
    flat = np.fromiter(chain.from_iterable(rings), dtype=np.float64, count=int(lengths.sum()))
    bad_ring = (lengths < 6) | (lengths % 2 == 1)
    bad = (counts == 0) | np.bincount(owner[bad_ring], minlength=len(rows)).astype(bool)
    bad |= np.bincount(np.repeat(owner, lengths)[~np.isfinite(flat)], minlength=len(rows)).astype(bool)
    if bad.any():
        row = anns["id"].iloc[int(rows[np.flatnonzero(bad)[0]])]
        raise _error(f"row {row!r}: each polygon ring needs at least 3 finite (x, y) vertices", "points")
    even = np.arange(len(flat)) % 2 == 0
    scale = np.where(even, np.repeat(w[rows][owner], lengths), np.repeat(h[rows][owner], lengths))
    px = flat * scale
    values = px.tolist()
    ends = np.cumsum(lengths).tolist()
    ring_lists = [values[e - n : e] for e, n in zip(ends, lengths.tolist(), strict=True)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
    segs = [ring_lists[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    row_of_pair = np.repeat(owner, lengths // 2)
    first_pair = np.searchsorted(row_of_pair, np.arange(len(rows)))
    xs, ys = px[0::2], px[1::2]
    x0, y0 = np.minimum.reduceat(xs, first_pair), np.minimum.reduceat(ys, first_pair)
    x1, y1 = np.maximum.reduceat(xs, first_pair), np.maximum.reduceat(ys, first_pair)
    area = np.add.reduceat(ring_areas(px, lengths), offsets[:-1])
    return _PolygonPixels(segs, np.column_stack([x0, y0, x1 - x0, y1 - y0]), area)


def keypoints_pixels(anns: pd.DataFrame, i: int, w: float, h: float) -> tuple[list[float], int, list[float]]:
    """One keypoints row as COCO ``keypoints`` (unlabelled points are 0, 0, 0), ``num_keypoints`` and its bbox."""
    row: Any = anns["id"].iat[i]
    parts: Any = anns["points"].iat[i]
    if not parts or len(parts) != 1 or len(parts[0]) % 2:
        raise _error(f"row {row!r}: keypoints need one part of (x, y) pairs", "points")
    xy = parts[0]
    vis: Any = anns["visibility"].iat[i]
    vis = [0 if x != x else 2 for x in xy[0::2]] if vis is None else list(vis)
    if len(vis) != len(xy) // 2:
        raise _error(f"row {row!r}: {len(vis)} visibility values for {len(xy) // 2} keypoints", "visibility")
    out: list[float] = []
    for x, y, v in zip(xy[0::2], xy[1::2], vis, strict=True):
        labelled = v != 0 and x == x and y == y
        out += [x * w, y * h, int(v)] if labelled else [0, 0, 0]
    xs = [out[k] for k in range(0, len(out), 3) if out[k + 2]]
    ys = [out[k + 1] for k in range(0, len(out), 3) if out[k + 2]]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if xs else [0.0, 0.0, 0.0, 0.0]
    return out, len(xs), bbox


# ---------------------------------------------------------------------------------------------------------------
# annotations


def _annotation_ids(ids: list[Any]) -> list[int]:
    return _fresh_ints([int(s) if isinstance(s, str) and s.isascii() and s.isdigit() else None for s in ids])


def _companions(anns: pd.DataFrame) -> dict[int, int]:
    """Keypoints row position -> position of the region row it belongs to (``<id>#keypoints`` beside ``<id>``)."""
    ids = anns["id"].astype(object).tolist()
    kinds = anns["kind"].astype(object).tolist()
    assets = anns["asset"].astype(object).tolist()
    region = {(a, s): k for k, (a, s, kind) in enumerate(zip(assets, ids, kinds, strict=True)) if kind != "keypoints"}
    out = {}
    for k, (a, s, kind) in enumerate(zip(assets, ids, kinds, strict=True)):
        if kind == "keypoints" and isinstance(s, str) and s.endswith(KEYPOINTS_SUFFIX):
            partner = region.get((a, s.removesuffix(KEYPOINTS_SUFFIX)))
            if partner is not None:
                out[k] = partner
    return out


def coco_document(
    anns: pd.DataFrame,
    assets: pd.DataFrame,
    labels: pd.DataFrame | None,
    *,
    info: Any = None,
    licenses: Any = None,
    recompute_area: bool = False,
) -> dict[str, Any]:
    """The COCO document of rows COCO can carry (see `carried_rows`)."""
    cats, cat_id = categories(labels, anns)
    imgs = images(assets)
    at, w, h = _sizes(anns, imgs)
    records = _records(anns, cats, cat_id, imgs, at, w, h, recompute_area)
    return {
        "info": info if info is not None else {},
        "licenses": licenses if licenses is not None else [],
        "images": imgs.records,
        "annotations": records,
        "categories": cats,
    }


def _records(
    anns: pd.DataFrame,
    cats: list[dict[str, Any]],
    cat_id: dict[str, int],
    imgs: _Images,
    at: IntArray,
    w: FloatArray,
    h: FloatArray,
    recompute_area: bool,
) -> list[dict[str, Any]]:
    n = len(anns)
    kind = anns["kind"].to_numpy(dtype=object)
    bbox = np.zeros((n, 4))
    area = np.zeros(n)
    segs: list[Any] = [[] for _ in range(n)]
    boxes = np.flatnonzero(kind == "box")
    bbox[boxes] = box_pixels(anns, boxes, w, h)
    area[boxes] = bbox[boxes, 2] * bbox[boxes, 3]
    polys = np.flatnonzero(kind == "polygon")
    if len(polys):
        pp = polygon_pixels(anns, polys, w, h)
        bbox[polys], area[polys] = pp.bbox, pp.area
        for k, i in enumerate(polys.tolist()):
            segs[i] = pp.segmentation[k]
    keypoints = _keypoint_fields(anns, kind, w, h, bbox, area)
    companions = _companions(anns)
    names = anns["label"].astype(object).tolist()
    _check_companion_labels(anns, companions, names)
    attrs = anns["attributes"].tolist()
    scores = anns["score"].to_numpy(dtype=np.float64, na_value=np.nan).tolist()
    ids = _annotation_ids(anns["id"].astype(object).tolist())
    blank = _blank_keypoints(cats)
    merged = {partner: k for k, partner in companions.items()}
    out = []
    bboxes, areas, image_ids = bbox.tolist(), area.tolist(), [imgs.ids[k] for k in at.tolist()]
    for i in range(n):
        if i in companions:
            continue
        a = attrs[i] or {}
        rec: dict[str, Any] = {"id": ids[i], "image_id": image_ids[i], "category_id": cat_id[names[i]]}
        rec["segmentation"] = _rle_segmentation(a) if a.get("mask") == "rle" else segs[i]
        rec["area"] = float(a["area"]) if "area" in a and not recompute_area else areas[i]
        rec["bbox"] = bboxes[i]
        rec["iscrowd"] = int(a.get("iscrowd", 0) or 0)
        kp = keypoints.get(merged.get(i, i))
        if kp is not None:
            rec["keypoints"], rec["num_keypoints"] = kp
        elif names[i] in blank:
            rec["keypoints"], rec["num_keypoints"] = list(blank[names[i]]), 0
        if scores[i] == scores[i]:
            rec["score"] = scores[i]
        extra = {k: v for k, v in a.items() if k not in RESERVED_ATTRIBUTES} if a else None
        if extra:
            rec["attributes"] = extra
        out.append(rec)
    return out


def _keypoint_fields(
    anns: pd.DataFrame, kind: npt.NDArray[Any], w: FloatArray, h: FloatArray, bbox: FloatArray, area: FloatArray
) -> dict[int, tuple[list[float], int]]:
    out = {}
    for i in np.flatnonzero(kind == "keypoints").tolist():
        values, count, box = keypoints_pixels(anns, i, float(w[i]), float(h[i]))
        out[i] = (values, count)
        bbox[i] = box
        area[i] = box[2] * box[3]
    return out


def _blank_keypoints(cats: list[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Categories with keypoint names: their annotations without keypoints carry all-zero keypoints."""
    return {c["name"]: (0,) * (3 * len(c["keypoints"])) for c in cats if "keypoints" in c}


def _check_companion_labels(anns: pd.DataFrame, companions: dict[int, int], names: list[Any]) -> None:
    for k, partner in companions.items():
        if names[k] != names[partner]:
            raise _error(
                f"row {anns['id'].iat[k]!r} is labelled {names[k]!r} but its annotation "
                f"{anns['id'].iat[partner]!r} is {names[partner]!r}; one COCO annotation has one category",
                "label",
            )


def _rle_segmentation(a: dict[str, Any]) -> dict[str, Any]:
    counts, size = a.get("rle_counts"), a.get("rle_size")
    if counts is None or size is None:
        raise _error("an attributes mask='rle' needs rle_counts and rle_size", "attributes")
    return {"size": [int(x) for x in size], "counts": counts}
