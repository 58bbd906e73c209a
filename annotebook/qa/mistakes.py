"""`mistakes`: ground-truth rows ranked by how strongly confident predictions disagree with them.

In the spirit of FiftyOne's mistakenness, as a plain DataFrame (one row per suspect) that a review queue can walk.
Only predictions with a score of at least ``min_score`` speak. For each truth box, the predictions on its asset
that overlap it (any label) are considered, pairs found by a sort-and-sweep per asset:

- ``label``: a prediction of another label overlaps the truth at IoU >= ``iou`` and no prediction of the truth's
  own label does at least as well; score: that prediction's score. The likely fix: relabel to ``predicted``.
- ``localisation``: the best prediction of the same label overlaps at ``same`` <= IoU < ``tight``; score:
  the prediction's score times 1 - IoU (a box off by 15% of its size scores about 0.25 at full confidence).
  The likely fix: move the box to the prediction's.
- ``spurious``: no confident prediction overlaps the truth at IoU >= ``same``; score 1 - its best IoU with any
  prediction. Either a stray or wrong region, or an object the model cannot see.
- ``missing``: a confident prediction overlaps no truth box at IoU >= ``same`` (any label); ``id`` is NaN and
  x0..y1 give the box to add; score: the prediction's score.

Columns: id, asset, mistake, score, label (the truth's; a missing box's predicted label), predicted (the
prediction's label), prediction (its id), iou, detail (the reason in words, as in the findings table), x0, y0,
x1, y1 (the prediction's box). Worst first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.schema import STR

from ._view import View, asset_keys, by_dataset, scores
from .pairs import overlapping_pairs

__all__ = ["MISTAKE_COLUMNS", "mistakes"]

MISTAKE_COLUMNS: dict[str, Any] = {
    "id": STR,
    "asset": STR,
    "mistake": STR,
    "score": "float64",
    "label": STR,
    "predicted": STR,
    "prediction": STR,
    "iou": "float64",
    "detail": STR,
    "x0": "float64",
    "y0": "float64",
    "x1": "float64",
    "y1": "float64",
}


def _boxes(df: pd.DataFrame, keys: pd.Index | None = None) -> tuple[View, npt.NDArray[np.intp]]:
    view = View(df)
    rows = np.flatnonzero(view.of_kind("box") & np.isfinite(view.corners).all(axis=1))
    return view, rows


def mistakes(
    truth: pd.DataFrame,
    preds: pd.DataFrame,
    *,
    min_score: float = 0.5,
    iou: float = 0.5,
    same: float = 0.3,
    tight: float = 0.8,
) -> pd.DataFrame:
    """Suspect truth rows (and missing boxes) from confident predictions, worst first (see the module)."""
    tv, tr = _boxes(truth)
    pv, pr = _boxes(preds)
    score = scores(pv.anns)
    pr = pr[score[pr] >= min_score]
    by = by_dataset(truth)
    tkeys, pkeys = asset_keys(tv.anns, by).to_numpy()[tr], asset_keys(pv.anns, by).to_numpy()[pr]
    keys = pd.Index(pd.unique(np.r_[tkeys, pkeys]))
    tcode, pcode = keys.get_indexer(pd.Index(tkeys)), keys.get_indexer(pd.Index(pkeys))
    i, j, v = overlapping_pairs(np.r_[tcode, pcode], np.concatenate([tv.corners[tr], pv.corners[pr]]))
    cross = (i < len(tr)) & (j >= len(tr))
    t, p, v = i[cross], j[cross] - len(tr), v[cross]
    tl = tv.label[tr][t]
    pl = pv.label[pr][p]
    ps = score[pr][p]
    same_label = tl == pl
    best_same = _max_by(t, np.where(same_label, v, 0.0), len(tr))
    best_any = _max_by(t, v, len(tr))
    # label: another label at IoU >= iou, better than any prediction of the truth's label
    other = ~same_label & (v >= iou) & (v > best_same[t])
    lab = _first_by(t, other, -ps)
    # localisation: the best same-label prediction is the same object but not tight
    loc = same_label & (v == best_same[t]) & (v >= same) & (v < tight) & ~np.isin(t, t[lab])
    loc = _first_by(t, loc, -ps)
    spurious = np.flatnonzero(best_any < same)
    missing_p = np.flatnonzero(_max_by(p, v, len(pr)) < same)
    parts = [
        _rows(tv, tr, pv, pr, t[lab], p[lab], v[lab], "label", ps[lab]),
        _rows(tv, tr, pv, pr, t[loc], p[loc], v[loc], "localisation", ps[loc] * (1 - v[loc])),
        _rows(tv, tr, pv, pr, spurious, None, best_any[spurious], "spurious", 1 - best_any[spurious]),
        _rows(
            tv,
            tr,
            pv,
            pr,
            None,
            missing_p,
            _max_by(p, v, len(pr))[missing_p],
            "missing",
            score[pr][missing_p],
        ),
    ]
    out = pd.concat(parts, ignore_index=True)
    pscore = out["prediction"].map(dict(zip(pv.ids[pr], score[pr], strict=True))).to_numpy(dtype=float, na_value=np.nan)
    out.insert(list(out.columns).index("iou") + 1, "detail", _details(out, pscore))
    out = out.astype(MISTAKE_COLUMNS)
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _max_by(key: npt.NDArray[np.intp], value: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    np.maximum.at(out, key, value)
    return out


def _first_by(
    key: npt.NDArray[np.intp], mask: npt.NDArray[np.bool_], order: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Positions of the pairs in ``mask``, one per key: the one lowest in ``order``."""
    at = np.flatnonzero(mask)
    if not len(at):
        return at
    at = at[np.lexsort((order[at], key[at]))]
    return at[np.r_[True, key[at][1:] != key[at][:-1]]]


def _rows(
    tv: View,
    tr: npt.NDArray[np.intp],
    pv: View,
    pr: npt.NDArray[np.intp],
    t: npt.NDArray[np.intp] | None,
    p: npt.NDArray[np.intp] | None,
    iou: npt.NDArray[np.float64],
    mistake: str,
    score: npt.NDArray[np.float64],
) -> pd.DataFrame:
    n = len(iou)
    none = np.full(n, None, dtype=object)
    truth_at = tr[t] if t is not None else None
    pred_at = pr[p] if p is not None else None
    box = pv.corners[pred_at] if pred_at is not None else np.full((n, 4), np.nan)
    return pd.DataFrame(
        {
            "id": tv.ids[truth_at] if truth_at is not None else none,
            "asset": tv.asset[truth_at] if truth_at is not None else pv.asset[pred_at],
            "mistake": np.full(n, mistake, dtype=object),
            "score": np.clip(score, 0, 1),
            "label": tv.label[truth_at] if truth_at is not None else pv.label[pred_at],
            "predicted": pv.label[pred_at] if pred_at is not None else none,
            "prediction": pv.ids[pred_at] if pred_at is not None else none,
            "iou": iou,
            "x0": box[:, 0],
            "y0": box[:, 1],
            "x1": box[:, 2],
            "y1": box[:, 3],
        }
    )


_WORDS = {
    "label": "predicted {predicted!r} (score {p:.2f}) at IoU {iou:.2f}",
    "localisation": "the prediction (score {p:.2f}) overlaps only at IoU {iou:.2f}",
    "spurious": "no confident prediction overlaps it (best IoU {iou:.2f})",
    "missing": "a {label!r} predicted with score {p:.2f} has no truth box",
}


def _details(out: pd.DataFrame, pscore: npt.NDArray[np.float64]) -> list[str]:
    """The reason of each suspect in words: one format call per suspect, over plain arrays."""
    cols = [out[c].to_numpy(dtype=object) for c in ("mistake", "predicted", "label", "iou")]
    return [
        _WORDS[m].format(predicted=pl, label=lab, iou=v, p=ps)
        for m, pl, lab, v, ps in zip(*cols, pscore.tolist(), strict=True)
    ]
