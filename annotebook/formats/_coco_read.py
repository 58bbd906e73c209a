"""COCO JSON (parsed) -> columns of the canonical tables; the reading half of `annotebook.formats.coco`.

Speed matters here (a 200,000-annotation file is an ordinary dataset): every field is plucked with one list
comprehension over the annotations and checked as a whole (numpy dtype, finiteness, sign); only when a check fails
does a slow scan find the first bad item, so the error names its exact index path (``annotations[12].bbox``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import FormatError

__all__ = ["Categories", "Images", "annotation_columns", "read_categories", "read_images"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: image fields carried as extra columns of the assets table (beside id, file_name, width, height)
IMAGE_EXTRAS = ("license", "coco_url", "flickr_url", "date_captured")
KEYPOINTS_SUFFIX = "#keypoints"
#: the kinds a COCO file gives, by the codes of the ``kind`` column that `annotation_columns` returns
KINDS = ("box", "polygon", "keypoints")
_REL = 1e-7  # a file's area this close to the geometry's own area is not kept as an attribute


class _Where:
    """Builds the FormatError of one file, named by JSON index paths."""

    def __init__(self, file: str | None):
        self.file = file

    def error(self, path: str, message: str) -> FormatError:
        return FormatError(message, file=self.file, field=path)

    def first(self, values: list[Any], ok: Callable[[Any], bool], path: str, key: str, message: str) -> FormatError:
        """The error for the first value that is not ``ok`` (the caller knows at least one is not)."""
        for i, v in enumerate(values):
            if not ok(v):
                return self.error(f"{path}[{i}].{key}", f"{message}, got {_show(v)}")
        return self.error(path, message)  # pragma: no cover - callers pass a failing list


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return type(v) is int


def section(doc: Mapping[str, Any], key: str, where: _Where, required: bool = True) -> list[Any]:
    """``doc[key]`` as a list of JSON objects (a missing optional section is empty)."""
    items = doc.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise where.error(key, f"expected a list of objects, got {_show(items) if key in doc else 'nothing'}")
    if not all(type(a) is dict for a in items):
        bad = next(i for i, a in enumerate(items) if type(a) is not dict)
        raise where.error(f"{key}[{bad}]", f"expected an object, got {_show(items[bad])}")
    return items


def pluck(items: list[dict[str, Any]], key: str, path: str, where: _Where) -> list[Any]:
    """``[item[key] for item in items]``; a missing key names the first item that lacks it."""
    try:
        return [a[key] for a in items]
    except KeyError:
        bad = next(i for i, a in enumerate(items) if key not in a)
        raise where.error(f"{path}[{bad}].{key}", "missing") from None


def _numbers(values: list[Any], path: str, key: str, where: _Where, positive: bool = False) -> FloatArray:
    """Finite numbers (bools and strings refused) as floats; ``positive`` refuses zero and negatives."""
    if not all(type(v) in (int, float) for v in values):
        raise where.first(values, lambda v: type(v) in (int, float), path, key, "expected a number")
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else np.zeros(len(arr), dtype=bool))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a positive number" if positive else "a finite number"
        raise where.error(f"{path}[{i}].{key}", f"expected {what}, got {_show(values[i])}")
    return arr


def _unique(values: list[Any], path: str, key: str, where: _Where) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise where.error(f"{path}[{i}].{key}", f"duplicate {key} {v!r} (also {path}[{seen[v]}])")
        seen[v] = i


# ---------------------------------------------------------------------------------------------------------------
# images and categories


@dataclass
class Images:
    """The images section: file names, sizes, and COCO id -> position."""

    ids: list[int]
    file_names: npt.NDArray[Any]
    width: FloatArray
    height: FloatArray
    pos: dict[int, int]
    extras: dict[str, list[Any]] = field(default_factory=dict)


def read_images(doc: Mapping[str, Any], where: _Where) -> Images:
    items = section(doc, "images", where)
    ids = pluck(items, "id", "images", where)
    if not all(type(v) is int for v in ids):
        raise where.first(ids, _is_int, "images", "id", "expected an integer")
    _unique(ids, "images", "id", where)
    names = pluck(items, "file_name", "images", where)
    if not all(type(v) is str and v for v in names):
        raise where.first(names, lambda v: type(v) is str and bool(v), "images", "file_name", "expected a file name")
    _unique(names, "images", "file_name", where)
    sizes = [_numbers(pluck(items, k, "images", where), "images", k, where, positive=True) for k in ("width", "height")]
    for k, arr in zip(("width", "height"), sizes, strict=True):
        if (arr != np.floor(arr)).any():
            i = int(np.flatnonzero(arr != np.floor(arr))[0])
            raise where.error(f"images[{i}].{k}", f"expected a whole number of pixels, got {arr[i]!r}")
    extras = {k: [a.get(k) for a in items] for k in IMAGE_EXTRAS if any(k in a for a in items)}
    pos = {v: i for i, v in enumerate(ids)}
    return Images(ids, np.asarray(names, dtype=object), sizes[0], sizes[1], pos, extras)


@dataclass
class Categories:
    """The categories section: names, ids, keypoint names and 0-based skeletons, id -> position."""

    ids: list[int]
    names: list[str]
    supercategory: list[str | None]
    keypoints: list[tuple[str, ...] | None]
    skeleton: list[tuple[tuple[int, int], ...] | None]
    pos: dict[int, int]


def read_categories(doc: Mapping[str, Any], where: _Where) -> Categories:
    items = section(doc, "categories", where)
    ids = pluck(items, "id", "categories", where)
    if not all(type(v) is int for v in ids):
        raise where.first(ids, _is_int, "categories", "id", "expected an integer")
    _unique(ids, "categories", "id", where)
    names = pluck(items, "name", "categories", where)
    if not all(type(v) is str and v for v in names):
        raise where.first(names, lambda v: type(v) is str and bool(v), "categories", "name", "expected a name")
    _unique(names, "categories", "name", where)
    supers = [a.get("supercategory") for a in items]
    if not all(v is None or type(v) is str for v in supers):
        raise where.first(supers, lambda v: v is None or type(v) is str, "categories", "supercategory", "expected text")
    keypoints = [_point_names(a.get("keypoints"), f"categories[{i}].keypoints", where) for i, a in enumerate(items)]
    skeleton = [
        _skeleton(a.get("skeleton"), len(keypoints[i] or ()), f"categories[{i}].skeleton", where)
        for i, a in enumerate(items)
    ]
    return Categories(ids, names, supers, keypoints, skeleton, {v: i for i, v in enumerate(ids)})


def _point_names(v: Any, path: str, where: _Where) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(type(x) is str for x in v):
        raise where.error(path, f"expected a list of keypoint names, got {_show(v)}")
    return tuple(v)


def _skeleton(v: Any, n_points: int, path: str, where: _Where) -> tuple[tuple[int, int], ...] | None:
    """COCO's 1-based (i, j) pairs as 0-based pairs, each index naming one of the category's keypoints."""
    if v is None:
        return None
    ok = isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 and all(map(_is_int, p)) for p in v)
    if not ok:
        raise where.error(path, f"expected a list of [i, j] keypoint index pairs, got {_show(v)}")
    for k, (a, b) in enumerate(v):
        if not (1 <= a <= n_points and 1 <= b <= n_points):
            raise where.error(f"{path}[{k}]", f"keypoint index out of 1..{n_points} (COCO counts from 1), got {[a, b]}")
    return tuple((a - 1, b - 1) for a, b in v)


# ---------------------------------------------------------------------------------------------------------------
# annotations


def _positions(values: list[Any], pos: dict[int, int], key: str, what: str, where: _Where) -> IntArray:
    """Each value's position in ``pos``; an unknown (or unhashable) value is named."""
    try:
        return np.fromiter(map(pos.__getitem__, values), dtype=np.intp, count=len(values))
    except (KeyError, TypeError):
        i = next(i for i, v in enumerate(values) if not _hashable_in(v, pos))
        raise where.error(f"annotations[{i}].{key}", f"unknown {what} {_show(values[i])}") from None


def _hashable_in(v: Any, pos: dict[int, int]) -> bool:
    try:
        return v in pos
    except TypeError:
        return False


def _row_ids(items: list[dict[str, Any]], where: _Where) -> list[str | None] | npt.NDArray[np.int64]:
    """Annotation ids: an integer array (the common case) or text, None where missing; duplicates refused."""
    ids = [a.get("id") for a in items]
    arr = np.asarray(ids) if ids else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "i":  # the common case: integer ids, checked as a whole, made text in one cast
        if not pd.Index(arr).is_unique:
            _unique(ids, "annotations", "id", where)
        return arr

    def ok(v: Any) -> bool:
        return type(v) in (int, str) or v is None

    if not all(ok(v) for v in ids):
        raise where.first(ids, ok, "annotations", "id", "expected an id")
    given = [v for v in ids if v is not None]
    if len(set(given)) != len(given):
        _unique(ids, "annotations", "id", where)
    return [None if v is None else str(v) for v in ids]


def _shapes(segs: list[Any], where: _Where) -> npt.NDArray[np.int8]:
    """Per annotation: 0 no segmentation, 1 polygons, 2 RLE."""
    shape = np.fromiter(
        (0 if s is None or s == [] else 1 if type(s) is list else 2 if type(s) is dict else 3 for s in segs),
        dtype=np.int8,
        count=len(segs),
    )
    if (shape == 3).any():
        i = int(np.flatnonzero(shape == 3)[0])
        raise where.error(f"annotations[{i}].segmentation", f"expected polygons or an RLE object, got {_show(segs[i])}")
    return shape


def _boxes(bboxes: list[Any], rows: IntArray, where: _Where) -> FloatArray:
    """(len(rows), 4) pixel [x, y, w, h] of the given annotations: four finite numbers, w and h >= 0."""
    chosen = [bboxes[i] for i in rows.tolist()]
    try:
        arr = np.asarray(chosen) if chosen else np.zeros((0, 4))
    except ValueError:  # ragged
        arr = np.zeros(0, dtype=object)
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "if":
        for i in rows.tolist():
            b = bboxes[i]
            if b is None:
                raise where.error(
                    f"annotations[{i}].bbox",
                    "missing: a box, or an RLE mask read as its box, needs [x, y, width, height]",
                )
            if not (type(b) is list and len(b) == 4 and all(type(x) in (int, float) for x in b)):
                raise where.error(f"annotations[{i}].bbox", f"expected [x, y, width, height], got {_show(b)}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 2] < 0) | (arr[:, 3] < 0)
    if bad.any():
        i = int(rows[np.flatnonzero(bad)[0]])
        raise where.error(f"annotations[{i}].bbox", f"expected finite values and width, height >= 0, got {bboxes[i]}")
    return arr


def ring_areas(flat: FloatArray, lengths: IntArray) -> FloatArray:
    """Shoelace area of each ring of a flat (x, y, x, y, ...) array cut into rings of ``lengths`` values."""
    if not len(lengths):
        return np.zeros(0)
    pairs = lengths // 2
    first = np.cumsum(pairs) - pairs
    x, y = flat[0::2], flat[1::2]
    x = x - np.repeat(x[first], pairs)  # about the ring's first vertex: less cancellation in pixel units
    y = y - np.repeat(y[first], pairs)
    nxt = np.arange(1, len(x) + 1)
    nxt[first + pairs - 1] = first
    return 0.5 * np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, first))


@dataclass
class _Polygons:
    points: list[tuple[tuple[float, ...], ...]]
    area: FloatArray  # per annotation, in pixels: the sum of its rings' areas (COCO's parts are a union)


def _polygons(segs: list[Any], rows: IntArray, width: FloatArray, height: FloatArray, where: _Where) -> _Polygons:
    """Normalised vertex parts of the polygon annotations ``rows`` (widths / heights per annotation)."""
    counts = np.fromiter((len(segs[i]) for i in rows.tolist()), dtype=np.intp, count=len(rows))
    rings = list(chain.from_iterable(segs[i] for i in rows.tolist()))
    owner = np.repeat(rows, counts)
    lengths = np.fromiter((len(r) if type(r) is list else -1 for r in rings), dtype=np.intp, count=len(rings))
    _check_rings(rings, lengths, owner, counts, where)
    flat = np.asarray(list(chain.from_iterable(rings)))
    if flat.dtype.kind not in "if":
        _bad_value(rings, owner, counts, where)
    flat = flat.astype(np.float64)
    if not np.isfinite(flat).all():
        _bad_value(rings, owner, counts, where)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    closed = (lengths >= 8) & (flat[starts] == flat[ends - 2]) & (flat[starts + 1] == flat[ends - 1])
    areas = ring_areas(flat, lengths)
    local = np.repeat(np.arange(len(rows)), counts)
    scale = np.empty(len(flat))
    scale[0::2], scale[1::2] = np.repeat(width[local], lengths // 2), np.repeat(height[local], lengths // 2)
    norm = (flat / scale).tolist()
    ends = ends - 2 * closed  # a ring given closed (first vertex repeated) loses the repeat
    ring_t = [tuple(norm[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
    points: list[tuple[tuple[float, ...], ...]]
    if len(ring_t) == len(rows):  # one polygon per annotation: the common case
        points = [(r,) for r in ring_t]
    else:
        points = [tuple(ring_t[offsets[k] : offsets[k + 1]]) for k in range(len(rows))]
    per_ann = np.add.reduceat(areas, offsets[:-1]) if len(areas) else np.zeros(len(rows))
    return _Polygons(points, per_ann)


def _ring_path(k: int, owner: IntArray, counts: IntArray) -> str:
    first = int(np.searchsorted(np.cumsum(counts), k, side="right"))
    before = int(np.cumsum(counts)[first - 1]) if first else 0
    return f"annotations[{int(owner[k])}].segmentation[{k - before}]"


def _check_rings(rings: list[Any], lengths: IntArray, owner: IntArray, counts: IntArray, where: _Where) -> None:
    bad = (lengths < 6) | (lengths % 2 == 1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        r = rings[k]
        problem = (
            f"expected a polygon [x1, y1, x2, y2, ...], got {_show(r)}"
            if type(r) is not list
            else f"a polygon needs at least 3 points, got {len(r) / 2:g}"
            if len(r) < 6
            else f"odd number of coordinates ({len(r)})"
        )
        raise where.error(_ring_path(k, owner, counts), problem)


def _bad_value(rings: list[Any], owner: IntArray, counts: IntArray, where: _Where) -> None:
    for k, r in enumerate(rings):
        if not all(_is_number(v) for v in r):
            v = next(v for v in r if not _is_number(v))
            raise where.error(_ring_path(k, owner, counts), f"expected finite numbers, got {_show(v)}")
    raise where.error("annotations", "expected finite polygon coordinates")  # pragma: no cover


@dataclass
class _Keypoints:
    """The labelled keypoints of one annotation: normalised points (NaN where v=0), visibility, pixel extent."""

    points: tuple[tuple[float, ...], ...]
    visibility: tuple[int, ...]
    extent: tuple[float, float, float, float]  # x, y, w, h in pixels of the labelled points


def _keypoints(v: Any, n_names: int | None, w: float, h: float, path: str, where: _Where) -> _Keypoints | None:
    """One annotation's ``keypoints`` [x1, y1, v1, ...]; None when no point is labelled (every v is 0)."""
    if not isinstance(v, list) or len(v) % 3 or not all(type(x) in (int, float) and math.isfinite(x) for x in v):
        raise where.error(path, f"expected [x1, y1, v1, x2, y2, v2, ...] numbers, got {_show(v)}")
    if n_names is not None and len(v) != 3 * n_names:
        raise where.error(path, f"the category names {n_names} keypoints, got {len(v) // 3}")
    vis = [int(x) for x in v[2::3]]
    if any(x not in (0, 1, 2) or x != y for x, y in zip(vis, v[2::3], strict=True)):
        raise where.error(path, f"visibility must be 0, 1 or 2, got {v[2::3]}")
    if not any(vis):
        return None
    xs = [x if s else math.nan for x, s in zip(v[0::3], vis, strict=True)]
    ys = [y if s else math.nan for y, s in zip(v[1::3], vis, strict=True)]
    lx = [x for x in xs if x == x]
    ly = [y for y in ys if y == y]
    flat = tuple(c for x, y in zip(xs, ys, strict=True) for c in (x / w, y / h))
    return _Keypoints((flat,), tuple(vis), (min(lx), min(ly), max(lx) - min(lx), max(ly) - min(ly)))


def annotation_columns(doc: Mapping[str, Any], images: Images, cats: Categories, where: _Where) -> dict[str, Any]:
    """The annotations table's columns, one row per annotation, then one per companion keypoints row."""
    items = section(doc, "annotations", where, required=False)
    n = len(items)
    img = _positions(pluck(items, "image_id", "annotations", where), images.pos, "image_id", "image id", where)
    cat = _positions(pluck(items, "category_id", "annotations", where), cats.pos, "category_id", "category id", where)
    width, height = images.width[img], images.height[img]
    ids = _row_ids(items, where)
    segs = [a.get("segmentation") for a in items]
    shape = _shapes(segs, where)
    bboxes = [a.get("bbox") for a in items]
    kps = _all_keypoints(items, cat, cats, width, height, where)
    alone = _keypoints_alone(kps, shape, bboxes)
    kind = (shape == 1).astype(np.int8)  # KINDS positions: box, polygon (keypoints set below)
    coords = np.full((n, 4), np.nan)
    boxed = np.flatnonzero((shape != 1) & ~alone)
    bbox = _boxes(bboxes, boxed, where)
    coords[boxed] = np.column_stack(
        [bbox[:, 0], bbox[:, 1], bbox[:, 0] + bbox[:, 2], bbox[:, 1] + bbox[:, 3]]
    ) / np.column_stack([width[boxed], height[boxed]] * 2)
    computed = np.full(n, np.nan)
    computed[boxed] = bbox[:, 2] * bbox[:, 3]
    points = np.full(n, None, dtype=object)
    poly = np.flatnonzero(shape == 1)
    if len(poly):
        polys = _polygons(segs, poly, width[poly], height[poly], where)
        points[poly] = _object_array(polys.points)
        computed[poly] = polys.area
    attributes = _attributes(items, shape, computed, kps, alone, images, img, where)
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
        "score": _scores(items, where),
    }
    return _with_keypoint_rows(cols, kps, alone, ids)


def _object_array(values: list[Any]) -> npt.NDArray[Any]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _all_keypoints(
    items: list[dict[str, Any]], cat: IntArray, cats: Categories, width: FloatArray, height: FloatArray, where: _Where
) -> dict[int, _Keypoints]:
    """Annotation position -> its labelled keypoints (annotations without a labelled keypoint are left out)."""
    out: dict[int, _Keypoints] = {}
    for i in [i for i, a in enumerate(items) if "keypoints" in a]:
        v = items[i]["keypoints"]
        names = cats.keypoints[int(cat[i])]
        kp = _keypoints(
            v, None if names is None else len(names), width[i], height[i], f"annotations[{i}].keypoints", where
        )
        if kp is not None:
            out[i] = kp
    return out


def _keypoints_alone(
    kps: dict[int, _Keypoints], shape: npt.NDArray[np.int8], bboxes: list[Any]
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


def _scores(items: list[dict[str, Any]], where: _Where) -> FloatArray:
    scores = [a.get("score") for a in items]
    if all(s is None for s in scores):
        return np.full(len(items), np.nan)
    if not all(s is None or _is_number(s) for s in scores):
        raise where.first(scores, lambda s: s is None or _is_number(s), "annotations", "score", "expected a number")
    return np.asarray([np.nan if s is None else s for s in scores], dtype=np.float64)


def _attributes(
    items: list[dict[str, Any]],
    shape: npt.NDArray[np.int8],
    computed: FloatArray,
    kps: dict[int, _Keypoints],
    alone: npt.NDArray[np.bool_],
    images: Images,
    img: IntArray,
    where: _Where,
) -> npt.NDArray[Any]:
    """Per row: ``area`` when it differs from the geometry's own, ``iscrowd`` when set, RLE, the file's attributes."""
    n = len(items)
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(alone).tolist():
        _, _, w, h = kps[i].extent
        computed[i] = w * h
    area = _areas(items, where)
    keep = ~np.isnan(area) & ~np.isclose(area, computed, rtol=_REL, atol=1e-9) | ((shape == 2) & ~np.isnan(area))
    for i in np.flatnonzero(keep).tolist():
        out[i] = {"area": float(area[i])}
    crowd = [a.get("iscrowd") for a in items]
    if any(crowd):

        def ok(c: Any) -> bool:
            return c is None or (type(c) in (int, float, bool) and c in (0, 1))

        if not all(ok(c) for c in crowd):
            raise where.first(crowd, ok, "annotations", "iscrowd", "expected 0 or 1")
        for i in [i for i, c in enumerate(crowd) if c]:
            out[i] = {**(out[i] or {}), "iscrowd": 1}
    for i in np.flatnonzero(shape == 2).tolist():
        out[i] = {**(out[i] or {}), **_rle(items[i]["segmentation"], images, int(img[i]), i, where)}
    extra = [(i, a["attributes"]) for i, a in enumerate(items) if "attributes" in a]
    for i, attrs in extra:
        if not isinstance(attrs, dict):
            raise where.error(f"annotations[{i}].attributes", f"expected an object, got {_show(attrs)}")
        out[i] = {**attrs, **(out[i] or {})}
    return out


def _areas(items: list[dict[str, Any]], where: _Where) -> FloatArray:
    areas = [a.get("area") for a in items]
    arr = np.asarray(areas) if areas else np.zeros(0)
    if arr.dtype.kind in "if" and arr.ndim == 1:
        arr = arr.astype(np.float64)
        if np.isfinite(arr).all() and (arr >= 0).all():
            return arr

    def ok(v: Any) -> bool:
        return v is None or (_is_number(v) and v >= 0)

    if not all(ok(v) for v in areas):
        raise where.first(areas, ok, "annotations", "area", "expected a number >= 0")
    return np.asarray([np.nan if v is None else v for v in areas], dtype=np.float64)


def _rle(seg: dict[str, Any], images: Images, k: int, i: int, where: _Where) -> dict[str, Any]:
    """An RLE mask kept as attributes: ``mask="rle"``, ``rle_counts`` (string or list) and ``rle_size`` [h, w]."""
    counts, size = seg.get("counts"), seg.get("size")
    path = f"annotations[{i}].segmentation"
    if not (type(counts) is str or (type(counts) is list and all(map(_is_int, counts)))):
        raise where.error(f"{path}.counts", f"expected an RLE string or a list of run lengths, got {_show(counts)}")
    if not (type(size) is list and len(size) == 2 and all(map(_is_int, size))):
        raise where.error(f"{path}.size", f"expected [height, width], got {_show(size)}")
    if size != [int(images.height[k]), int(images.width[k])]:
        raise where.error(f"{path}.size", f"{size} is not the image's [height, width]")
    return {"mask": "rle", "rle_counts": counts, "rle_size": size}


def _with_keypoint_rows(
    cols: dict[str, Any], kps: dict[int, _Keypoints], alone: npt.NDArray[np.bool_], ids: Any
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
    grown["points"][n:] = _object_array([kps[i].points for i in extra])
    grown["visibility"][n:] = _object_array([kps[i].visibility for i in extra])
    grown["attributes"][n:] = None
    grown["score"][n:] = np.nan
    return grown
