"""Datature Nexus annotations <-> canonical rows: reading one, building a create body, and what a create carries.

On the wire, coordinates are normalised to [0, 1] as ``[x, y]`` points (a ``Rectangle`` is its 4 corners, a
``Keypoints`` point ``[x, y, visibility]``) and tags are names. `row_from_wire` reads an annotation as a canonical
row, `body_from_row` builds the create body of a row (or names why Nexus cannot hold it), and `carried` /
`_not_carried` compare a row with the copy Nexus stored, field by field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .. import schema
from ._http import MalformedResponse
from ._rows import parses, stored_fields

__all__ = ["body_from_row", "carried", "fingerprint", "row_from_wire"]

#: contract columns a Nexus annotation has no place for: a row that sets one is read-only on Nexus
_NO_PLACE = ("text", "answer", "parent", "span_start", "span_end", "status", "author", "score", "split")


@parses("Nexus")
def row_from_wire(ann: dict[str, Any], dataset: str) -> dict[str, Any] | None:
    """A Nexus annotation as a canonical record; None for bound types the contract has no kind for."""
    try:
        kind, bound = ann["boundType"], ann.get("bound") or []
        row: dict[str, Any] = {"dataset": dataset, "asset": ann["assetId"], "id": ann["id"], "label": ann["tag"]}
        attrs = {str(a["name"]): a.get("value") for a in ann.get("attributes") or [] if a.get("value") is not None}
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Nexus sent an annotation without {exc}: {str(ann)[:200]}") from exc
    row["rev"] = str(ann.get("createDate", ""))
    row["frame"] = ann.get("frame")
    row["attributes"] = attrs or None
    if kind == "Rectangle":
        xs, ys = [float(p[0]) for p in bound], [float(p[1]) for p in bound]
        row.update(kind="box", x0=min(xs), y0=min(ys), x1=max(xs), y1=max(ys), rotation=0.0)
    elif kind == "Polygon":
        row.update(kind="polygon", points=(tuple(float(c) for p in bound for c in p[:2]),))
    elif kind == "Keypoints":
        flat = [c for p in bound for c in ((math.nan, math.nan) if int(p[2]) == 0 else (float(p[0]), float(p[1])))]
        row.update(kind="keypoints", points=(tuple(flat),), visibility=tuple(int(p[2]) for p in bound))
    elif kind == "Classification":
        row.update(kind="tag", value=True)
    else:
        return None
    return row


def _objects(answer: Any, what: str, key: str) -> list[dict[str, Any]]:
    """``answer`` as a list of JSON objects that each have ``key``; anything else is a `MalformedResponse`."""
    if not isinstance(answer, list) or not all(isinstance(a, dict) and key in a for a in answer):
        raise MalformedResponse(f"Nexus sent {what} that is not a list of objects with {key!r}: {str(answer)[:200]}")
    return answer


def _missing(v: Any) -> bool:
    return schema.normal_value("label", v) is None


def body_from_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The create body of a canonical row, or None and the problems that make it read-only on Nexus."""
    problems = [f"{c} cannot be stored on Nexus" for c in _NO_PLACE if not _missing(row[c])]
    kind, label = row["kind"], row["label"]
    if _missing(label):
        problems.append("a Nexus annotation needs a label (tag)")
    body: dict[str, Any] = {"assetId": row["asset"], "tag": label}
    if kind == "box":
        if not _missing(row["rotation"]) and float(row["rotation"]) != 0:
            problems.append("rotation: Nexus rectangles cannot be rotated")
        x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        body.update(boundType="Rectangle", bound=[[x0, y0], [x0, y1], [x1, y1], [x1, y0]])
    elif kind in ("polygon", "keypoints"):
        parts = schema.normal_points(row["points"]) or ()
        if len(parts) != 1:
            problems.append(f"points: a Nexus {kind} has exactly one part, this row has {len(parts)}")
        flat = parts[0] if parts else ()
        pairs = [[flat[i], flat[i + 1]] for i in range(0, len(flat) - 1, 2)]
        if kind == "polygon":
            body.update(boundType="Polygon", bound=pairs)
        else:
            vis = list(schema.normal_value("visibility", row["visibility"]) or [2] * len(pairs))
            bound = [[0.0, 0.0, 0] if math.isnan(x) else [x, y, v] for (x, y), v in zip(pairs, vis, strict=False)]
            body.update(boundType="Keypoints", bound=bound)
    elif kind == "tag":
        if row["value"] is False:
            problems.append("value: Nexus has no false tag (a Classification is present or absent)")
        body.update(boundType="Classification", bound=[])
    else:
        problems.append(f"kind: Nexus has no {kind!r} annotations")
    attrs = schema.normal_attributes(row["attributes"])
    bad = [k for k, v in attrs.items() if not _attribute_value_ok(v)]
    if bad:
        problems.append(f"attributes {bad}: Nexus attribute values are text, numbers or lists of text")
    if attrs:
        body["attributes"] = [{"name": k, "value": v} for k, v in attrs.items()]
    if not _missing(row["frame"]):
        body["frame"] = int(row["frame"])
    return (None, problems) if problems else (body, [])


def _attribute_value_ok(v: Any) -> bool:
    if isinstance(v, list):
        return all(isinstance(x, str) for x in v)
    return isinstance(v, str | int | float) and not isinstance(v, bool)


def fingerprint(ann: dict[str, Any]) -> str:
    """What a create body and the row it made have in common (ids and dates left out)."""
    attrs = sorted((str(a["name"]), json.dumps(a.get("value"))) for a in ann.get("attributes") or [])
    core = [ann.get("assetId"), ann.get("tag"), ann.get("boundType"), ann.get("bound") or [], ann.get("frame"), attrs]
    return hashlib.sha256(json.dumps(core).encode()).hexdigest()[:24]


def carried(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The fields of a canonical row that a Nexus annotation carries, in normal form, as a create stores them.

    Nexus's conventions are applied, so that a row and its re-read copy compare equal: a rectangle's rotation is
    0, a tag is true, a keypoint without visibility is visible, and an unlabelled one (NaN or visibility 0) is
    NaN at visibility 0. Extents of point kinds are derived from the points and left out.
    """
    return stored_fields(row)


def _not_carried(
    key: str, row: Mapping[Any, Any], new_id: str, stored: dict[str, Any] | None, edit: bool
) -> dict[str, Any] | None:
    """None when the row Nexus stored as ``new_id`` carries every field of the frame's ``row``; else the failure."""
    want = carried(row)
    back = row_from_wire(stored, str(row.get("dataset"))) if stored is not None else None
    got = carried(back) if back is not None else {}
    fields = [c for c in want if c not in got or want[c] != got[c]]
    if not fields:
        return None
    if stored is None:
        what = f"Nexus does not list the row it created as {new_id}"
    else:
        shown = "; ".join(f"{c}: sent {_short(want[c])}, stored {_short(got.get(c))}" for c in fields)
        what = f"the copy Nexus stored as {new_id} differs in {', '.join(fields)} ({shown})"
    if edit:
        kept = f"the old row {key} was not deleted, so both are on Nexus (reload to see them)"
    else:
        kept = f"{new_id} stays on Nexus (reload to see it)"
    error = f"row {key}: {what}; {kept}; push again to replace the copy"
    return {"id": key, "op": "update" if edit else "create", "new_id": new_id, "fields": fields, "error": error}


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
