"""Pictograph annotations <-> canonical rows: one image's annotation list read as rows, and rows as that list.

On the wire (`shared/protocols/clarifai-superannotate-pictograph.md` part C.4) coordinates are absolute pixels:
a ``bbox`` is ``bounding_box {x, y, w, h}`` (top-left and size) with an optional ``oriented_box {cx, cy, w, h,
angle}``; a ``polygon`` is ``polygon {paths: [[{x, y}...], ...]}`` (ring 0 the outline, later rings holes; the seed
docs write a single ``path``, read too); a ``polyline`` is ``polyline {path}``; a ``keypoint`` is one point
``keypoint {x, y}`` with an optional ``instance_id`` grouping joints, occlusion sent as the attribute
``occluded: "true"``. ``name`` is the class (the row's ``label``), ``confidence`` (default 1.0) the ``score`` (NaN
when 1.0, as for human rows), ``created_by`` the ``author``, ``attributes`` a dict (or a list, read too).

Mapping to the data contract: the joints of one pose (keypoints sharing an ``instance_id``, named for the joint
classes of a pose class's skeleton) are one keypoints row of the pose class (`pictograph_poses`); any other
keypoint is a keypoints row of one point. The ``instance_id`` is kept in ``attributes["instance_id"]`` so that a
save sends it back. Pictograph keeps a save's ids, but has no revision:
a row's ``rev`` is a fingerprint of what the platform keeps of it (`content_key`), so a re-read tells an edit
apart even when the ids stayed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from .. import schema
from ._http import MalformedResponse
from ._rows import parses
from .pictograph_poses import OCCLUDED, Templates, attributes_of, group, is_pose, occluded

__all__ = ["content_key", "problems_of", "read_rows", "row_from_wire", "rows_from_wire", "wire_from_row"]

TYPES = ("bbox", "polygon", "polyline", "keypoint")
#: contract columns a Pictograph annotation has no place for
_NO_PLACE = ("value", "text", "answer", "parent", "span_start", "span_end", "status", "frame", "split")


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _xy(p: Any) -> tuple[float, float]:
    return float(p["x"]), float(p["y"])


@parses("Pictograph")
def row_from_wire(ann: Mapping[str, Any], dataset: str, asset: str, size: tuple[float, float]) -> dict[str, Any]:
    """One Pictograph annotation as a canonical row; ``size`` is the image's (width, height) in pixels."""
    w, h = size
    if ann.get("type") == "bbox" and not ann.get("oriented_box") and not ann.get("attributes"):
        plain = _plain_box(ann, dataset, asset, w, h)
        if plain is not None:
            return plain
    try:
        kind = ann["type"]
        attrs = attributes_of(ann.get("attributes"))
        confidence = ann.get("confidence")
        score = math.nan if confidence is None or float(confidence) == 1.0 else float(confidence)
        row: dict[str, Any] = {"dataset": dataset, "asset": asset, "id": str(ann["id"]), "label": ann["name"],
                               "author": ann.get("created_by"), "score": score}  # fmt: skip
        if kind == "bbox":
            row.update(_box(ann, w, h))
        elif kind in ("polygon", "polyline"):
            geom = ann[kind]
            rings = geom.get("paths") if kind == "polygon" and "paths" in geom else [geom["path"]]
            parts = []
            for ring in rings:
                pts = [_xy(p) for p in ring]
                if kind == "polygon" and len(pts) > 3 and pts[0] == pts[-1]:
                    pts = pts[:-1]  # a closed ring: the contract does not repeat the first vertex
                parts.append(tuple(c for x, y in pts for c in (_norm(x, w), _norm(y, h))))
            row.update(kind=kind, points=tuple(parts))
        elif kind == "keypoint":
            x, y = _xy(ann["keypoint"])
            hidden = occluded(attrs)
            attrs.pop(OCCLUDED, None)
            if ann.get("instance_id") is not None:
                attrs["instance_id"] = int(ann["instance_id"])
            row.update(kind="keypoints", points=((_norm(x, w), _norm(y, h)),), visibility=(1 if hidden else 2,))
        else:
            raise MalformedResponse(f"Pictograph sent an annotation of unknown type {kind!r}: {str(ann)[:200]}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"Pictograph sent an annotation without a usable {exc}: {str(ann)[:200]}") from exc
    row["attributes"] = attrs or None
    row["rev"] = fingerprint(row)
    return row


def _plain_box(ann: Mapping[str, Any], dataset: str, asset: str, w: float, h: float) -> dict[str, Any] | None:
    """The row of a box without rotation or attributes, the common case, read without the general path (a load of
    50,000 boxes spends its time here); None when it is not that simple after all."""
    try:
        bb, label, ident = ann["bounding_box"], ann["name"], ann["id"]
        x0, y0 = float(bb["x"]), float(bb["y"])
        x1, y1 = x0 + float(bb["w"]), y0 + float(bb["h"])
        confidence = float(ann.get("confidence", 1.0))
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(label, str):
        return None
    author = ann.get("created_by")
    n0, m0, n1, m1 = _norm(x0, w), _norm(y0, h), _norm(x1, w), _norm(y1, h)
    score = math.nan if confidence == 1.0 else confidence
    key = (
        "box",
        label,
        None if confidence == 1.0 else round(confidence, 7),
        "{}",
        round(n0, 7),
        round(m0, 7),
        round(n1, 7),
        round(m1, 7),
        0.0,
    )  # `content_key` of this row, built directly
    return {"dataset": dataset, "asset": asset, "id": str(ident), "label": label, "author": author, "score": score,
            "kind": "box", "x0": n0, "y0": m0, "x1": n1, "y1": m1, "rotation": 0.0, "attributes": None,
            "rev": _digest(key)}  # fmt: skip


def _box(ann: Mapping[str, Any], w: float, h: float) -> dict[str, Any]:
    ob = ann.get("oriented_box")
    if isinstance(ob, dict) and float(ob.get("angle") or 0) != 0:
        cx, cy, bw, bh = (float(ob[k]) for k in ("cx", "cy", "w", "h"))
        x0, y0, x1, y1, angle = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, float(ob["angle"])
    else:
        bb = ann["bounding_box"]
        x0, y0 = float(bb["x"]), float(bb["y"])
        x1, y1, angle = x0 + float(bb["w"]), y0 + float(bb["h"]), 0.0
    return {
        "kind": "box",
        "x0": _norm(x0, w),
        "y0": _norm(y0, h),
        "x1": _norm(x1, w),
        "y1": _norm(y1, h),
        "rotation": angle,
    }


@parses("Pictograph")
def rows_from_wire(
    items: Sequence[Mapping[str, Any]],
    dataset: str,
    asset: str,
    size: tuple[float, float],
    templates: Templates | None = None,
) -> list[dict[str, Any]]:
    """The canonical rows of one image's annotation list, in the server's order (poses grouped by ``templates``)."""
    return [row for row, _ in read_rows(items, dataset, asset, size, templates)]


@parses("Pictograph")
def read_rows(
    items: Sequence[Mapping[str, Any]],
    dataset: str,
    asset: str,
    size: tuple[float, float],
    templates: Templates | None = None,
) -> list[tuple[dict[str, Any], list[Mapping[str, Any]]]]:
    """Each row of one image's list with the annotations it was read from (a pose's joints, in template order)."""
    out: list[tuple[dict[str, Any], list[Mapping[str, Any]]]] = []
    for label, slots in group(items, templates or {}):
        if label is None:
            (i,) = slots
            assert i is not None
            out.append((row_from_wire(items[i], dataset, asset, size), [items[i]]))
        else:
            joints = [items[i] if i is not None else None for i in slots]
            out.append((_pose_row(joints, label, dataset, asset, size), [j for j in joints if j is not None]))
    return out


def _pose_row(
    joints: Sequence[Mapping[str, Any] | None], label: str, dataset: str, asset: str, size: tuple[float, float]
) -> dict[str, Any]:
    """One object's joints (None: a slot without one) as one keypoints row labelled with its template class."""
    w, h = size
    first = next(j for j in joints if j is not None)
    try:
        points: list[float] = []
        visibility = []
        for j in joints:
            if j is None:
                points += [math.nan, math.nan]
                visibility.append(0)
                continue
            x, y = _xy(j["keypoint"])
            points += [_norm(x, w), _norm(y, h)]
            visibility.append(1 if occluded(attributes_of(j.get("attributes"))) else 2)
        attrs = attributes_of(first.get("attributes"))
        attrs.pop(OCCLUDED, None)
        attrs["instance_id"] = int(first["instance_id"])
        confidence = first.get("confidence")
        score = math.nan if confidence is None or float(confidence) == 1.0 else float(confidence)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"Pictograph sent a joint without a usable {exc}: {str(first)[:200]}") from exc
    row: dict[str, Any] = {"dataset": dataset, "asset": asset, "id": str(first["id"]), "label": label,
                           "kind": "keypoints", "points": (tuple(points),), "visibility": tuple(visibility),
                           "author": first.get("created_by"), "score": score, "attributes": attrs}  # fmt: skip
    row["rev"] = fingerprint(row)
    return row


def problems_of(row: Mapping[str, Any], templates: Templates | None = None) -> list[tuple[str, str]]:
    """Why Pictograph cannot carry ``row``, as (column, problem) pairs; empty when it can (``templates``: the
    dataset's pose classes, `pictograph_poses.templates_of`)."""
    out = [(c, f"{c} cannot be stored on Pictograph") for c in _NO_PLACE if c in row and not _missing(row[c])]
    kind = row.get("kind")
    if _missing(row.get("label")):
        out.append(("label", "a Pictograph annotation needs a class name"))
    if kind == "box":
        if not float(row["x1"]) > float(row["x0"]) or not float(row["y1"]) > float(row["y0"]):
            out.append(("x1", "a Pictograph bbox has w > 0 and h > 0"))
    elif kind in ("polygon", "polyline", "keypoints"):
        parts = schema.normal_points(row.get("points")) or ()
        if kind != "polygon" and len(parts) != 1:
            out.append(("points", f"a Pictograph {kind} has exactly one part, this row has {len(parts)}"))
        if kind == "keypoints" and parts:
            out += _keypoint_problems(row, parts[0], templates or {})
    else:
        out.append(("kind", f"Pictograph takes box, polygon, polyline and keypoints rows, not {kind}"))
    score: Any = row.get("score")
    if not _missing(score) and not 0 <= float(score) <= 1:
        out.append(("score", "confidence is within [0, 1]"))
    return out


def _keypoint_problems(row: Mapping[str, Any], part: tuple[float, ...], templates: Templates) -> list[tuple[str, str]]:
    n = len(part) // 2
    vis = tuple(row.get("visibility") or ())
    label = row.get("label")
    if len(vis) != n:
        return [("visibility", f"{len(vis)} visibility value(s) for {n} point(s)")]
    if n > 1 and not is_pose(label, n, templates):
        nodes = templates.get(str(label))
        why = (
            f"the class {label!r} has {len(nodes)} joints"
            if nodes
            else f"{label!r} is not a pose class (one whose skeleton names its joints: {sorted(templates)})"
        )
        return [("points", f"a Pictograph pose of {n} points needs a class of {n} joints: {why}")]
    if n > 1 and OCCLUDED in (row.get("attributes") or {}):
        return [("attributes", "a pose's joints are occluded by their visibility (1), not by an attribute")]
    labelled = [k for k in range(n) if int(vis[k]) != 0]
    if (n == 1 and not labelled) or any(int(v) not in (0, 1, 2) for v in vis):
        return [("visibility", "a Pictograph keypoint is labelled (visibility 1 or 2; 0 only for a pose's joint)")]
    if not labelled or any(math.isnan(part[2 * k]) or math.isnan(part[2 * k + 1]) for k in labelled):
        return [("points", "every labelled point has coordinates, and a pose has at least one")]
    return []


def wire_from_row(row: Mapping[str, Any], size: tuple[float, float], new_id: str | None = None) -> dict[str, Any]:
    """The save form of a canonical row (``new_id`` replaces a client id); `problems_of` must be empty."""
    w, h = size
    attrs = dict(row.get("attributes") or {})
    score: Any = row.get("score")
    out: dict[str, Any] = {"id": new_id or str(row["id"]), "name": str(row["label"])}
    kind = row["kind"]
    if kind == "box":
        x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        px0, py0 = _px(x0, w), _px(y0, h)
        out.update(type="bbox", bounding_box={"x": px0, "y": py0, "w": _size(px0, x1, w), "h": _size(py0, y1, h)})
        rotation = 0.0 if _missing(row.get("rotation")) else float(row["rotation"])
        if rotation:
            out["oriented_box"] = {"cx": (x0 + x1) / 2 * w, "cy": (y0 + y1) / 2 * h, "w": (x1 - x0) * w,
                                   "h": (y1 - y0) * h, "angle": rotation % 360}  # fmt: skip
    else:
        parts = [[{"x": _px(p[i], w), "y": _px(p[i + 1], h)} for i in range(0, len(p) - 1, 2)]
                 for p in schema.normal_points(row["points"]) or ()]  # fmt: skip
        if kind == "polygon":
            out.update(type="polygon", polygon={"paths": parts})
        elif kind == "polyline":
            out.update(type="polyline", polyline={"path": parts[0]})
        else:
            out.update(type="keypoint", keypoint=parts[0][0])
            if "instance_id" in attrs:
                out["instance_id"] = int(attrs.pop("instance_id"))
            if next(iter(row.get("visibility") or (2,))) == 1:
                attrs["occluded"] = "true"
    out["confidence"] = 1.0 if _missing(score) else float(score)
    if isinstance(row.get("author"), str):
        out["created_by"] = row["author"]
    out["attributes"] = {k: v for k, v in attrs.items() if v is not None}
    return out


def _snap(v: float) -> float:
    """``v``, or the decimal of at most 15 significant digits within 2 ulps of it: pixels cannot hold every
    normalised float (no pixel of a 384-high image divides back to 0.1), so the read takes the value a person or a
    writer meant. Two such decimals are farther apart than 4 ulps, so there is at most one, the nearest 15-digit one.
    """
    short = float(f"{v:.15g}")
    return short if abs(short - v) <= 2 * math.ulp(v) else v


def _near(start: float, good: Callable[[float], bool]) -> float:
    """The float within 4 ulps of ``start`` for which ``good`` holds (``start`` itself when none does)."""
    for direction in (math.inf, -math.inf):
        q = start
        for _ in range(5):
            if good(q):
                return q
            q = math.nextafter(q, direction)
    return start


def _norm(p: float, scale: float) -> float:
    """A pixel coordinate as a normalised one (`_snap` of ``p / scale``)."""
    return _snap(p / scale)


def _px(t: float, scale: float) -> float:
    """The pixel coordinate that reads back (`_norm`) as exactly ``t``, where one within a few ulps does."""
    return _near(t * scale, lambda q: _norm(q, scale) == t)


def _size(p0: float, t1: float, scale: float) -> float:
    """A box's width (or height) in pixels from ``p0`` whose far edge reads back as exactly ``t1``."""
    return _near(t1 * scale - p0, lambda d: _norm(p0 + d, scale) == t1)


def content_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What Pictograph keeps of a row, in normal form, without its id or asset (a save may rename new rows)."""

    def r(v: Any) -> Any:
        return None if _missing(v) else round(float(v), 7)

    kind = row["kind"]
    raw = row.get("attributes")
    if isinstance(raw, Mapping):
        attrs = schema.normal_value("attributes", raw) if raw else None
    else:
        attrs = None if _missing(raw) else raw
    if kind == "keypoints" and isinstance(attrs, dict) and "instance_id" in attrs:
        # a new pose is given its instance id by the save: the row's identity does not depend on it
        attrs = schema.normal_value("attributes", {k: v for k, v in attrs.items() if k != "instance_id"} or None)
    label = None if _missing(row.get("label")) else str(row["label"])
    score = r(row.get("score"))
    shown = json.dumps(attrs, sort_keys=True, default=str) if attrs else "{}"
    head = (kind, label, None if score == 1.0 else score, shown)
    if kind == "box":
        return (*head, *(r(row.get(c)) for c in ("x0", "y0", "x1", "y1")), r(row.get("rotation")) or 0.0)
    parts = schema.normal_points(row.get("points")) or ()
    geom = tuple(tuple(r(c) for c in p) for p in parts)
    vis = tuple(int(v) for v in row.get("visibility") or ()) if kind == "keypoints" else ()
    return (*head, geom, vis)


def fingerprint(row: Mapping[str, Any]) -> str:
    """A row's ``rev``: 16 hex digits of its `content_key` (Pictograph gives no revision of its own)."""
    return _digest(content_key(row))


def _digest(key: tuple[Any, ...]) -> str:
    return hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
