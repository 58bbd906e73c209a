"""COCO annotations -> the annotations table's columns (one row per annotation, plus companion keypoints rows).

Part of `annotebook.formats.coco`; geometry parsing lives in `_coco_read`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import extents, normal_attributes
from ._coco_read import (
    KEYPOINTS_SUFFIX,
    Categories,
    Images,
    Keypoints,
    object_array,
    parse_boxes,
    parse_keypoints,
    parse_polygons,
)
from ._json_paths import Where, is_int, is_number, pluck, section, show, unique

__all__ = ["KINDS", "annotation_columns"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: the kinds a COCO file gives, by the codes of the ``kind`` column that `annotation_columns` returns
KINDS = ("box", "polygon", "keypoints")
_REL = 1e-7  # a file's area this close to the geometry's own area is not kept as an attribute


def _positions(values: list[Any], pos: dict[int, int], key: str, what: str, where: Where) -> IntArray:
    """Each value's position in ``pos``; an unknown (or unhashable) value is named."""
    try:
        return np.fromiter(map(pos.__getitem__, values), dtype=np.intp, count=len(values))
    except (KeyError, TypeError):
        i = next(i for i, v in enumerate(values) if not _hashable_in(v, pos))
        raise where.error(f"annotations[{i}].{key}", f"unknown {what} {show(values[i])}") from None


def _hashable_in(v: Any, pos: dict[int, int]) -> bool:
    try:
        return v in pos
    except TypeError:
        return False


#: the fields every COCO annotation has, plucked in one pass when all are present
STANDARD = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd")


def fields(items: list[dict[str, Any]], where: Where) -> tuple[dict[str, list[Any]], list[int]]:
    """The standard fields as lists (None where an optional one is missing); and the positions of the annotations
    that may have other fields (score, keypoints, attributes), so that only those are looked at again: the ones with
    more keys than the standard ones when every annotation has all of them."""
    ids: list[Any] = []
    images: list[Any] = []
    categories: list[Any] = []
    segmentations: list[Any] = []
    areas: list[Any] = []
    bboxes: list[Any] = []
    crowds: list[Any] = []
    sizes: list[int] = []
    try:  # one pass, written out: each annotation is read while it is in the CPU cache (twice as fast as a pass a key)
        for a in items:
            ids.append(a["id"])
            images.append(a["image_id"])
            categories.append(a["category_id"])
            segmentations.append(a["segmentation"])
            areas.append(a["area"])
            bboxes.append(a["bbox"])
            crowds.append(a["iscrowd"])
            sizes.append(len(a))
    except KeyError:  # missing somewhere: required ones are named, optional ones are None
        return {key: _pluck(items, key, where) for key in STANDARD}, list(range(len(items)))
    columns = dict(zip(STANDARD, (ids, images, categories, segmentations, areas, bboxes, crowds), strict=True))
    return columns, np.flatnonzero(np.asarray(sizes) > len(STANDARD)).tolist()


def _pluck(items: list[dict[str, Any]], key: str, where: Where) -> list[Any]:
    if key in ("image_id", "category_id"):
        return pluck(items, key, "annotations", where)
    return [a.get(key) for a in items]


def _row_ids(ids: list[Any], where: Where) -> list[str | None] | npt.NDArray[np.int64]:
    """Annotation ids: an integer array (the common case) or text, None where missing; duplicates refused."""
    try:
        arr = np.asarray(ids) if ids else np.zeros(0, dtype=np.int64)
    except (ValueError, OverflowError):  # ragged lists, or integers past int64: judged one by one below
        arr = np.zeros(0, dtype=object)
    # the common case: integer ids, checked as a whole, made text in one cast (equal lists make a 2-D array)
    if arr.dtype.kind == "i" and arr.shape == (len(ids),):
        if not pd.Index(arr).is_unique:
            unique(ids, "annotations", "id", where)
        return arr

    def ok(v: Any) -> bool:
        return type(v) in (int, str) or v is None

    if not all(ok(v) for v in ids):
        raise where.first(ids, ok, "annotations", "id", "expected an id")
    given = [v for v in ids if v is not None]
    if len(set(given)) != len(given):
        unique(ids, "annotations", "id", where)
    return [None if v is None else str(v) for v in ids]


def _shapes(segs: list[Any], where: Where) -> npt.NDArray[np.int8]:
    """Per annotation: 0 no segmentation, 1 polygons, 2 RLE."""
    shape = np.fromiter(
        (0 if s is None or s == [] else 1 if type(s) is list else 2 if type(s) is dict else 3 for s in segs),
        dtype=np.int8,
        count=len(segs),
    )
    if (shape == 3).any():
        i = int(np.flatnonzero(shape == 3)[0])
        raise where.error(f"annotations[{i}].segmentation", f"expected polygons or an RLE object, got {show(segs[i])}")
    return shape


def annotation_columns(doc: Mapping[str, Any], images: Images, cats: Categories, where: Where) -> dict[str, Any]:
    """The annotations table's columns, one row per annotation, then one per companion keypoints row."""
    items = section(doc, "annotations", where, required=False)
    n = len(items)
    f, others = fields(items, where)
    img = _positions(f["image_id"], images.pos, "image_id", "image id", where)
    cat = _positions(f["category_id"], cats.pos, "category_id", "category id", where)
    width, height = images.width[img], images.height[img]
    ids = _row_ids(f["id"], where)
    segs = f["segmentation"]
    shape = _shapes(segs, where)
    bboxes = f["bbox"]
    kps = _all_keypoints(items, others, cat, cats, width, height, where)
    alone = _keypoints_alone(kps, shape, bboxes)
    kind = (shape == 1).astype(np.int8)  # KINDS positions: box, polygon (keypoints set below)
    coords = np.full((n, 4), np.nan)
    boxed = np.flatnonzero((shape != 1) & ~alone)
    bbox = parse_boxes(bboxes, boxed, where)
    coords[boxed] = np.column_stack(
        [bbox[:, 0], bbox[:, 1], bbox[:, 0] + bbox[:, 2], bbox[:, 1] + bbox[:, 3]]
    ) / np.column_stack([width[boxed], height[boxed]] * 2)
    computed = np.full(n, np.nan)
    computed[boxed] = bbox[:, 2] * bbox[:, 3]
    points = np.full(n, None, dtype=object)
    poly = np.flatnonzero(shape == 1)
    if len(poly):
        polys = parse_polygons(segs, poly, width[poly], height[poly], where)
        points[poly] = object_array(polys.points)
        coords[poly] = polys.extent
        computed[poly] = polys.area
    attributes = _attributes(items, others, f, shape, computed, kps, alone, images, img, where)
    cols = {
        "asset": img,  # positions in images.file_names
        "id": ids,
        "label": cat,  # positions in cats.names
        "kind": kind,  # positions in KINDS
        "x0": coords[:, 0],
        "y0": coords[:, 1],
        "x1": coords[:, 2],
        "y1": coords[:, 3],
        "points": points,
        "visibility": np.full(n, None, dtype=object),
        "attributes": attributes,
        "score": _scores(items, others, where),
    }
    return _keypoint_extents(_with_keypoint_rows(cols, kps, alone, ids))


def _all_keypoints(
    items: list[dict[str, Any]],
    others: list[int],
    cat: IntArray,
    cats: Categories,
    width: FloatArray,
    height: FloatArray,
    where: Where,
) -> dict[int, Keypoints]:
    """Annotation position -> its labelled keypoints (annotations without a labelled keypoint are left out)."""
    out: dict[int, Keypoints] = {}
    for i in [i for i in others if "keypoints" in items[i]]:
        v = items[i]["keypoints"]
        names = cats.keypoints[int(cat[i])]
        kp = parse_keypoints(
            v, None if names is None else len(names), width[i], height[i], f"annotations[{i}].keypoints", where
        )
        if kp is not None:
            out[i] = kp
    return out


def _keypoints_alone(
    kps: dict[int, Keypoints], shape: npt.NDArray[np.int8], bboxes: list[Any]
) -> npt.NDArray[np.bool_]:
    """Annotations that are only keypoints: no segmentation, and no bbox beyond the labelled points' extent."""
    alone = np.zeros(len(shape), dtype=bool)
    for i, kp in kps.items():
        b = bboxes[i]
        same = b is None or (
            type(b) is list
            and len(b) == 4
            and all(math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9) for p, q in zip(b, kp.extent, strict=True))
        )
        alone[i] = shape[i] == 0 and same
    return alone


def _scores(items: list[dict[str, Any]], others: list[int], where: Where) -> FloatArray:
    if all(items[i].get("score") is None for i in others):
        return np.full(len(items), np.nan)
    scores = [a.get("score") for a in items]
    if not all(s is None or is_number(s) for s in scores):
        raise where.first(scores, lambda s: s is None or is_number(s), "annotations", "score", "expected a number")
    return np.asarray([np.nan if s is None else s for s in scores], dtype=np.float64)


def _attributes(
    items: list[dict[str, Any]],
    others: list[int],
    f: dict[str, list[Any]],
    shape: npt.NDArray[np.int8],
    computed: FloatArray,
    kps: dict[int, Keypoints],
    alone: npt.NDArray[np.bool_],
    images: Images,
    img: IntArray,
    where: Where,
) -> npt.NDArray[Any]:
    """Per row: ``area`` when it differs from the geometry's own, ``iscrowd`` when set, RLE, the file's attributes;
    in the table's normal form (`schema.normal_attributes`, None for none)."""
    n = len(items)
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(alone).tolist():
        _, _, w, h = kps[i].extent
        computed[i] = w * h
    area = _areas(f["area"], where)
    keep = ~np.isnan(area) & ~np.isclose(area, computed, rtol=_REL, atol=1e-9) | ((shape == 2) & ~np.isnan(area))
    for i in np.flatnonzero(keep).tolist():
        out[i] = {"area": float(area[i])}
    crowd = f["iscrowd"]
    if any(crowd):

        def ok(c: Any) -> bool:
            return c is None or (type(c) in (int, float, bool) and c in (0, 1))

        if not all(ok(c) for c in crowd):
            raise where.first(crowd, ok, "annotations", "iscrowd", "expected 0 or 1")
        for i in [i for i, c in enumerate(crowd) if c]:
            out[i] = {**(out[i] or {}), "iscrowd": 1}
    for i in np.flatnonzero(shape == 2).tolist():
        out[i] = {**(out[i] or {}), **_rle(items[i]["segmentation"], images, int(img[i]), i, where)}
    extra = [(i, items[i]["attributes"]) for i in others if "attributes" in items[i]]
    for i, attrs in extra:
        if not isinstance(attrs, dict):
            raise where.error(f"annotations[{i}].attributes", f"expected an object, got {show(attrs)}")
        out[i] = {**attrs, **(out[i] or {})}
    for i in np.flatnonzero(pd.notna(out)).tolist():
        out[i] = normal_attributes(out[i]) or None
    return out


def _areas(areas: list[Any], where: Where) -> FloatArray:
    try:
        arr = np.asarray(areas) if areas else np.zeros(0)
    except (ValueError, OverflowError):  # a list among the areas: judged one by one below
        arr = np.zeros(0, dtype=object)
    if arr.dtype.kind in "if" and arr.shape == (len(areas),):
        arr = arr.astype(np.float64)
        if np.isfinite(arr).all() and (arr >= 0).all():
            return arr

    def ok(v: Any) -> bool:
        return v is None or (is_number(v) and v >= 0)

    if not all(ok(v) for v in areas):
        raise where.first(areas, ok, "annotations", "area", "expected a number >= 0")
    return np.asarray([np.nan if v is None else v for v in areas], dtype=np.float64)


def _rle(seg: dict[str, Any], images: Images, k: int, i: int, where: Where) -> dict[str, Any]:
    """An RLE mask kept as attributes: ``mask="rle"``, ``rle_counts`` (string or list) and ``rle_size`` [h, w]."""
    counts, size = seg.get("counts"), seg.get("size")
    path = f"annotations[{i}].segmentation"
    if not (type(counts) is str or (type(counts) is list and all(map(is_int, counts)))):
        raise where.error(f"{path}.counts", f"expected an RLE string or a list of run lengths, got {show(counts)}")
    if not (type(size) is list and len(size) == 2 and all(map(is_int, size))):
        raise where.error(f"{path}.size", f"expected [height, width], got {show(size)}")
    if size != [int(images.height[k]), int(images.width[k])]:
        raise where.error(f"{path}.size", f"{size} is not the image's [height, width]")
    return {"mask": "rle", "rle_counts": counts, "rle_size": size}


def _with_keypoint_rows(
    cols: dict[str, Any], kps: dict[int, Keypoints], alone: npt.NDArray[np.bool_], ids: Any
) -> dict[str, Any]:
    """Keypoints-only annotations become keypoints rows; the others gain a companion row ``<id>#keypoints``."""
    for i in np.flatnonzero(alone).tolist():
        cols["kind"][i] = 2
        cols["points"][i] = kps[i].points
        cols["visibility"][i] = kps[i].visibility
    extra = [i for i in kps if not alone[i]]
    if not extra:
        return cols
    at = np.asarray(extra, dtype=np.intp)
    grown: dict[str, Any] = {}
    for name, col in cols.items():
        arr = np.asarray(col, dtype=object) if isinstance(col, list) else col
        tail = arr[at].copy() if arr.dtype == object else arr[at]
        grown[name] = np.concatenate([arr, tail])
    n = len(ids)
    grown["id"] = np.asarray([None if v is None else str(v) for v in grown["id"]], dtype=object)
    grown["id"][n:] = [None if ids[i] is None else f"{ids[i]}{KEYPOINTS_SUFFIX}" for i in extra]
    grown["kind"][n:] = 2
    grown["points"][n:] = object_array([kps[i].points for i in extra])
    grown["visibility"][n:] = object_array([kps[i].visibility for i in extra])
    grown["attributes"][n:] = None
    grown["score"][n:] = np.nan
    return grown


def _keypoint_extents(cols: dict[str, Any]) -> dict[str, Any]:
    """x0..y1 of the keypoints rows: the extent of their labelled points (polygon rows have theirs already)."""
    rows = np.flatnonzero(cols["kind"] == 2)
    if len(rows):
        ext = extents(cols["points"][rows])
        for j, col in enumerate(("x0", "y0", "x1", "y1")):
            cols[col][rows] = ext[:, j]
    return cols
