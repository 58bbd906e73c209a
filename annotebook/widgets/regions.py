"""What the editor edits: regions in image pixels and whole-asset rows, and their conversion to table fields.

A `Region` is one spatial row (box, grounding, polygon, polyline, keypoints) with its geometry in pixels of its
asset, as floats. An `AssetRow` is one whole-asset row (tag, caption, qa). Both are immutable values: an edit
replaces one by another, which is what makes undo exact.

Pixels come from normalised coordinates by a multiply and go back by a divide, and ``(x * w) / w`` is not always
``x`` in floating point. `Units` remembers the normalised value of every pixel value it has produced or written,
so an unchanged coordinate goes back to the table bit for bit, and an undo restores exactly what was loaded.

>>> units = Units(640, 480)
>>> r = region_from_row({"id": "1", "kind": "box", "label": "cat", "x0": 0.1, "y0": 0.2, "x1": 0.3,
...                      "y1": 0.4, "rotation": 0.0}, units)
>>> fields_of(r, units)["x0"] == 0.1
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import schema

__all__ = [
    "ASSET_KINDS",
    "BOX_KINDS",
    "POINT_KINDS",
    "REGION_KINDS",
    "AssetRow",
    "Parts",
    "Region",
    "Units",
    "asset_row_fields",
    "asset_row_from_row",
    "fields_of",
    "normal_form",
    "region_from_row",
]

BOX_KINDS = ("box", "grounding")
POINT_KINDS = ("polygon", "polyline", "keypoints")
REGION_KINDS = BOX_KINDS + POINT_KINDS
ASSET_KINDS = ("tag", "caption", "qa")
EDGE_EPS = 1e-9  # a normalised coordinate this close to 0 or 1 is written as 0 or 1

#: vertex parts: a tuple of flat (x, y, x, y, ...) float tuples, as in the table, but in pixels
Parts = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Region:
    """One spatial row in pixels; ``id`` is the row's id (empty before the row exists)."""

    id: str
    kind: str
    label: str | None
    box: tuple[float, float, float, float] | None = None
    rotation: float = 0.0
    points: Parts = ()
    visibility: tuple[int, ...] | None = None
    attributes: Mapping[str, Any] | None = None
    score: float | None = None
    text: str | None = None  # a grounding row's phrase, shown, not edited here


@dataclass(frozen=True)
class AssetRow:
    """One whole-asset row: a tag (``label``, ``value``), a caption (``text``) or a qa (``text``, ``answer``)."""

    id: str
    kind: str
    label: str | None = None
    value: bool | None = None
    text: str | None = None
    answer: str | None = None


class Units:
    """Pixels <-> normalised coordinates of one asset, exact on the way back for every value seen."""

    def __init__(self, width: float, height: float):
        self.width = float(width)
        self.height = float(height)
        self._seen: tuple[dict[float, float], dict[float, float]] = ({}, {})

    def to_px(self, value: float, axis: int) -> float:
        """Normalised ``value`` on ``axis`` (0: x, 1: y) in pixels; remembered for the way back."""
        if value != value:  # NaN: an unlabelled keypoint
            return math.nan
        px = value * (self.width if axis == 0 else self.height)
        self._seen[axis].setdefault(px, value)
        return px

    def to_norm(self, px: float, axis: int) -> float:
        """Pixel ``px`` on ``axis`` normalised: the remembered value if this pixel value came from one."""
        if px != px:
            return math.nan
        seen = self._seen[axis]
        value = seen.get(px)
        if value is None:
            value = _snapped(px / (self.width if axis == 0 else self.height))
            seen[px] = value
        return value

    def part_to_px(self, part: tuple[float, ...]) -> tuple[float, ...]:
        """A flat (x, y, ...) part in pixels."""
        return tuple(self.to_px(float(v), i % 2) for i, v in enumerate(part))

    def part_to_norm(self, part: tuple[float, ...]) -> tuple[float, ...]:
        """A flat (x, y, ...) part normalised."""
        return tuple(self.to_norm(v, i % 2) for i, v in enumerate(part))


def _snapped(value: float) -> float:
    """A new normalised coordinate within rounding of the image's edge is the edge: 0 or 1, never 1.97e-17."""
    if abs(value) < EDGE_EPS:
        return 0.0
    if abs(value - 1.0) < EDGE_EPS:
        return 1.0
    return value


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _score(v: Any) -> float | None:
    """A float, or None for a missing value (None, NA, NaN)."""
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else float(v)


def region_from_row(row: Mapping[str, Any], units: Units) -> Region | None:
    """The `Region` of a table row (normalised coordinates), or None when its geometry cannot be edited."""
    kind = row["kind"]
    common = {
        "id": str(row["id"]),
        "kind": kind,
        "label": _text(row.get("label")),
        "attributes": row.get("attributes") if isinstance(row.get("attributes"), Mapping) else None,
        "score": _score(row.get("score")),
    }
    if kind in BOX_KINDS:
        box = tuple(float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        if not all(math.isfinite(v) for v in box):
            return None
        rotation = _score(row.get("rotation"))
        px = (units.to_px(box[0], 0), units.to_px(box[1], 1), units.to_px(box[2], 0), units.to_px(box[3], 1))
        return Region(
            box=px,
            rotation=0.0 if rotation is None else rotation,
            text=_text(row.get("text")),
            **common,
        )
    if kind in POINT_KINDS:
        points = schema.normal_points(row.get("points"))
        if not points:
            return None
        visibility = schema.normal_value("visibility", row.get("visibility")) if kind == "keypoints" else None
        return Region(points=tuple(units.part_to_px(p) for p in points), visibility=visibility, **common)
    return None


def fields_of(region: Region, units: Units) -> dict[str, Any]:
    """The table fields (normalised) that ``region`` determines: geometry, label, attributes, score."""
    fields: dict[str, Any] = {
        "kind": region.kind,
        "label": region.label,
        "attributes": dict(region.attributes) if region.attributes else None,
        "score": math.nan if region.score is None else region.score,
    }
    if region.kind in BOX_KINDS and region.box is not None:
        x0, y0, x1, y1 = region.box
        fields.update(
            x0=units.to_norm(x0, 0),
            y0=units.to_norm(y0, 1),
            x1=units.to_norm(x1, 0),
            y1=units.to_norm(y1, 1),
            rotation=region.rotation,
        )
    else:
        points = tuple(units.part_to_norm(p) for p in region.points)
        fields["points"] = points
        fields.update(zip(("x0", "y0", "x1", "y1"), schema.part_extent(points), strict=True))
        if region.kind == "keypoints":
            fields["visibility"] = region.visibility
    return fields


def asset_row_from_row(row: Mapping[str, Any]) -> AssetRow:
    """The `AssetRow` of a tag, caption or qa table row."""
    value = row.get("value")
    return AssetRow(
        id=str(row["id"]),
        kind=row["kind"],
        label=_text(row.get("label")),
        value=None if value is None or value is pd.NA else bool(value),
        text=_text(row.get("text")),
        answer=_text(row.get("answer")),
    )


def asset_row_fields(row: AssetRow) -> dict[str, Any]:
    """The table fields of a whole-asset row."""
    return {"kind": row.kind, "label": row.label, "value": row.value, "text": row.text, "answer": row.answer}


def normal_form(item: Any) -> Any:
    """A value that compares equal exactly when two items (regions, rows, dataclasses) are the same (NaN == NaN)."""
    if item is None:
        return None
    values = []
    for name in item.__dataclass_fields__:
        v = getattr(item, name)
        if name == "points":
            v = tuple(tuple(None if x != x else x for x in part) for part in v)
        elif name == "attributes":
            v = schema.normal_attributes(v)
        values.append((name, v))
    return (type(item).__name__, tuple(values))
