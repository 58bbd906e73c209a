"""Greedy matching of detections to ground truth, COCO's rules, for many IoU thresholds at once.

COCO (pycocotools' ``COCOeval.evaluateImg``) matches within each group (an image and a category): detections in
order of score (ties: their order in the input), each taking the not yet matched ground truth with the highest
IoU at or above the threshold (ties: the later ground truth), preferring ground truth that is not ignored (crowd
regions are ignored and stay available to every detection; a crowd region's IoU divides by the detection's area).
Only each group's ``max_dets`` best detections take part.

That loop is sequential within a group, but groups are independent: round k lets the k-th detection of every
group choose at once, all thresholds together, so the Python loop runs ``max_dets`` times, not once per row.

>>> gt = Boxes(group=np.array([0, 0]), xywh=np.array([[0, 0, 10, 10], [20, 0, 10, 10]], dtype=float))
>>> dt = Boxes(group=np.array([0]), xywh=np.array([[1, 0, 10, 10]], dtype=float), score=np.array([0.9]))
>>> m = match(gt, dt, np.array([0.5, 0.9]))
>>> m.dt_gt.tolist(), m.dt_iou.round(3).tolist()
([[0], [-1]], [[0.818], [0.818]])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .pairs import overlapping_pairs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["Boxes", "Match", "coco_iou", "match", "rank_in_group"]


@dataclass(frozen=True)
class Boxes:
    """Boxes as COCO holds them: ``xywh`` (n, 4) in pixels (or any one unit per group), a group code each,
    a score (detections) and a crowd flag (ground truth)."""

    group: IntArray
    xywh: FloatArray
    score: FloatArray | None = None
    crowd: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    ignore: BoolArray | None = None  # COCO's _ignore (crowd, or outside the area range); default: crowd

    def __len__(self) -> int:
        return len(self.group)

    @property
    def is_crowd(self) -> BoolArray:
        return self.crowd if len(self.crowd) == len(self) else np.zeros(len(self), dtype=bool)

    @property
    def is_ignored(self) -> BoolArray:
        return self.is_crowd if self.ignore is None else self.ignore


@dataclass(frozen=True)
class Match:
    """Per threshold (rows) the matched ground truth of each detection (-1: none) and its IoU with the best
    ground truth of its group (0 when none overlaps), and the matched detection of each ground truth (-1: none).
    ``dt_rank`` is each detection's place in its group by score (detections at ``max_dets`` or later are out)."""

    dt_gt: IntArray
    gt_dt: IntArray
    dt_iou: FloatArray
    dt_rank: IntArray


def rank_in_group(group: IntArray, score: FloatArray) -> IntArray:
    """0-based place of each detection within its group by score, highest first; ties keep input order."""
    order = np.lexsort((np.arange(len(group)), -score, group))
    g = group[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1] if len(g) else np.zeros(0, dtype=np.intp)
    first = np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    rank = np.empty(len(group), dtype=np.intp)
    rank[order] = np.arange(len(g)) - first
    return rank


def coco_iou(dt: FloatArray, gt: FloatArray, crowd: BoolArray) -> FloatArray:
    """Row-wise IoU of xywh boxes exactly as pycocotools' ``bbIou`` computes it (crowd: over the dt's area)."""
    w = np.minimum(dt[:, 0] + dt[:, 2], gt[:, 0] + gt[:, 2]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 1] + dt[:, 3], gt[:, 1] + gt[:, 3]) - np.maximum(dt[:, 1], gt[:, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da, ga = dt[:, 2] * dt[:, 3], gt[:, 2] * gt[:, 3]
    union = np.where(crowd, da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(inter > 0, inter / union, 0.0), dtype=np.float64)


def _candidates(gt: Boxes, dt: Boxes, keep: IntArray) -> tuple[IntArray, IntArray, FloatArray]:
    """(detection, ground truth, IoU) of every overlapping pair in one group, found by a sort-and-sweep."""
    xywh = np.concatenate([gt.xywh, dt.xywh[keep]])
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    i, j, _ = overlapping_pairs(np.concatenate([gt.group, dt.group[keep]]), xyxy)
    n = len(gt)
    cross = (i < n) & (j >= n)  # i < j, ground truth first
    g, d = i[cross], keep[j[cross] - n]
    return d, g, coco_iou(dt.xywh[d], gt.xywh[g], gt.is_crowd[g])


def match(gt: Boxes, dt: Boxes, thresholds: FloatArray, max_dets: int | None = 100) -> Match:
    """Match ``dt`` to ``gt`` within groups at each of ``thresholds``, by COCO's rules (see the module)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_t = len(thresholds)
    assert dt.score is not None
    rank = rank_in_group(dt.group, dt.score)
    keep = np.flatnonzero(rank < max_dets) if max_dets is not None else np.arange(len(dt))
    d, g, iou = _candidates(gt, dt, keep)
    dt_gt = np.full((n_t, len(dt)), -1, dtype=np.intp)
    gt_dt = np.full((n_t, len(gt)), -1, dtype=np.intp)
    dt_best = np.zeros(len(dt))
    np.maximum.at(dt_best, d, iou)
    dt_iou = np.tile(dt_best, (n_t, 1))
    if not len(d):
        return Match(dt_gt, gt_dt, dt_iou, rank)
    crowd = gt.is_crowd
    # pairs by (round, detection, preference): the last usable pair of a detection is its choice
    gpos = _group_position(gt)
    order = np.lexsort((gpos[g], iou, ~gt.is_ignored[g], d, rank[d]))
    d, g, iou = d[order], g[order], iou[order]
    rounds = rank[d]
    bounds = np.searchsorted(rounds, np.arange(rounds[-1] + 2))
    limit = np.minimum(thresholds, 1 - 1e-10)[:, None]
    taken = np.zeros((n_t, len(gt)), dtype=bool)
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        dk, gk = d[lo:hi], g[lo:hi]
        usable = (iou[lo:hi][None, :] >= limit) & (crowd[gk][None, :] | ~taken[:, gk])
        starts = np.r_[0, np.flatnonzero(dk[1:] != dk[:-1]) + 1]
        pick = np.where(usable, np.arange(hi - lo)[None, :], -1)
        last = np.maximum.reduceat(pick, starts, axis=1)  # (n_t, detections of this round)
        t, s = np.nonzero(last >= 0)
        chosen = last[t, s]
        det, gtr = dk[chosen], gk[chosen]
        dt_gt[t, det] = gtr
        dt_iou[t, det] = iou[lo:hi][chosen]
        solid = ~crowd[gtr]
        taken[t[solid], gtr[solid]] = True
        gt_dt[t[solid], gtr[solid]] = det[solid]
    return Match(dt_gt, gt_dt, dt_iou, rank)


def _group_position(gt: Boxes) -> IntArray:
    """Each ground truth's place in its group's COCO order (not ignored first, then input order)."""
    order = np.lexsort((np.arange(len(gt)), gt.is_ignored, gt.group))
    pos = np.empty(len(gt), dtype=np.intp)
    pos[order] = np.arange(len(gt))
    return pos
