"""Label Studio annotations <-> canonical rows: a project's label config, an annotation's result list as rows
(through the one Label Studio mapping, `annotebook.formats.labelstudio`), and rows as that result list.

Vocabulary. A task is an asset (its id); an annotation (or a prediction, ``p<id>``) is the unit one write
replaces, named in each row's ``annotation`` column; a result is a row, whose id is ``<annotation>/<result id>``
(result ids repeat across annotations: an annotation made from a prediction keeps its result ids). Coordinates are
percent of ``original_width`` / ``original_height``, which every written region carries (Label Studio's COCO and
YOLO converters need them).

The label config (``parsed_label_config``: control name -> type, ``to_name``, labels) decides where a row goes:
its own control (``attributes["ls_from_name"]``), else the mapping's default name, else the one control of its
type that defines its label. A label no control defines is refused before any request, naming the labels the
config has.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import schema
from ..errors import ValidationError
from ..formats import labelstudio as lsf

__all__ = ["LabelConfig", "content_key", "result_id", "results_of"]

#: the control types (lower case, as results name them) that can hold each kind
TYPES = {
    "box": ("rectanglelabels", "rectangle"),
    "polygon": ("polygonlabels", "polygon"),
    "polyline": ("polygonlabels", "polygon", "polylinelabels"),
    "keypoints": ("keypointlabels", "keypoint"),
    "tag": ("choices",),
    "mask": ("brushlabels", "brush"),
    "caption": ("textarea",),
}
#: contract columns a Label Studio result has no place for
_NO_PLACE = ("answer", "parent", "span_start", "span_end", "status", "frame", "split")


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def kind_of(row: Mapping[str, Any]) -> str:
    """The row's kind, with a tag that holds a brush mask called ``mask``."""
    attrs = row.get("attributes")
    if row.get("kind") == "tag" and isinstance(attrs, Mapping) and isinstance(attrs.get("mask"), Mapping):
        return "mask"
    return str(row.get("kind"))


@dataclass(frozen=True)
class Control:
    name: str
    type: str  # lower case, as a result's ``type``
    to_name: tuple[str, ...]
    labels: tuple[str, ...]


class LabelConfig:
    """A project's controls, from its ``parsed_label_config``."""

    def __init__(self, parsed: Mapping[str, Any]):
        self.controls = {
            str(name): Control(
                str(name),
                str(c.get("type", "")).lower(),
                tuple(map(str, c.get("to_name") or ())),
                tuple(map(str, c.get("labels") or ())),
            )
            for name, c in (parsed or {}).items()
            if isinstance(c, Mapping)
        }

    def labels(self) -> list[str]:
        """Every label any control defines, in config order."""
        return list(dict.fromkeys(label for c in self.controls.values() for label in c.labels))

    def of_kind(self, kind: str) -> list[Control]:
        return [c for c in self.controls.values() if c.type in TYPES.get(kind, ())]

    def control(self, row: Mapping[str, Any]) -> tuple[Control | None, str | None]:
        """The control ``row`` is written to, or None and why not."""
        kind = kind_of(row)
        attrs = row.get("attributes") if isinstance(row.get("attributes"), Mapping) else {}
        fits = self.of_kind(kind)
        if not fits:
            return None, f"the label config has no control for {kind} rows (it has {self._summary()})"
        named = attrs.get("ls_from_name") if attrs else None
        if named is not None:
            found = [c for c in fits if c.name == named]
            return (found[0], None) if found else (None, f"the label config has no {kind} control {named!r}")
        default = [c for c in fits if c.name == lsf.DEFAULT_FROM.get(kind)]
        label = None if _missing(row.get("label")) else str(row["label"])
        if default and (label is None or not default[0].labels or label in default[0].labels):
            return default[0], None
        takes = [c for c in fits if not c.labels or label in c.labels] if label is not None else fits
        if len(takes) >= 1:
            return takes[0], None
        return None, self._unknown(label, fits)

    def _unknown(self, label: str | None, fits: list[Control]) -> str:
        defined = {c.name: list(c.labels) for c in fits}
        return f"unknown label {label!r}: the project's label config defines {defined}"

    def _summary(self) -> str:
        return ", ".join(f"{c.type} {c.name!r}" for c in self.controls.values()) or "no controls"

    def problems(self, row: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Why ``row`` cannot be written under this config, as (column, problem) pairs; empty when it can."""
        out = [
            (c, f"{c} cannot be stored in a Label Studio result")
            for c in _NO_PLACE
            if c in row and not _missing(row[c])
        ]
        kind = kind_of(row)
        if kind not in TYPES:
            return [
                *out,
                (
                    "kind",
                    f"Label Studio results hold box, polygon, polyline, keypoints, tag and caption rows, not {kind}",
                ),
            ]
        if not lsf._can_write(dict(row), (1, 1)):
            out.append(
                (
                    "points",
                    f"a Label Studio {kind} result cannot hold this row (multi-part polygon, a pose of "
                    "several keypoints, or a false tag)",
                )
            )
        control, why = self.control(row)
        if control is None:
            out.append(("label", str(why)))
        elif control.labels and kind != "caption":
            label = None if _missing(row.get("label")) else str(row["label"])
            if label not in control.labels:
                out.append(
                    (
                        "label",
                        f"unknown label {label!r}: the project's label config defines "
                        f"{list(control.labels)} for {control.name!r}",
                    )
                )
        return out

    def check(self, rows: pd.DataFrame) -> None:
        """Raise `ValidationError` naming every row this config refuses, with the config's labels."""
        problems = [{"id": r["id"], "column": c, "problem": p} for r in _records(rows) for c, p in self.problems(r)]
        if problems:
            raise ValidationError(
                f"{len({p['id'] for p in problems})} row(s) cannot be written to Label Studio (its label config "
                f"defines the labels {self.labels()}); nothing was written",
                pd.DataFrame(problems),
            )


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def result_id(row_id: str, taken: set[str]) -> str:
    """The result id a row is written with: its own (after ``<annotation>/``), or a fresh one for a new row."""
    if "/" in row_id and not row_id.startswith(schema_new()):
        return row_id.split("/", 1)[1]
    rid = row_id.removeprefix(schema_new())[:10] or secrets.token_hex(5)
    while rid in taken:
        rid = secrets.token_hex(5)
    return rid


def schema_new() -> str:
    return "new-"


def results_of(rows: list[dict[str, Any]], config: LabelConfig, size: tuple[int, int] | None) -> list[dict[str, Any]]:
    """The result list of one annotation's rows (their ids already the result ids), written by the one mapping
    with each row's control from the config."""
    out: list[dict[str, Any]] = []
    for r in rows:
        control, _ = config.control(r)
        attrs = dict(r.get("attributes") or {})
        if control is not None:
            attrs["ls_from_name"] = control.name
            attrs.setdefault("ls_to_name", control.to_name[0] if control.to_name else lsf.DEFAULT_TO)
        row = {**r, "attributes": attrs, "score": None if _missing(r.get("score")) else r["score"]}
        for c in ("rotation", "x0", "y0", "x1", "y1"):
            if _missing(row.get(c)):
                row[c] = None if c != "rotation" else 0.0
        if kind_of(row) == "tag" and _missing(row.get("value")):
            row["value"] = True
        out += lsf._results(row, size)
    return lsf._merge_choices(out)


def content_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What Label Studio keeps of a row, in normal form, without its id, rev, author or score: how a read-back row
    is matched to the row written (coordinates to 1e-9 of the image: percent round trips move the last bits)."""

    def r(v: Any) -> Any:
        return None if _missing(v) else round(float(v), 9)

    kind = str(row.get("kind"))
    attrs = {
        k: v
        for k, v in schema.normal_attributes(row.get("attributes")).items()
        if k not in ("ls_from_name", "ls_to_name")
    }
    label = None if _missing(row.get("label")) else str(row["label"])
    text = None if _missing(row.get("text")) else str(row["text"])
    head = (str(row.get("asset")), kind, label, text, json.dumps(attrs, sort_keys=True, default=str))
    if kind == "box":
        return (*head, *(r(row.get(c)) for c in ("x0", "y0", "x1", "y1")), r(row.get("rotation")) or 0.0)
    parts = schema.normal_points(row.get("points")) or ()
    return (*head, tuple(tuple(r(c) for c in p) for p in parts))
