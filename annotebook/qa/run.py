"""`qa`: every check (or a chosen few) over an annotations table, as one findings table.

>>> from annotebook import schema
>>> box = {"dataset": "d", "asset": "a", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}
>>> anns = schema.annotations_frame([{**box, "id": "1"}, {**box, "id": "2"}])
>>> f = qa(anns)
>>> f[f.severity >= "warning"][["id", "check", "other"]].to_dict("records")
[{'id': '2', 'check': 'duplicate', 'other': '1'}]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from . import distribution_checks, label_checks, overlap_checks, shape_checks
from ._view import View
from .findings import Found, findings_frame

__all__ = ["CHECKS", "qa"]

#: check name -> function(view, **thresholds) -> Found; the order findings of equal severity and score keep
CHECKS: dict[str, Callable[..., Found]] = {
    "invalid": shape_checks.invalid,
    "out_of_bounds": shape_checks.out_of_bounds,
    "degenerate": shape_checks.degenerate,
    "duplicate": overlap_checks.duplicate,
    "ambiguous_overlap": overlap_checks.ambiguous_overlap,
    "outline_mismatch": overlap_checks.outline_mismatch,
    "unknown_label": label_checks.unknown_label,
    "rare_label": label_checks.rare_label,
    "empty_asset": label_checks.empty_asset,
    "size_outlier": distribution_checks.size_outlier,
    "aspect_outlier": distribution_checks.aspect_outlier,
    "keypoints_outside": shape_checks.keypoints_outside,
    "grounding": shape_checks.grounding,
}


def qa(
    anns: pd.DataFrame,
    assets: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    checks: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Run ``checks`` (default: all of `CHECKS`) on the non-deleted rows of ``anns``; one findings table, worst
    first (see `annotebook.qa.findings`).

    ``assets`` adds pixel sizes and empty assets; ``labels`` adds unknown labels. ``options`` sets a check's
    thresholds: ``qa(anns, options={"duplicate": {"iou": 0.9}})``; each threshold is documented on its check.
    """
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS] + [n for n in (options or {}) if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; the checks are {', '.join(CHECKS)}")
    view = View(anns, assets, labels)
    return findings_frame([CHECKS[n](view, **dict((options or {}).get(n, {}))) for n in names])
