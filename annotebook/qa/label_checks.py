"""Checks of the labels and assets as a whole: labels missing from the labels table, rare labels (likely typos,
with the nearest real label by edit distance, or tiny stray regions), assets with no annotation.

The work per row is vectorised (`isin`, `value_counts`); the edit distances run over distinct labels only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._view import View
from .findings import Found

__all__ = ["edit_distance", "empty_asset", "nearest_label", "rare_label", "unknown_label"]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings.

    >>> edit_distance("sqare", "square")
    1
    """
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def nearest_label(label: str, candidates: list[str]) -> tuple[str | None, int]:
    """The candidate closest to ``label`` by edit distance (first on ties) and the distance; (None, -1) if none.

    >>> nearest_label("sqare", ["circle", "square"])
    ('square', 1)
    """
    scored = [(edit_distance(label, c), k) for k, c in enumerate(candidates) if c != label]
    if not scored:
        return None, -1
    d, k = min(scored)
    return candidates[k], d


def _typo(d: int, label: str) -> bool:
    """A distance that reads as a typo: at most 2 edits, and at most a third of the label's length."""
    return 0 < d <= 2 and d <= max(1, len(label) // 3)


def _labelled(view: View) -> np.ndarray:
    return np.asarray(pd.notna(view.label) & (view.label != ""), dtype=bool)


def unknown_label(view: View) -> Found:
    """Rows whose label is not in the labels table (only when one is given), each naming the table's nearest
    label by edit distance. Severity warning (error-free data can still use a label the table forgot); score 1.
    """
    if view.labels is None or "name" not in view.labels.columns:
        return Found("unknown_label", [], [], "warning", [], [])
    names = [str(n) for n in view.labels["name"].dropna().unique()]
    rows = _labelled(view) & ~pd.Series(view.label).isin(names).to_numpy(dtype=bool)
    hints = {}
    for label in pd.unique(view.label[rows]):
        near, d = nearest_label(str(label), names)
        hints[label] = f"label {label!r} is not in the labels table" + (
            f"; nearest is {near!r} ({d} edits)" if near else ""
        )
    detail = pd.Series(view.label[rows]).map(hints).to_numpy(dtype=object)
    return Found("unknown_label", view.ids[rows], view.asset[rows], "warning", detail, np.ones(int(rows.sum())))


def rare_label(view: View, *, count: int = 2, fraction: float = 0.001, tiny: float = 0.15) -> Found:
    """Rows of labels used rarely: by at most ``count`` rows (default 2) or ``fraction`` of the labelled rows
    (default 0.1%), whichever is more. Severity warning when the label reads as a typo of a common label (at most
    2 edits, and a third of its length) or when its regions are tiny for the dataset (their median area below
    ``tiny`` = 0.15 of the median area of all regions, in pixels where sizes are known): stray marks with a label
    of their own. Otherwise info. The nearest common label is named either way. Score: 1 - uses / (count + 1).
    """
    labelled = _labelled(view)
    counts = pd.Series(view.label[labelled]).value_counts()
    limit = max(count, int(fraction * int(labelled.sum())))
    rare = counts[counts <= limit]
    common = [str(x) for x in counts[counts > limit].index]
    if rare.empty:
        return Found("rare_label", [], [], "info", [], [])
    area = view.wh[:, 0] * view.wh[:, 1]
    region = view.region & np.isfinite(area)
    overall = float(np.median(area[region])) if region.any() else np.nan
    per_label = pd.Series(area[region]).groupby(view.label[region]).median()
    severity, detail = {}, {}
    for label, n in rare.items():
        near, d = nearest_label(str(label), common)
        typo = near is not None and _typo(d, str(label))
        ratio = float(per_label.get(label, np.nan)) / overall if overall > 0 else np.nan
        small = bool(ratio < tiny)
        severity[label] = "warning" if typo or small else "info"
        words = [f"label {label!r} is used {n} time{'s' if n != 1 else ''}"]
        if typo:
            words.append(f"likely a typo of {near!r} ({d} edit{'s' if d != 1 else ''})")
        elif near is not None:
            words.append(f"nearest label {near!r}")
        if small:
            words.append(f"its regions are tiny ({ratio:.2f} of the median region's area)")
        detail[label] = "; ".join(words)
    rows = labelled & pd.Series(view.label).isin(rare.index).to_numpy(dtype=bool)
    labels = pd.Series(view.label[rows])
    score = 1 - labels.map(rare).to_numpy(dtype=float) / (limit + 1)
    sev, text = labels.map(severity).to_numpy(dtype=object), labels.map(detail).to_numpy(dtype=object)
    return Found("rare_label", view.ids[rows], view.asset[rows], sev, text, score)


def empty_asset(view: View) -> Found:
    """Assets of the assets table (when given) with no annotation row left: severity info (a background image
    may be empty on purpose), score 1. The finding's ``id`` is NaN.
    """
    if view.assets is None:
        return Found("empty_asset", [], [], "info", [], [])
    keys = View._keys(view.assets)
    empty = ~keys.isin(view.asset_keys.unique()).to_numpy(dtype=bool)
    assets = view.assets["asset"].to_numpy(dtype=object)[empty]
    n = int(empty.sum())
    return Found("empty_asset", np.full(n, np.nan, dtype=object), assets, "info", "no annotation", np.ones(n))
