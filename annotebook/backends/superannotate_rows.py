"""SuperAnnotate annotation JSON <-> canonical rows: one item's JSON read as rows, and rows as that JSON.

The instance mapping is the format module's (`annotebook.formats.superannotate`: ``parse_item`` and
``instance_of``), one mapping for files and for the wire: bbox, rbbox and ellipse as boxes, polygons with holes,
polylines, points, item tags, attribute groups, ``sa.`` keys for the instance's own fields, video keyframes as rows
with ``frame``.

Identity. An instance in SuperAnnotate's JSON has no id of its own, so a row's id is its item, its position and the
time of the item's last write, ``<item id>#<n>@<metadata.lastAction.timestamp>`` (``<item id>#<n>`` for an item
never written). Every upload sets ``lastAction`` (the SDK does too), so a write gives every row of the item a new
id that no earlier row had (as Vi's imports do), and the sync engine learns the new ids by `row_key`; an id is never
reused for another row, which a position alone would be after a deletion. There is no revision either: a row's
``rev`` is a digest of its item's JSON plus its position (the backend hashes the bytes the server sent; else
`item_digest`): any change of the item changes every rev of it, one hash an item rather than one a row. The sync
engine compares SuperAnnotate rows by content (`row_key`), not by rev, and whether a row is sent back unchanged is
decided by its content (`content_key`) too.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import schema
from ..errors import FormatError
from ..formats.superannotate import instance_of, parse_item
from ._http import MalformedResponse
from ._rows import parses

__all__ = ["content_key", "item_digest", "item_json", "kept_parts", "problems_of", "rows_from_item"]

#: contract columns an instance has no place for
_NO_PLACE = ("text", "answer", "parent", "span_start", "span_end", "status", "split")


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


@parses("SuperAnnotate")
def rows_from_item(
    doc: Any, dataset: str, asset: str | None = None, fps: float = 1.0, sources: bool = False, digest: str = ""
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any] | None]]:
    """(asset row, canonical rows, with ``sources`` the raw instance of each row or None for a tag, else []) of
    one item's JSON. ``digest`` names the item's content in the rows' revs (`item_digest` when not given).

    Instances of a type the contract cannot hold (cuboid, template ...) are not rows; a write of the item sends them
    back as read (`kept_parts`), so a push never drops them.
    """
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        raise MalformedResponse(f"SuperAnnotate sent an annotation without metadata: {str(doc)[:200]}")
    asset = str(asset if asset is not None else meta.get("id", meta.get("name")))
    try:
        arow, found = parse_item(doc, file=f"SuperAnnotate item {asset}", asset=asset, skip_unsupported=True, fps=fps)
    except FormatError as exc:
        raise MalformedResponse(f"SuperAnnotate sent an annotation it cannot have stored: {exc}") from exc
    raw: list[dict[str, Any] | None] = []
    video = any("frame" in r for r in found)
    usable = [i for i in doc.get("instances") or [] if isinstance(i, dict) and _known(i, video)] if sources else []
    digest = digest or item_digest(doc)
    action = meta.get("lastAction")
    stamp = action.get("timestamp") if isinstance(action, dict) else None
    suffix = f"@{stamp}" if isinstance(stamp, int | str) and not isinstance(stamp, bool) else ""
    rows = []
    for n, r in enumerate(found):
        r.pop("own", None)
        r["dataset"], r["asset"], r["id"], r["rev"] = dataset, asset, f"{asset}#{n}{suffix}", f"{digest}.{n}"
        rows.append(r)
        if sources:
            raw.append(usable[n] if r["kind"] != "tag" and not video and n < len(usable) else None)
    arow["name"] = meta.get("name") or arow["name"]
    return {"dataset": dataset, **arow}, rows, raw


def item_digest(doc: Mapping[str, Any]) -> str:
    """12 hex digits of an item's instances and tags (its metadata, the status among it, left out), in the order
    the server sends their keys."""
    body = json.dumps([doc.get("instances") or [], doc.get("tags") or []], separators=(",", ":"), check_circular=False)
    return hashlib.sha1(body.encode()).hexdigest()[:12]


def _known(inst: Mapping[str, Any], video: bool) -> bool:
    kind = (inst.get("meta") or {}).get("type") if video else inst.get("type")
    return kind in ("bbox", "rbbox", "ellipse", "polygon", "polyline", "point")


def kept_parts(doc: Any) -> dict[str, list[Any]]:
    """What an item's JSON holds beyond its rows: instances of types the rows leave out (cuboid, template ...) and
    the review comments. A write of the item sends them back, so a push never drops them."""
    instances = doc.get("instances") or [] if isinstance(doc, dict) else []
    video = isinstance(doc, dict) and (doc.get("metadata") or {}).get("duration") is not None
    others = [i for i in instances if isinstance(i, dict) and not _known(i, video)]
    comments = doc.get("comments") or [] if isinstance(doc, dict) else []
    return {"instances": others, "comments": list(comments)}


def problems_of(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Why an instance cannot carry ``row``, as (column, problem) pairs; empty when it can."""
    out = [(c, f"{c} cannot be stored in a SuperAnnotate instance") for c in _NO_PLACE if not _missing(row.get(c))]
    kind = row.get("kind")
    if _missing(row.get("label")):
        out.append(("label", "a SuperAnnotate instance needs a className"))
    if not _missing(row.get("frame")):
        out.append(("frame", "video items are read here, not written: write them with the SDK"))
    if kind == "tag":
        if row.get("value") is False:
            out.append(("value", "a SuperAnnotate item tag is present or absent: delete the row instead of false"))
    elif kind == "box":
        if not float(row["x1"]) > float(row["x0"]) or not float(row["y1"]) > float(row["y0"]):
            out.append(("x1", "a SuperAnnotate box has x2 > x1 and y2 > y1"))
    elif kind in ("polygon", "polyline", "keypoints"):
        parts = schema.normal_points(row.get("points")) or ()
        if kind != "polygon" and len(parts) != 1:
            out.append(("points", f"a SuperAnnotate {kind} has exactly one part, this row has {len(parts)}"))
        if kind == "keypoints" and parts and (len(parts[0]) != 2 or any(math.isnan(c) for c in parts[0])):
            out.append(("points", "a SuperAnnotate point is one labelled point: split a pose into one row a joint"))
    else:
        out.append(("kind", f"SuperAnnotate takes box, polygon, polyline, keypoints and tag rows, not {kind}"))
    score: Any = row.get("score")
    if not _missing(score) and not 0 <= float(score) <= 1:
        out.append(("score", "a score is within [0, 1] (probability 0..100)"))
    return out


def item_json(
    name: str,
    rows: list[dict[str, Any]],
    size: tuple[float, float],
    raw: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
    action: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The upload body of one item: ``{"metadata": {"name", "lastAction"}, "instances", "tags"}`` from its rows.

    ``raw`` maps a row's ``rev`` to (the row as read, the instance it was read from): a row whose content is the
    read one's goes back as it was read (its ``trackingId``, ``pointLabels``, ``createdAt`` ... kept, and no float
    moved by a pixel round trip).
    """
    instances, tags = [], []
    for r in rows:
        if r["kind"] == "tag":
            tags.append(str(r["label"]))
            continue
        kept = raw.get(str(r.get("rev"))) if not _missing(r.get("rev")) else None
        if kept is not None and content_key(kept[0]) == content_key(r):
            instances.append(dict(kept[1]))
        else:
            clean = {k: None if not isinstance(v, tuple | dict) and _missing(v) else v for k, v in r.items()}
            instances.append(instance_of(clean, size, ident=False))
    meta: dict[str, Any] = {"name": name, **({"lastAction": dict(action)} if action else {})}
    return {"metadata": meta, "instances": instances, "tags": tags}


def content_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What SuperAnnotate keeps of a row, in normal form, without its id or asset."""

    def r(v: Any) -> Any:
        return None if _missing(v) else round(float(v), 7)

    kind = row["kind"]
    attrs = schema.normal_value("attributes", row.get("attributes"))
    label = None if _missing(row.get("label")) else str(row["label"])
    score = r(row.get("score"))
    author = None if _missing(row.get("author")) else str(row["author"])
    frame = None if _missing(row.get("frame")) else int(row["frame"])
    head = (kind, label, None if score == 1.0 else score, author, frame, json.dumps(attrs, sort_keys=True, default=str))
    if kind == "tag":
        return head
    if kind == "box":
        return (*head, *(r(row.get(c)) for c in ("x0", "y0", "x1", "y1")), r(row.get("rotation")) or 0.0)
    parts = schema.normal_points(row.get("points")) or ()
    return (*head, tuple(tuple(r(c) for c in p) for p in parts))
