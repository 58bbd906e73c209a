"""Row helpers the platform backends share: refusing rows a platform cannot carry, and keypoints as stored.

Platform vocabulary stays in each `<platform>_rows.py`; what is here is about canonical rows only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd

from .. import schema
from ..errors import MalformedResponse, NotCarried

__all__ = ["checked_rows", "parses", "refuse_uncarried", "stored_fields", "stored_keypoints"]

#: the fields a platform that stores regions keeps per kind, besides asset, label, kind, attributes and frame
_BY_KIND = {"box": ("x0", "y0", "x1", "y1", "rotation"), "polygon": ("points",),
            "keypoints": ("points", "visibility"), "tag": ("value",)}  # fmt: skip


def refuse_uncarried(rows: pd.DataFrame, why_of: Callable[[dict[str, Any]], Iterable[str]], what: str) -> None:
    """Raise `NotCarried` naming every row ``why_of`` finds a reason against (``"<column>: why"``), at once.

    ``what`` finishes the message: "have fields <what>".
    """
    problems = []
    for rec in rows.to_dict("records"):
        for why in why_of({str(k): v for k, v in rec.items()}):
            problems.append({"id": rec["id"], "column": why.split(":")[0].split(" ")[0], "problem": why})
    if problems:
        raise NotCarried(
            f"{len({p['id'] for p in problems})} row(s) have fields {what}; nothing was written", pd.DataFrame(problems)
        )


def stored_keypoints(out: Mapping[str, Any]) -> tuple[Any, Any]:
    """A keypoints row's ``(points, visibility)`` as a platform that keeps only labelled points stores them: a point
    without visibility is visible, an unlabelled one (NaN, or visibility 0) is NaN at visibility 0."""
    flat = out["points"][0]
    pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
    seen = out["visibility"] or (2,) * len(pairs)
    kept = [(p, v) if p[0] is not None and v else ((None, None), 0) for p, v in zip(pairs, seen, strict=False)]
    return (tuple(c for p, _ in kept for c in p),), tuple(v for _, v in kept)


def stored_fields(row: Mapping[Any, Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``row`` a region-storing platform keeps (plus ``extra``), in normal form, as it stores them: a
    box's rotation is 0, a tag without a value is true, keypoints as `stored_keypoints`. Extents of point kinds are
    derived from the points and left out. A row and its re-read copy compare equal through this."""
    kind = row.get("kind")
    columns = ("asset", "label", "kind", "attributes", "frame", *extra, *_BY_KIND.get(str(kind), ()))
    out = {c: schema.normal_value(c, row.get(c)) for c in columns}
    if kind == "box" and out["rotation"] is None:
        out["rotation"] = 0.0
    if kind == "tag" and out["value"] is None:
        out["value"] = True
    if kind == "keypoints" and out["points"]:
        out["points"], out["visibility"] = stored_keypoints(out)
    return out


_F = TypeVar("_F", bound=Callable[..., Any])

#: what a parser raises when an answer has a shape it did not foresee
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError)


def parses(platform: str) -> Callable[[_F], _F]:
    """Mark a wire-to-rows parser: any shape error it meets becomes a `MalformedResponse` naming ``platform`` and
    the answer's part it was reading (issue 16: a platform's odd answer is never a bare exception)."""

    def wrap(parse: _F) -> _F:
        @functools.wraps(parse)
        def parsed(*args: Any, **kwargs: Any) -> Any:
            try:
                return checked_rows(parse(*args, **kwargs), platform)
            except MalformedResponse:
                raise
            except _SHAPE_ERRORS as exc:
                what = str(args[0])[:200] if args else ""
                raise MalformedResponse(
                    f"{platform} sent an answer annotebook cannot read ({type(exc).__name__}: {str(exc)[:120]}): {what}"
                ) from exc

        return parsed  # type: ignore[return-value]

    return wrap


def _number_ok(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))


def _row_problem(row: Mapping[str, Any]) -> str | None:
    """The first field of a parsed row whose value the canonical table cannot hold, in words."""
    for col, value in row.items():
        dtype = schema.ANNOTATION_COLUMNS.get(col)
        if dtype is None or value is None or value is pd.NA:
            continue
        if dtype == "float64" and not (_number_ok(value) or (isinstance(value, float) and math.isnan(value))):
            return f"{col} = {str(value)[:60]!r} is not a finite number"
        if dtype == "Int64" and not (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63):
            return f"{col} = {str(value)[:60]!r} is not a whole number"
        if dtype == schema.STR and not isinstance(value, str):
            return f"{col} = {str(value)[:60]!r} is not text"
        if col == "points" and not all(
            isinstance(c, int | float) and not isinstance(c, bool) for part in value for c in part
        ):
            return f"points {str(value)[:60]} are not numbers"
        if col == "attributes" and not isinstance(value, dict):
            return f"attributes {str(value)[:60]!r} are not an object"
    return None


def checked_rows(parsed: Any, platform: str) -> Any:
    """``parsed`` (a row, a list of rows, or a tuple whose first list is the rows) when every row's fields fit the
    canonical table; else a `MalformedResponse` naming the row and the field."""
    rows = next((p for p in parsed if isinstance(p, list)), []) if isinstance(parsed, tuple) else parsed
    for row in [rows] if isinstance(rows, dict) else rows or []:
        if isinstance(row, dict) and (why := _row_problem(row)) is not None:
            raise MalformedResponse(f"{platform} sent annotation {str(row.get('id'))[:60]!r} where {why}")
    return parsed
