"""`evaluate`: predictions against ground truth, the COCO way.

Box rows are matched per asset and label with COCO's greedy rules (`annotebook.qa.matching`), at COCO's ten IoU
thresholds 0.50:0.05:0.95 and at the caller's ``iou``. AP per label is COCO's: 101-point interpolated precision
over recall, averaged over the thresholds; mAP is the mean over labels with ground truth. With boxes in pixels
(an assets table with sizes), ``maxDets`` 100 and area range "all", the numbers equal pycocotools' ``COCOeval``
(``iouType="bbox"``) to float rounding; a test checks it against pycocotools on a 10,000-image set, with
`Evaluation.stats` (COCOeval's twelve numbers, area ranges and AR included).

Crowd regions (``attributes["iscrowd"]`` true) follow COCO: they are ignored, absorb any number of detections,
and a detection's IoU with them divides by the detection's area.

>>> ev = evaluate(anns, preds, iou=0.5, assets=assets)  # doctest: +SKIP
>>> ev.summary()  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.schema import STR

from ._view import View, asset_keys, by_dataset, scores
from .matching import Boxes, Match, match

__all__ = ["IOU_THRESHOLDS", "RECALL_THRESHOLDS", "Evaluation", "evaluate"]

#: COCO's thresholds, built exactly as pycocotools builds them
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
BACKGROUND = "(background)"
#: COCO's area ranges (pixels²), inclusive at both ends as pycocotools tests them
AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
#: COCOeval.stats, in its order: (name, kind, IoU threshold or None for .5:.95, area range, maxDets)
STATS = (
    ("AP", "precision", None, "all", 100),
    ("AP50", "precision", 0.5, "all", 100),
    ("AP75", "precision", 0.75, "all", 100),
    ("AP_small", "precision", None, "small", 100),
    ("AP_medium", "precision", None, "medium", 100),
    ("AP_large", "precision", None, "large", 100),
    ("AR1", "recall", None, "all", 1),
    ("AR10", "recall", None, "all", 10),
    ("AR100", "recall", None, "all", 100),
    ("AR_small", "recall", None, "small", 100),
    ("AR_medium", "recall", None, "medium", 100),
    ("AR_large", "recall", None, "large", 100),
)
MATCH_COLUMNS: dict[str, Any] = {
    "id": STR,
    "asset": STR,
    "label": STR,
    "source": STR,
    "outcome": STR,
    "match": STR,
    "iou": "float64",
    "score": "float64",
}


@dataclass(frozen=True)
class _Side:
    """The rows of one side (truth or predictions) taking part, as arrays."""

    ids: npt.NDArray[Any]
    asset: npt.NDArray[Any]
    asset_code: npt.NDArray[np.intp]
    label: npt.NDArray[Any]
    xywh: npt.NDArray[np.float64]
    score: npt.NDArray[np.float64]
    crowd: npt.NDArray[np.bool_]
    area: npt.NDArray[np.float64]  # COCO's area: attributes["area"] where given, else the box's (pixels)


def _side(df: pd.DataFrame, assets: pd.DataFrame | None, kinds: tuple[str, ...], keys: pd.Index, by: bool) -> _Side:
    view = View(df, assets)
    rows = view.of_kind(*kinds) & np.isfinite(view.corners).all(axis=1) & pd.notna(view.label)
    c = np.where(view.of_kind("box")[:, None], view.corners, view.extent)[rows]
    scale = view.scale[rows]
    x0, y0 = c[:, 0] * scale[:, 0], c[:, 1] * scale[:, 1]
    xywh = np.stack([x0, y0, c[:, 2] * scale[:, 0] - x0, c[:, 3] * scale[:, 1] - y0], axis=1)
    akeys = asset_keys(view.anns, by).to_numpy()[rows]
    code = keys.get_indexer(pd.Index(akeys))
    inside = code >= 0  # predictions on assets the truth does not have are left out, as COCO does
    score = scores(view.anns)[rows]
    return _Side(
        view.ids[rows][inside],
        view.asset[rows][inside],
        code[inside],
        view.label[rows][inside],
        xywh[inside],
        score[inside],
        _crowd(view.column("attributes")[rows])[inside],
        _area(view.column("attributes")[rows], xywh)[inside],
    )


def _area(attributes: npt.NDArray[Any], xywh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = xywh[:, 2] * xywh[:, 3]
    has = np.flatnonzero([isinstance(a, dict) and isinstance(a.get("area"), (int, float)) for a in attributes])
    out[has] = [float(attributes[i]["area"]) for i in has]
    return out


def _crowd(attributes: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    has = np.flatnonzero([isinstance(a, dict) and bool(a) for a in attributes])
    out = np.zeros(len(attributes), dtype=bool)
    out[has] = [bool(attributes[i].get("iscrowd", False)) for i in has]
    return out


def evaluate(
    truth: pd.DataFrame,
    preds: pd.DataFrame,
    iou: float = 0.5,
    assets: pd.DataFrame | None = None,
    max_dets: int = 100,
    kinds: tuple[str, ...] = ("box",),
) -> Evaluation:
    """Match ``preds`` (rows with a ``score``; NaN counts as 1) to ``truth`` and measure them (see the module).

    ``assets`` gives pixel sizes (COCO measures in pixels) and the set of images: predictions on other assets
    are left out. ``kinds``: the rows compared (default box rows; ``("box", "polygon")`` adds polygon extents).
    """
    live_assets = assets if assets is not None else truth[[c for c in ("dataset", "asset") if c in truth.columns]]
    by = by_dataset(truth)
    keys = pd.Index(asset_keys(live_assets, by).drop_duplicates().sort_values().to_numpy())
    gt, dt = _side(truth, assets, kinds, keys, by), _side(preds, assets, kinds, keys, by)
    labels = pd.Index(sorted(set(gt.label.tolist()) | set(dt.label.tolist())))
    gl, dl = labels.get_indexer(gt.label), labels.get_indexer(dt.label)
    n_labels = max(len(labels), 1)
    gb = Boxes(gt.asset_code * n_labels + gl, gt.xywh, crowd=gt.crowd, ignore=gt.crowd | _outside(gt.area, "all"))
    db = Boxes(dt.asset_code * n_labels + dl, dt.xywh, score=dt.score)
    thresholds = np.unique(np.r_[IOU_THRESHOLDS, iou])
    m = match(gb, db, thresholds, max_dets)
    return Evaluation(gt, dt, labels, gl, dl, m, thresholds, float(iou), max_dets, (gb, db))


def _outside(area: npt.NDArray[np.float64], name: str) -> npt.NDArray[np.bool_]:
    lo, hi = AREA_RANGES[name]
    return np.asarray((area < lo) | (area > hi), dtype=bool)


class Evaluation:
    """The result of `evaluate`: the match table, AP per label, mAP, precision / recall, confusion, PR curves."""

    def __init__(
        self,
        gt: _Side,
        dt: _Side,
        labels: pd.Index,
        gt_label: npt.NDArray[np.intp],
        dt_label: npt.NDArray[np.intp],
        m: Match,
        thresholds: npt.NDArray[np.float64],
        iou: float,
        max_dets: int,
        boxes: tuple[Boxes, Boxes],
    ):
        self._gt, self._dt, self._labels, self._boxes = gt, dt, labels, boxes
        self._gl, self._dl, self._m = gt_label, dt_label, m
        self._thresholds, self.iou, self.max_dets = thresholds, iou, max_dets
        self._by_area: dict[str, Match] = {}

    def _t(self, iou: float) -> int:
        return int(np.argmin(np.abs(self._thresholds - iou)))

    # -- COCO accumulation ----------------------------------------------------------------------------------
    @cached_property
    def _curves(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(precision (T, R, K), recall (T, K), positives per label): COCO's ``accumulate`` for area "all"."""
        return self._accumulated("all", self.max_dets)

    def _accumulated(
        self, area: str, max_dets: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        m, ignore = self._matched(area)
        dt_out = _outside(self._dt.xywh[:, 2] * self._dt.xywh[:, 3], area)
        return accumulate(ignore, dt_out, self._dt, self._gl, self._dl, m, len(self._labels), max_dets)

    def _matched(self, area: str) -> tuple[Match, npt.NDArray[np.bool_]]:
        """The matches with COCO's ignore flags of ``area``: truth outside the range is ignored (matched first
        only when nothing else is), as pycocotools' evaluateImg does for each area range."""
        gb, db = self._boxes
        ignore = self._gt.crowd | _outside(self._gt.area, area)
        if area == "all":
            return self._m, ignore
        if area not in self._by_area:
            self._by_area[area] = match(replace(gb, ignore=ignore), db, self._thresholds, self.max_dets)
        return self._by_area[area], ignore

    @cached_property
    def stats(self) -> pd.Series:
        """COCOeval's twelve ``stats`` (AP, AP50, AP75, AP by area, AR at 1 / 10 / 100 detections, AR by area),
        named; -1 where nothing counts, as pycocotools prints."""
        coco = np.isin(self._thresholds, IOU_THRESHOLDS)
        values = []
        for _, what, iou, area, dets in STATS:
            precision, recall, _ = self._accumulated(area, dets)
            at = coco if iou is None else np.isclose(self._thresholds, iou) & coco
            s = precision[at] if what == "precision" else recall[at]
            values.append(float(s[s > -1].mean()) if (s > -1).any() else -1.0)
        return pd.Series(values, index=[s[0] for s in STATS], name="COCO", dtype="float64")

    @property
    def precision(self) -> npt.NDArray[np.float64]:
        """COCO's interpolated precision, shape (IoU thresholds, 101 recall points, labels); -1 where no truth."""
        return self._curves[0]

    @cached_property
    def ap(self) -> pd.Series:
        """AP@[.5:.95] per label with ground truth (COCO's per-category AP)."""
        return self._ap(slice(None))

    def _ap(self, which: Any) -> pd.Series:
        coco = np.isin(self._thresholds, IOU_THRESHOLDS) if isinstance(which, slice) else which
        p = self.precision[coco]
        has = self._curves[2] > 0
        values = p[..., has].reshape(-1, int(has.sum())).mean(axis=0) if has.any() else np.zeros(0)
        return pd.Series(values, index=self._labels[has], name="AP", dtype="float64")

    @property
    def map(self) -> float:
        """mAP@[.5:.95]: COCO's ``stats[0]``."""
        return float(self.ap.mean()) if len(self.ap) else float("nan")

    def ap_at(self, iou: float) -> pd.Series:
        """AP per label at one IoU threshold (one of COCO's ten, or the ``iou`` given to `evaluate`)."""
        return self._ap(np.isclose(self._thresholds, iou))

    # -- tables ---------------------------------------------------------------------------------------------
    @cached_property
    def matches(self) -> pd.DataFrame:
        """One row per ground-truth and per predicted box at ``iou``: outcome TP / FP / FN (``ignored``: a crowd
        region, or a prediction matched to one), the matched row's id, the IoU (a prediction's best IoU with the
        truth of its label when unmatched) and the score. Predictions past ``max_dets`` per asset and label are
        ``skipped``: COCO does not count them at all."""
        t = self._t(self.iou)
        gt, dt, m = self._gt, self._dt, self._m
        dm, gm = m.dt_gt[t], m.gt_dt[t]
        dt_out = np.where(dm >= 0, np.where(gt.crowd[np.maximum(dm, 0)], "ignored", "TP"), "FP")
        dt_out = np.where(m.dt_rank >= self.max_dets, "skipped", dt_out)
        gt_out = np.where(gt.crowd, "ignored", np.where(gm >= 0, "TP", "FN"))
        gt_iou = np.where(gm >= 0, m.dt_iou[t][np.maximum(gm, 0)], np.nan)
        frame = pd.DataFrame(
            {
                "id": np.r_[gt.ids, dt.ids],
                "asset": np.r_[gt.asset, dt.asset],
                "label": np.r_[gt.label, dt.label],
                "source": np.r_[np.full(len(gt.ids), "truth"), np.full(len(dt.ids), "prediction")],
                "outcome": np.r_[gt_out, dt_out],
                "match": np.r_[
                    np.where(gm >= 0, dt.ids[np.maximum(gm, 0)], None),
                    np.where(dm >= 0, gt.ids[np.maximum(dm, 0)], None),
                ]
                if len(dt.ids) and len(gt.ids)
                else np.full(len(gt.ids) + len(dt.ids), None),
                "iou": np.r_[gt_iou, m.dt_iou[t]],
                "score": np.r_[np.full(len(gt.ids), np.nan), dt.score],
            }
        )
        return frame.astype(MATCH_COLUMNS)

    def summary(self, score: float | None = None) -> pd.DataFrame:
        """Per label: truth and prediction counts, TP / FP / FN, precision and recall at ``iou`` (predictions with
        a score of at least ``score``, default all), AP@[.5:.95], AP50, AP75 and AP at ``iou``; a last row "all"
        with the totals and the means (mAP)."""
        out = self._counts("label", pd.Index(self._labels, name="label"), score)
        out["AP"] = self.ap.reindex(out.index)
        out["AP50"] = self.ap_at(0.5).reindex(out.index)
        out["AP75"] = self.ap_at(0.75).reindex(out.index)
        out[f"AP@{self.iou:g}"] = self.ap_at(self.iou).reindex(out.index)
        total = out[["truth", "predicted", "TP", "FP", "FN"]].sum()
        all_row = pd.DataFrame([total], index=pd.Index(["all"], name="label"))
        all_row["precision"] = total["TP"] / max(total["TP"] + total["FP"], 1)
        all_row["recall"] = total["TP"] / max(total["TP"] + total["FN"], 1)
        for c in ("AP", "AP50", "AP75", f"AP@{self.iou:g}"):
            all_row[c] = out[c].mean()
        return pd.concat([out, all_row])

    def by_asset(self, score: float | None = None) -> pd.DataFrame:
        """Per asset: truth and prediction counts, TP / FP / FN, precision and recall at ``iou`` (predictions with
        a score of at least ``score``, default all); the assets with the most errors first."""
        assets = pd.Index(sorted(set(self._gt.asset.tolist()) | set(self._dt.asset.tolist())), name="asset")
        out = self._counts("asset", assets, score)
        errors = out["FP"] + out["FN"]
        return out.iloc[np.lexsort((np.arange(len(out)), -errors.to_numpy()))]

    def _counts(self, key: str, index: pd.Index, score: float | None) -> pd.DataFrame:
        mt = self.matches
        if score is not None:
            mt = _unmatch_dropped(mt[(mt["source"] == "truth") | (mt["score"] >= score)])
        counted = mt[mt["outcome"].isin(["TP", "FP", "FN"])]
        table = pd.crosstab(counted[key], [counted["source"], counted["outcome"]]).reindex(index, fill_value=0)

        def get(source: str, outcome: str) -> Any:
            return table[(source, outcome)] if (source, outcome) in table.columns else 0

        out = pd.DataFrame(index=index)
        out["truth"] = get("truth", "TP") + get("truth", "FN")
        out["predicted"] = get("prediction", "TP") + get("prediction", "FP")
        out["TP"], out["FP"], out["FN"] = get("prediction", "TP"), get("prediction", "FP"), get("truth", "FN")
        out = out.fillna(0).astype("int64")
        with np.errstate(divide="ignore", invalid="ignore"):
            out["precision"] = out["TP"] / (out["TP"] + out["FP"])
            out["recall"] = out["TP"] / (out["TP"] + out["FN"])
        return out

    def confusion(self, score: float = 0.5, iou: float | None = None) -> pd.DataFrame:
        """Counts of (true label, predicted label), matching across labels: per asset, predictions with a score
        of at least ``score`` in order of score each take the unmatched truth box of highest IoU (at least
        ``iou``, default the evaluation's). Truth left unmatched counts in the ``(background)`` column,
        predictions left unmatched in the ``(background)`` row."""
        iou = self.iou if iou is None else iou
        gt, dt = self._gt, self._dt
        sure = np.flatnonzero(dt.score >= score)
        m = match(
            Boxes(gt.asset_code, gt.xywh),
            Boxes(dt.asset_code[sure], dt.xywh[sure], score=dt.score[sure]),
            np.array([iou]),
            max_dets=None,
        )
        names = [*map(str, self._labels), BACKGROUND]
        k = len(self._labels)
        true = np.r_[self._gl, np.full(int((m.dt_gt[0] < 0).sum()), k)]
        pred = np.r_[
            np.where(m.gt_dt[0] >= 0, self._dl[sure][np.maximum(m.gt_dt[0], 0)], k), self._dl[sure][m.dt_gt[0] < 0]
        ]
        counts = np.zeros((k + 1, k + 1), dtype=np.int64)
        np.add.at(counts, (true, pred), 1)
        return pd.DataFrame(counts, index=pd.Index(names, name="truth"), columns=pd.Index(names, name="predicted"))

    def plot_pr(self, ax: Any = None, iou: float | None = None, labels: pd.DataFrame | None = None) -> Any:
        """PR curves per label at ``iou`` (default the evaluation's), in the labels table's colours; the Axes."""
        from .plots import plot_pr

        return plot_pr(self, ax=ax, iou=self.iou if iou is None else iou, labels=labels)

    def plot_confusion(self, ax: Any = None, score: float = 0.5, normalize: bool = False) -> Any:
        """`confusion` drawn as a matrix; the Axes."""
        from .plots import plot_confusion

        return plot_confusion(self.confusion(score), ax=ax, normalize=normalize)

    def pr_curve(self, iou: float) -> pd.DataFrame:
        """COCO's interpolated precision at the 101 recall points for one IoU threshold: one column per label."""
        t = self._t(iou)
        has = self._curves[2] > 0
        return pd.DataFrame(
            self.precision[t][:, has], index=pd.Index(RECALL_THRESHOLDS, name="recall"), columns=self._labels[has]
        )

    def __repr__(self) -> str:
        return f"<Evaluation: {len(self._gt.ids)} truth, {len(self._dt.ids)} predictions, mAP@[.5:.95] {self.map:.4f}>"


def _unmatch_dropped(mt: pd.DataFrame) -> pd.DataFrame:
    """After dropping low-score predictions, truth matched to a dropped prediction becomes FN."""
    kept = set(mt.loc[mt["source"] == "prediction", "id"])
    lost = (mt["source"] == "truth") & (mt["outcome"] == "TP") & ~mt["match"].isin(kept)
    return mt.assign(outcome=mt["outcome"].where(~lost, "FN"))


def accumulate(
    gt_ignore: npt.NDArray[np.bool_],
    dt_out: npt.NDArray[np.bool_],
    dt: _Side,
    gl: npt.NDArray[np.intp],
    dl: npt.NDArray[np.intp],
    m: Match,
    n_labels: int,
    max_dets: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """COCO's ``accumulate`` for one area range and maxDets, all labels and thresholds at once: precision
    (T, R, K), recall (T, K), positives. ``gt_ignore``: COCO's ``_ignore`` of each truth box; ``dt_out``: whether
    each detection's area is outside the range (an unmatched one is then ignored)."""
    n_t, n_r = m.dt_gt.shape[0], len(RECALL_THRESHOLDS)
    positives = np.bincount(gl[~gt_ignore], minlength=n_labels).astype(np.int64)
    precision = np.full((n_t, n_r, n_labels), -1.0)
    recall = np.full((n_t, n_labels), -1.0)
    precision[:, :, positives > 0] = 0.0
    recall[:, positives > 0] = 0.0
    keep = np.flatnonzero((m.dt_rank < max_dets) & (positives[dl] > 0))
    if not len(keep):
        return precision, recall, positives
    # COCO sorts each label's detections by score, ties by image (ascending id) then by place in the image
    order = keep[np.lexsort((m.dt_rank[keep], dt.asset_code[keep], -dt.score[keep], dl[keep]))]
    lab = dl[order]
    matched = m.dt_gt[:, order]
    ignored = np.where(matched >= 0, gt_ignore[np.maximum(matched, 0)], dt_out[order][None, :])
    tp = ((matched >= 0) & ~ignored).astype(np.float64)
    fp = ((matched < 0) & ~ignored).astype(np.float64)
    starts = np.r_[0, np.flatnonzero(lab[1:] != lab[:-1]) + 1]
    ends = np.r_[starts[1:], len(lab)]
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):  # one pass per label, all thresholds at once
        k = lab[lo]
        tps, fps = np.cumsum(tp[:, lo:hi], axis=1), np.cumsum(fp[:, lo:hi], axis=1)
        rc = tps / positives[k]
        pr = tps / (fps + tps + np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # COCO's precision envelope
        recall[:, k] = rc[:, -1]
        for t in range(n_t):
            at = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            inside = at < hi - lo
            precision[t, :, k] = np.where(inside, pr[t][np.minimum(at, hi - lo - 1)], 0.0)
    return precision, recall, positives
