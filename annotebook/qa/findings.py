"""The findings table that every QA check returns, and the one place it is built.

Columns (see `docs/data-model.md`): ``id`` (the annotation row at fault; NaN for a finding about a whole asset
or label), ``asset``, ``check`` (the check's name, a key of `annotebook.qa.CHECKS`), ``severity`` (ordered
``info < warning < error``, so ``findings[findings.severity >= "warning"]`` works), ``detail`` (the reason in
words, fit for a caption), ``score`` (in [0, 1], higher is worse or surer; comparable within one check) and
``other`` (the id of the row it clashes with: a duplicate's original, an overlapping row; else NaN).

A finding is addressed by ``id`` like any row, never by position, so a gallery or a review queue joins it back to
the annotations with ``anns.merge(findings, on="id")`` or selects the region with ``anns.id == finding.id``.

>>> findings_frame([]).dtypes.astype(str).tolist()
['str', 'str', 'str', 'category', 'str', 'float64', 'str']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.schema import STR

__all__ = ["FINDING_COLUMNS", "SEVERITY", "Found", "findings_frame"]

#: ordered severities: a check's finding is one of these
SEVERITY = pd.CategoricalDtype(["info", "warning", "error"], ordered=True)
FINDING_COLUMNS: dict[str, Any] = {
    "id": STR,
    "asset": STR,
    "check": STR,
    "severity": SEVERITY,
    "detail": STR,
    "score": "float64",
    "other": STR,
}


@dataclass(frozen=True)
class Found:
    """What one check found, column-wise: equal-length arrays (``severity`` and ``detail`` may be one value)."""

    check: str
    id: npt.ArrayLike
    asset: npt.ArrayLike
    severity: str | Sequence[str] | npt.NDArray[Any]
    detail: str | Sequence[str] | npt.NDArray[Any]
    score: npt.ArrayLike
    other: npt.ArrayLike | None = None

    def frame(self) -> pd.DataFrame:
        n = len(np.asarray(self.id, dtype=object))
        cols = {
            "id": np.asarray(self.id, dtype=object),
            "asset": np.asarray(self.asset, dtype=object),
            "check": np.full(n, self.check, dtype=object),
            "severity": _broadcast(self.severity, n),
            "detail": _broadcast(self.detail, n),
            "score": np.clip(np.asarray(self.score, dtype=np.float64), 0.0, 1.0),
            "other": np.full(n, np.nan, dtype=object) if self.other is None else np.asarray(self.other, dtype=object),
        }
        return pd.DataFrame(cols)


def _broadcast(v: str | Sequence[str] | npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    if isinstance(v, str):
        return np.full(n, v, dtype=object)
    return np.asarray(v, dtype=object)


def findings_frame(found: Sequence[Found]) -> pd.DataFrame:
    """One findings table from the checks' results: worst first (severity, then score), a fresh RangeIndex.

    >>> f = Found("demo", ["a1"], ["img"], "warning", "looks odd", [0.5])
    >>> findings_frame([f])[["id", "check", "severity"]].to_dict("records")
    [{'id': 'a1', 'check': 'demo', 'severity': 'warning'}]
    """
    parts = [f.frame() for f in found]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in FINDING_COLUMNS.items()})
    out = pd.concat(parts, ignore_index=True).astype(FINDING_COLUMNS)
    rank = out["severity"].cat.codes.to_numpy()
    order = np.lexsort((np.arange(len(out)), -out["score"].fillna(-1).to_numpy(), -rank))
    return out.iloc[order].reset_index(drop=True)
