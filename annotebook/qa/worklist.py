"""`worklist`: findings or suspects grouped into one item per asset, worst asset first.

This is the seam between QA and the pictures: a gallery of findings draws one tile per row (highlighting
``ids``, captioned with ``details``), a review queue walks the rows in order (selecting ``ids[0]`` and showing
``details[0]``), and neither needs to know which check said what. It takes the findings table of `qa` or the
suspects table of `mistakes` (both have id, asset, detail and score).

>>> import pandas as pd
>>> f = pd.DataFrame({"id": ["a1", "b1", "a2"], "asset": ["A", "B", "A"], "detail": ["dup", "odd", "tiny"],
...                   "score": [0.9, 0.5, 0.2], "other": ["a0", None, None]})
>>> worklist(f)[["asset", "ids", "details"]].values.tolist()
[['A', ('a1', 'a0', 'a2'), ('dup', 'tiny')], ['B', ('b1',), ('odd',)]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .findings import SEVERITY

__all__ = ["worklist"]


def _unique(values: Any) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str)))


def worklist(table: pd.DataFrame) -> pd.DataFrame:
    """One row per asset: ``asset``, ``ids`` (the rows to highlight: each item's id then the row it clashes
    with, in order, no repeats), ``details`` (the reasons, worst first), ``boxes`` (proposed boxes x0, y0, x1, y1
    of suspects: where a missing box or a better placed one would go), ``severity`` (the worst, when the table has
    severities), ``score`` (the highest) and ``count``. Assets by their worst item: severity, then score, then
    the table's order."""
    t = table.reset_index(drop=True)
    if "severity" in t.columns:
        rank = pd.Series(t["severity"], dtype=SEVERITY).cat.codes.to_numpy()
    else:
        rank = np.zeros(len(t), dtype=np.int64)
    score = pd.to_numeric(t["score"], errors="coerce").fillna(0).to_numpy()
    t = t.iloc[np.lexsort((np.arange(len(t)), -score, -rank))].assign(_rank=rank, _pos=np.arange(len(t)))
    others = t["other"] if "other" in t.columns else pd.Series(None, index=t.index, dtype=object)
    both = np.column_stack([t["id"].to_numpy(dtype=object), others.to_numpy(dtype=object)]).ravel()
    ids = pd.Series(both).groupby(np.repeat(t["asset"].to_numpy(dtype=object), 2), sort=False).agg(_unique)
    out = t.groupby("asset", sort=False).agg(
        details=("detail", lambda s: tuple(dict.fromkeys(s.dropna()))),
        score=("score", "max"),
        count=("detail", "size"),
        first=("_pos", "min"),
    )
    out["ids"] = ids
    boxes = _boxes(t).reindex(out.index)
    out["boxes"] = [b if isinstance(b, tuple) else () for b in boxes]
    if "severity" in t.columns:
        worst = t.groupby("asset", sort=False)["_rank"].max()
        out["severity"] = pd.Categorical.from_codes(worst.reindex(out.index).to_numpy(), dtype=SEVERITY)
    out = out.sort_values("first", kind="stable").drop(columns="first").reset_index()
    cols = ["asset", "ids", "details", "boxes", *(["severity"] if "severity" in out.columns else []), "score", "count"]
    return out[cols]


def _boxes(t: pd.DataFrame) -> pd.Series:
    """Per asset, the proposed boxes of suspects that carry one (mistakes' x0..y1), as a tuple of 4-tuples."""
    if not {"x0", "y0", "x1", "y1"} <= set(t.columns):
        return pd.Series(dtype=object)
    xy = t[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float, na_value=np.nan)
    has = np.isfinite(xy).all(axis=1)
    keep = t.loc[has, ["asset"]].assign(box=[tuple(b) for b in xy[has].tolist()])
    return keep.groupby("asset", sort=False)["box"].agg(tuple)
