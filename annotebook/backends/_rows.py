"""Row helpers the platform backends share: refusing rows a platform cannot carry, and keypoints as stored.

Platform vocabulary stays in each `<platform>_rows.py`; what is here is about canonical rows only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from .. import schema
from ..errors import NotCarried

__all__ = ["refuse_uncarried", "stored_fields", "stored_keypoints"]

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
