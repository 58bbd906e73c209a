"""COCO JSON (parsed) -> images, categories and geometry; the reading half of `annotebook.formats.coco`.

Speed matters here (a 200,000-annotation file is an ordinary dataset): every field is plucked with one pass over
the annotations and checked as a whole (numpy dtype, finiteness, sign); only when a check fails does a slow scan find
the first bad item, so the error names its exact index path (``annotations[12].bbox``). The annotations table is
assembled in `_coco_annotations`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from ._json_paths import Where, is_int, is_number, numbers, pluck, section, show, unique
from ._rows import MAX_SIDE

__all__ = [
    "IMAGE_EXTRAS",
    "KEYPOINTS_SUFFIX",
    "Categories",
    "Images",
    "Keypoints",
    "Polygons",
    "object_array",
    "parse_boxes",
    "parse_keypoints",
    "parse_polygons",
    "read_categories",
    "read_images",
    "ring_areas",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: image fields carried as extra columns of the assets table (beside id, file_name, width, height)
IMAGE_EXTRAS = ("license", "coco_url", "flickr_url", "date_captured")
KEYPOINTS_SUFFIX = "#keypoints"


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


def read_images(doc: Mapping[str, Any], where: Where) -> Images:
    items = section(doc, "images", where)
    ids = pluck(items, "id", "images", where)
    if not all(type(v) is int for v in ids):
        raise where.first(ids, is_int, "images", "id", "expected an integer")
    unique(ids, "images", "id", where)
    names = pluck(items, "file_name", "images", where)
    if not all(type(v) is str and v for v in names):
        raise where.first(names, lambda v: type(v) is str and bool(v), "images", "file_name", "expected a file name")
    unique(names, "images", "file_name", where)
    sizes = [numbers(pluck(items, k, "images", where), "images", k, where, positive=True) for k in ("width", "height")]
    for k, arr in zip(("width", "height"), sizes, strict=True):
        if (arr != np.floor(arr)).any():
            i = int(np.flatnonzero(arr != np.floor(arr))[0])
            raise where.error(f"images[{i}].{k}", f"expected a whole number of pixels, got {arr[i]!r}")
        if (arr > MAX_SIDE).any():  # 1e20 would wrap to a negative int64 when cast
            i = int(np.flatnonzero(arr > MAX_SIDE)[0])
            raise where.error(f"images[{i}].{k}", f"expected at most {MAX_SIDE:,} pixels, got {float(arr[i])!r}")
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


def read_categories(doc: Mapping[str, Any], where: Where) -> Categories:
    items = section(doc, "categories", where)
    ids = pluck(items, "id", "categories", where)
    if not all(type(v) is int for v in ids):
        raise where.first(ids, is_int, "categories", "id", "expected an integer")
    unique(ids, "categories", "id", where)
    names = pluck(items, "name", "categories", where)
    if not all(type(v) is str and v for v in names):
        raise where.first(names, lambda v: type(v) is str and bool(v), "categories", "name", "expected a name")
    unique(names, "categories", "name", where)
    supers = [a.get("supercategory") for a in items]
    if not all(v is None or type(v) is str for v in supers):
        raise where.first(supers, lambda v: v is None or type(v) is str, "categories", "supercategory", "expected text")
    keypoints = [_point_names(a.get("keypoints"), f"categories[{i}].keypoints", where) for i, a in enumerate(items)]
    skeleton = [
        _skeleton(a.get("skeleton"), len(keypoints[i] or ()), f"categories[{i}].skeleton", where)
        for i, a in enumerate(items)
    ]
    return Categories(ids, names, supers, keypoints, skeleton, {v: i for i, v in enumerate(ids)})


def _point_names(v: Any, path: str, where: Where) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(type(x) is str for x in v):
        raise where.error(path, f"expected a list of keypoint names, got {show(v)}")
    return tuple(v)


def _skeleton(v: Any, n_points: int, path: str, where: Where) -> tuple[tuple[int, int], ...] | None:
    """COCO's 1-based (i, j) pairs as 0-based pairs, each index naming one of the category's keypoints."""
    if v is None:
        return None
    ok = isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 and all(map(is_int, p)) for p in v)
    if not ok:
        raise where.error(path, f"expected a list of [i, j] keypoint index pairs, got {show(v)}")
    for k, (a, b) in enumerate(v):
        if not (1 <= a <= n_points and 1 <= b <= n_points):
            raise where.error(f"{path}[{k}]", f"keypoint index out of 1..{n_points} (COCO counts from 1), got {[a, b]}")
    return tuple((a - 1, b - 1) for a, b in v)


# ---------------------------------------------------------------------------------------------------------------
# geometry


def parse_boxes(bboxes: list[Any], rows: IntArray, where: Where) -> FloatArray:
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
                raise where.error(f"annotations[{i}].bbox", f"expected [x, y, width, height], got {show(b)}")
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
class Polygons:
    points: list[tuple[tuple[float, ...], ...]]
    area: FloatArray  # per annotation, in pixels: the sum of its rings' areas (COCO's parts are a union)
    extent: FloatArray  # (n, 4) per annotation: normalised x0, y0, x1, y1 of its vertices (`schema.extents`)


def parse_polygons(segs: list[Any], rows: IntArray, width: FloatArray, height: FloatArray, where: Where) -> Polygons:
    """Normalised vertex parts of the polygon annotations ``rows`` (widths / heights per annotation)."""
    chosen = [segs[i] for i in rows.tolist()]
    counts = np.fromiter(map(len, chosen), dtype=np.intp, count=len(chosen))
    rings = list(chain.from_iterable(chosen))
    owner = np.repeat(rows, counts)
    try:
        lengths = np.fromiter(map(len, rings), dtype=np.intp, count=len(rings))
    except TypeError:  # a ring that is a number: named by _check_rings
        lengths = np.fromiter((len(r) if type(r) is list else -1 for r in rings), dtype=np.intp, count=len(rings))
    _check_rings(rings, lengths, owner, counts, where)
    try:
        flat = np.asarray(list(chain.from_iterable(rings)))
    except (ValueError, OverflowError):  # a list among the coordinates: named by _bad_value
        flat = np.zeros(0, dtype=object)
    if flat.dtype.kind not in "if" or flat.shape != (int(lengths.sum()),):
        _bad_value(rings, owner, counts, where)
    flat = flat.astype(np.float64, copy=False)
    if not np.isfinite(flat).all():
        _bad_value(rings, owner, counts, where)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    closed = (lengths >= 8) & (flat[starts] == flat[ends - 2]) & (flat[starts + 1] == flat[ends - 1])
    areas = ring_areas(flat, lengths)
    local = np.repeat(np.arange(len(rows)), counts)
    scale = np.empty(len(flat))
    scale[0::2], scale[1::2] = np.repeat(width[local], lengths // 2), np.repeat(height[local], lengths // 2)
    flat /= scale
    del scale  # the peak is here, beside the parsed document: keep only what the tuples need
    if closed.any():  # a ring given closed (first vertex repeated) loses the repeat
        keep = np.ones(len(flat), dtype=bool)
        keep[np.concatenate([ends[closed] - 2, ends[closed] - 1])] = False
        flat, lengths = flat[keep], lengths - 2 * closed
    extent = _extents(flat, np.bincount(local, weights=lengths // 2, minlength=len(rows)).astype(np.intp))
    norm = flat.tolist()
    del flat
    ends = np.cumsum(lengths)
    ring_t = [tuple(norm[s:e]) for s, e in zip((ends - lengths).tolist(), ends.tolist(), strict=True)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).tolist()
    points: list[tuple[tuple[float, ...], ...]]
    if len(ring_t) == len(rows):  # one polygon per annotation: the common case
        points = [(r,) for r in ring_t]
    else:
        points = [tuple(ring_t[offsets[k] : offsets[k + 1]]) for k in range(len(rows))]
    per_ann = np.add.reduceat(areas, offsets[:-1]) if len(areas) else np.zeros(len(rows))
    return Polygons(points, per_ann, extent)


def _extents(flat: FloatArray, pairs: IntArray) -> FloatArray:
    """(n, 4) min x, min y, max x, max y of consecutive runs of ``pairs`` (x, y) vertices (each run >= 3): the
    reductions `schema.extents` makes over the same values in the same order, so the frame needs no second pass."""
    out = np.empty((len(pairs), 4))
    if len(pairs):
        first = np.cumsum(pairs) - pairs
        xs, ys = flat[0::2], flat[1::2]
        for j, (fn, v) in enumerate(((np.fmin, xs), (np.fmin, ys), (np.fmax, xs), (np.fmax, ys))):
            out[:, j] = fn.reduceat(v, first)
    return out


def _ring_path(k: int, owner: IntArray, counts: IntArray) -> str:
    first = int(np.searchsorted(np.cumsum(counts), k, side="right"))
    before = int(np.cumsum(counts)[first - 1]) if first else 0
    return f"annotations[{int(owner[k])}].segmentation[{k - before}]"


def _check_rings(rings: list[Any], lengths: IntArray, owner: IntArray, counts: IntArray, where: Where) -> None:
    bad = (lengths < 6) | (lengths % 2 == 1)  # a ring that is text or an object fails the number check after
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        r = rings[k]
        problem = (
            f"expected a polygon [x1, y1, x2, y2, ...], got {show(r)}"
            if type(r) is not list
            else f"a polygon needs at least 3 points, got {len(r) / 2:g}"
            if len(r) < 6
            else f"odd number of coordinates ({len(r)})"
        )
        raise where.error(_ring_path(k, owner, counts), problem)


def _bad_value(rings: list[Any], owner: IntArray, counts: IntArray, where: Where) -> None:
    for k, r in enumerate(rings):
        if not all(is_number(v) for v in r):
            v = next(v for v in r if not is_number(v))
            raise where.error(_ring_path(k, owner, counts), f"expected finite numbers, got {show(v)}")
    raise where.error("annotations", "expected finite polygon coordinates")  # pragma: no cover


@dataclass
class Keypoints:
    """The labelled keypoints of one annotation: normalised points (NaN where v=0), visibility, pixel extent."""

    points: tuple[tuple[float, ...], ...]
    visibility: tuple[int, ...]
    extent: tuple[float, float, float, float]  # x, y, w, h in pixels of the labelled points


def parse_keypoints(v: Any, n_names: int | None, w: float, h: float, path: str, where: Where) -> Keypoints | None:
    """One annotation's ``keypoints`` [x1, y1, v1, ...]; None when no point is labelled (every v is 0)."""
    if not isinstance(v, list) or len(v) % 3 or not all(type(x) in (int, float) and math.isfinite(x) for x in v):
        raise where.error(path, f"expected [x1, y1, v1, x2, y2, v2, ...] numbers, got {show(v)}")
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
    return Keypoints((flat,), tuple(vis), (min(lx), min(ly), max(lx) - min(lx), max(ly) - min(ly)))


def object_array(values: list[Any]) -> npt.NDArray[Any]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
