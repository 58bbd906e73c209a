"""Datature Vi annotations <-> canonical rows: reading an asset's annotations, and the upload document of its rows.

Mapping to the data contract. A ``Caption`` annotation is a caption row (``text``); a
``PhraseGroundingBoundingBox`` a grounding row whose box is its ``bound`` corners, whose ``parent`` is the caption
sharing its ``aggregation.whole.id``, whose span is its ``target`` (read as character offsets ``[start, end)`` of
the caption: the SDK does not say whether it counts characters or tokens) and whose ``text`` is the caption's text at
that span; its ``label`` is the dataset tag of index ``spec.tag``. A ``Vqa`` annotation (one question / answer
pair; the SDK cannot decode it) is a qa row.

Rows go back as one Vi JSONL upload document per asset (`_document`); an upload gives every row a new id, so rows
are matched to their new copies by content (`_content_key`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .. import schema
from ..formats import Tables
from ..formats.vi_jsonl import tables_to_vi_jsonl
from ._http import MalformedResponse
from ._rows import parses

__all__ = ["row_from_wire", "rows_from_wire"]


def _bound_box(bound: Any) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in bound]
    ys = [float(p[1]) for p in bound]
    return min(xs), min(ys), max(xs), max(ys)


@parses("Vi")
def rows_from_wire(
    items: Sequence[dict[str, Any]], dataset: str, asset: str, tags: Mapping[int, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The canonical rows of one asset's annotations, and the annotations that have no canonical kind.

    Captions first (a grounding row needs its caption's text), then the rest in the server's order.
    """
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    captions: dict[str, tuple[str, str]] = {}  # whole id -> (caption row id, text)
    for ann in items:
        spec = ann.get("spec") or {}
        contents = spec.get("contents") or {}
        if contents.get("kind") == "Caption":
            whole = str(((spec.get("aggregation") or {}).get("whole") or {}).get("id", ""))
            text = contents.get("contents")
            captions[whole] = (str(ann["annotationId"]), "" if text is None else str(text))
    for ann in items:
        row = row_from_wire(ann, dataset, asset, tags, captions)
        if row is None:
            skipped.append({"id": ann.get("annotationId"), "asset": asset, "kind": (
                ((ann.get("spec") or {}).get("contents") or {}).get("kind"))})  # fmt: skip
        else:
            rows.append(row)
    return rows, skipped


@parses("Vi")
def row_from_wire(
    ann: dict[str, Any],
    dataset: str,
    asset: str,
    tags: Mapping[int, str],
    captions: Mapping[str, tuple[str, str]],
) -> dict[str, Any] | None:
    """One Vi annotation as a canonical row (None for a kind the data contract has no place for)."""
    try:
        spec = ann["spec"]
        contents = spec["contents"]
        kind = contents["kind"]
        base = {"dataset": dataset, "asset": asset, "id": str(ann["annotationId"]), "rev": str(ann.get("etag", ""))}
        if kind == "Caption":
            text = contents.get("contents")
            return {**base, "kind": "caption", "text": "" if text is None else str(text)}
        if kind == "PhraseGroundingBoundingBox":
            x0, y0, x1, y1 = _bound_box(contents["bound"])
            start, end = (int(v) for v in contents["target"])
            whole = str(((spec.get("aggregation") or {}).get("whole") or {}).get("id", ""))
            parent, caption = captions.get(whole, (None, None))
            tag = spec.get("tag")
            return {
                **base, "kind": "grounding", "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                "label": tags.get(int(tag)) if isinstance(tag, int) and not isinstance(tag, bool) else None,
                "parent": parent, "span_start": start, "span_end": end,
                "text": caption[start:end] if caption is not None else None,
            }  # fmt: skip
        if kind == "Vqa":
            return {**base, "kind": "qa", "text": str(contents["question"]), "answer": str(contents["answer"])}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MalformedResponse(f"Vi sent an annotation without a usable {exc}: {str(ann)[:200]}") from exc
    return None


def _content_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What identifies a row inside one asset after an upload gave every row a new id."""

    def r(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else round(float(v), 6)

    def s(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)

    kind = row["kind"]
    if kind == "grounding":
        return (kind, s(row.get("label")), r(row.get("span_start")), r(row.get("span_end")),
                r(row.get("x0")), r(row.get("y0")), r(row.get("x1")), r(row.get("y1")))  # fmt: skip
    if kind == "qa":
        return (kind, s(row.get("text")), s(row.get("answer")))
    return (kind, s(row.get("text")))


def _document(asset: str, rows: list[dict[str, Any]]) -> str:
    """The upload document of one asset: its rows in Vi JSONL's upload form, addressed by asset id."""
    frame = schema.annotations_frame(rows) if rows else schema.annotations_frame()
    tables = Tables(
        annotations=frame,
        assets=schema.assets_frame([{"dataset": "vi", "asset": asset, "name": asset}]),
        labels=schema.labels_frame(),
    )
    return tables_to_vi_jsonl(tables)
