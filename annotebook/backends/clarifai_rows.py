"""Clarifai annotations <-> canonical rows: reading one, building a POST / PATCH body, and what an annotation keeps.

On the wire (``shared/protocols/clarifai-superannotate-pictograph.md`` part A) coordinates are normalised and y
comes first: a box is ``top_row / left_col / bottom_row / right_col``, a point ``{row, col}``; a coordinate equal to 0
is left out (proto3 defaults) and reads as 0. Labels are concepts with a ``value`` (1 present, 0 explicitly absent).
One annotation holds one region (or whole-input concepts), in one frame for a video. An annotation that holds
several concepts reads as several rows, ``<annotation id>#<concept id>``; their value is patched with ``merge`` and
a dropped one with ``remove``, the rest of the annotation staying as it is.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import schema
from ..errors import MalformedResponse
from ._rows import parses, stored_fields

__all__ = [
    "STATUS_CODES",
    "STATUS_NAMES",
    "annotation_id",
    "body_from_row",
    "carried",
    "rows_from_wire",
    "split_id",
]

#: annotation status codes (``status_code_pb2``) by name, and back
STATUS_CODES = {
    "ANNOTATION_SUCCESS": 24150, "ANNOTATION_PENDING": 24151, "ANNOTATION_FAILED": 24152,
    "ANNOTATION_UNKNOWN_STATUS": 24154, "ANNOTATION_INVALID_ARGUMENT": 24155, "ANNOTATION_PERMISSION_DENIED": 24156,
    "ANNOTATION_AWAITING_REVIEW": 24157, "ANNOTATION_REVIEW_DENIED": 24158,
    "ANNOTATION_AWAITING_CONSENSUS_REVIEW": 24159,
}  # fmt: skip
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
DEFAULT_STATUS = "ANNOTATION_SUCCESS"

#: Point.visibility <-> COCO's 0 (not labelled), 1 (occluded), 2 (visible)
_VISIBILITY_IN = {"VISIBLE": 2, "NOT_VISIBLE": 1, "NOT_PRESENT": 0, "NOT_SET": 2, 1: 2, 2: 1, 3: 0, 0: 2}
_VISIBILITY_OUT = {2: "VISIBLE", 1: "NOT_VISIBLE", 0: "NOT_PRESENT"}

#: contract columns a Clarifai annotation has no place for
_NO_PLACE = ("text", "answer", "parent", "span_start", "span_end", "split")
_KINDS = ("box", "polygon", "keypoints", "tag")


def split_id(row_id: str) -> tuple[str, str | None]:
    """The annotation id of a row, and its concept when the annotation holds several (``<ann>#<concept>``)."""
    ann, sep, concept = str(row_id).partition("#")
    return ann, (concept if sep else None)


def annotation_id(client_id: str) -> str:
    """The annotation id a POST chooses for a client-made row: derived from its client id, so a retried POST of the
    same row names the same annotation and cannot make a second one."""
    match = re.fullmatch(r"new-([0-9a-f]{8,64})", str(client_id))
    return match.group(1) if match else hashlib.sha1(str(client_id).encode()).hexdigest()


def _status_name(status: Any) -> str | None:
    code = status.get("code") if isinstance(status, dict) else None
    if code is None:
        return None
    if isinstance(code, str) and not code.isdigit():
        return code
    return STATUS_NAMES.get(int(code), str(code))


def _float(d: Mapping[str, Any], key: str) -> float:
    return float(d.get(key) or 0.0)  # an omitted coordinate is 0


def _geometry(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The kind and geometry fields of a region's ``region_info``; None for a region the contract has no kind for."""
    if "bounding_box" in info:
        b = info["bounding_box"] or {}
        return {"kind": "box", "x0": _float(b, "left_col"), "y0": _float(b, "top_row"), "x1": _float(b, "right_col"),
                "y1": _float(b, "bottom_row"), "rotation": 0.0}  # fmt: skip
    if "polygon" in info:
        pts = (info["polygon"] or {}).get("points") or []
        return {"kind": "polygon", "points": (tuple(c for p in pts for c in (_float(p, "col"), _float(p, "row"))),)}
    pts = info.get("keypoint_locations") or ([info["point"]] if "point" in info else None)
    if pts is not None:
        vis = tuple(_VISIBILITY_IN.get(p.get("visibility", "VISIBLE"), 2) for p in pts)
        flat = tuple(
            c
            for p, v in zip(pts, vis, strict=True)
            for c in ((math.nan, math.nan) if v == 0 else (_float(p, "col"), _float(p, "row")))
        )
        return {"kind": "keypoints", "points": (flat,), "visibility": vis}
    return None


@parses("Clarifai")
def rows_from_wire(ann: Mapping[str, Any], dataset: str) -> list[dict[str, Any]]:
    """A Clarifai annotation as canonical records (none for an empty input-level annotation or an unknown region)."""
    try:
        ann_id, asset = str(ann["id"]), str(ann["input_id"])
        data = ann.get("data") or {}
        frames = data.get("frames") or []
        frame = None
        if frames:
            info = frames[0].get("frame_info") or {}
            frame = int(info.get("number") or info.get("index") or 0)
            data = frames[0].get("data") or {}
        model = ann.get("model_version_id") or ((ann.get("worker") or {}).get("model") or {}).get("model_version", {})
        model = model.get("id") if isinstance(model, dict) else model
        user = ann.get("user_id") or ((ann.get("worker") or {}).get("user") or {}).get("id")
        base = {
            "dataset": dataset, "asset": asset, "rev": str(ann.get("modified_at") or ann.get("created_at") or ""),
            "status": _status_name(ann.get("status")), "author": f"model:{model}" if model else user, "frame": frame,
            "attributes": dict(ann["annotation_info"]) if ann.get("annotation_info") else None,
        }  # fmt: skip
        parts: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for region in data.get("regions") or []:
            geometry = _geometry(region.get("region_info") or {})
            if geometry is not None:
                parts.append((geometry, (region.get("data") or {}).get("concepts") or [{}]))
        if data.get("concepts"):
            parts.append(({"kind": "tag"}, data["concepts"]))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"Clarifai sent an annotation without {exc}: {str(ann)[:200]}") from exc
    rows = []
    for geometry, concepts in parts:
        for c in concepts:
            value = float(c["value"]) if c.get("value") is not None else 1.0  # a missing value reads as 1
            row = {**base, **geometry, "label": c.get("id") or c.get("name")}
            if geometry["kind"] == "tag":
                row["value"] = True if model else value > 0
            if model:
                row["score"] = value
            rows.append(row)
    many = len(rows) > 1
    for row in rows:
        row["id"] = f"{ann_id}#{row['label']}" if many else ann_id
    return rows


def _missing(v: Any) -> bool:
    return schema.normal_value("label", v) is None


def _concept(label: str, value: Any) -> dict[str, Any]:
    return {"id": label, "name": label, "value": 0.0 if value is False else 1.0}


def _region(row: Mapping[str, Any], concept: dict[str, Any]) -> dict[str, Any]:
    kind = row["kind"]
    if kind == "box":
        box = {"top_row": float(row["y0"]), "left_col": float(row["x0"]), "bottom_row": float(row["y1"]),
               "right_col": float(row["x1"])}  # fmt: skip
        info: dict[str, Any] = {"bounding_box": box}
    else:
        flat = (schema.normal_points(row["points"]) or ((),))[0]
        pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
        if kind == "polygon":
            info = {"polygon": {"points": [{"row": y, "col": x} for x, y in pairs]}}
        else:
            vis = schema.normal_value("visibility", row["visibility"]) or (2,) * len(pairs)
            info = {"keypoint_locations": [
                {"visibility": "NOT_PRESENT"} if x is None or v == 0 else {"row": y, "col": x,
                                                                           "visibility": _VISIBILITY_OUT[int(v)]}
                for (x, y), v in zip(pairs, vis, strict=False)
            ]}  # fmt: skip
    return {"region_info": info, "data": {"concepts": [concept]}}


def problems_of(row: Mapping[str, Any]) -> list[str]:
    """Why a Clarifai annotation cannot carry ``row`` (empty when it can)."""
    problems = [f"{c} cannot be stored on Clarifai" for c in _NO_PLACE if not _missing(row.get(c))]
    kind = row.get("kind")
    if kind not in _KINDS:
        problems.append(f"kind: Clarifai has no {kind!r} annotations (box, polygon, keypoints, tag)")
    if _missing(row.get("label")):
        problems.append("label: a Clarifai annotation needs a concept")
    author = row.get("author")
    if not _missing(author) and str(author).startswith("model:"):
        problems.append("author: model-made annotations are read-only on Clarifai (add a new row instead)")
    if not _missing(row.get("score")):
        problems.append("score: only model-made annotations have a score on Clarifai")
    if kind == "box" and not _missing(row.get("rotation")) and float(row["rotation"]) != 0:
        problems.append("rotation: Clarifai boxes cannot be rotated")
    if kind in ("polygon", "keypoints") and len(schema.normal_points(row.get("points")) or ()) != 1:
        problems.append(f"points: a Clarifai {kind} has exactly one part")
    status = row.get("status")
    if not _missing(status) and str(status) not in STATUS_CODES:
        problems.append(f"status: {status!r} is not one of {sorted(STATUS_CODES)}")
    _, concept = split_id(str(row.get("id")))
    if concept is not None and concept != row.get("label"):
        problems.append("label: this row is one concept of an annotation with several; its label cannot change")
    bad = [k for k, v in schema.normal_attributes(row.get("attributes")).items() if isinstance(v, bytes)]
    if bad:
        problems.append(f"attributes {bad}: not JSON")
    return problems


def body_from_row(row: Mapping[str, Any], ann_id: str) -> dict[str, Any]:
    """The annotation a POST or an overwrite PATCH sends for ``row`` (checked by `problems_of` first)."""
    concept = _concept(str(row["label"]), row.get("value") if row["kind"] == "tag" else True)
    data: dict[str, Any] = {"concepts": [concept]} if row["kind"] == "tag" else {"regions": [_region(row, concept)]}
    if not _missing(row.get("frame")):
        data = {"frames": [{"frame_info": {"number": int(row["frame"])}, "data": data}]}
    body: dict[str, Any] = {"id": ann_id, "input_id": str(row["asset"]), "data": data}
    attrs = schema.normal_attributes(row.get("attributes"))
    if attrs:
        body["annotation_info"] = attrs
    status = row.get("status")
    if not _missing(status):
        body["status"] = {"code": STATUS_CODES[str(status)]}
    if not _missing(row.get("author")):
        body["user_id"] = str(row["author"])
    return body


def concept_body(row: Mapping[str, Any], ann_id: str, value: bool = True) -> dict[str, Any]:
    """A merge / remove PATCH of one concept of a several-concept annotation (its value, or the concept itself)."""
    concept = _concept(str(row["label"]), row.get("value") if value else True)
    return {"id": ann_id, "input_id": str(row["asset"]), "data": {"concepts": [concept]}}


def carried(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The fields of ``row`` a Clarifai annotation keeps, in normal form, as it stores them: a box's rotation is 0,
    a tag without a value is true, a missing status is success, an unlabelled keypoint is NaN at visibility 0,
    coordinates at 32 bits."""
    out = stored_fields(row, ("status",))
    if out["status"] is None:
        out["status"] = DEFAULT_STATUS
    for c in ("x0", "y0", "x1", "y1"):  # proto floats: Clarifai keeps 32 bits of a coordinate
        if isinstance(out.get(c), float):
            out[c] = _float32(out[c])
    if out.get("points"):
        out["points"] = tuple(tuple(None if v is None else _float32(v) for v in part) for part in out["points"])
    return out


def _float32(value: float) -> float:
    return float(np.float32(value))
