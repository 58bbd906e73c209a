"""QA pictures, each on ``ax`` (a new figure when None) and returning its Axes, like pandas and geopandas.

>>> import matplotlib; matplotlib.use("Agg")
>>> from annotebook import schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "box",
...                                    "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.3}])
>>> len(label_counts(anns).patches)
1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from annotebook.colors import label_color

from ._view import View

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .evaluation import Evaluation

__all__ = ["label_counts", "plot_confusion", "plot_pr", "plot_sizes"]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6, 4)).add_subplot()


def label_counts(anns: pd.DataFrame, labels: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """Bars of non-deleted rows per label, most first, in the labels table's colours; labels the table lacks
    are hatched."""
    view = View(anns)
    counts = pd.Series(view.label).value_counts()
    ax = _axes(ax)
    known = set(labels["name"].dropna()) if labels is not None and "name" in labels.columns else None
    names = [str(n) for n in counts.index]
    bars = ax.barh(range(len(names)), counts.to_numpy(), color=[label_color(n, labels) for n in names])
    for bar, name in zip(bars, names, strict=True):
        if known is not None and name not in known:
            bar.set_hatch("//")
            bar.set_edgecolor("black")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("rows")
    return ax


def plot_sizes(
    anns: pd.DataFrame,
    assets: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    what: str = "area",
    ax: Axes | None = None,
    bins: int = 30,
) -> Axes:
    """Histograms per label of region ``what``: "area" (pixels² with ``assets``, log scale) or "aspect"
    (width / height, log scale), in the labels table's colours."""
    if what not in ("area", "aspect"):
        raise ValueError(f"what is 'area' or 'aspect', not {what!r}")
    view = View(anns, assets)
    wh = view.wh
    with np.errstate(divide="ignore", invalid="ignore"):
        values = wh[:, 0] * wh[:, 1] if what == "area" else wh[:, 0] / wh[:, 1]
    ok = view.region & np.isfinite(values) & (values > 0)
    ax = _axes(ax)
    if not ok.any():
        ax.text(0.5, 0.5, "no regions", transform=ax.transAxes, ha="center", va="center")
        return ax
    edges = np.geomspace(values[ok].min(), values[ok].max() * 1.0001, bins + 1).tolist()
    for name in pd.Series(view.label[ok]).value_counts().index:
        sel = ok & (view.label == name)
        ax.hist(
            values[sel],
            bins=edges,
            histtype="step",
            linewidth=1.5,
            color=label_color(str(name), labels),
            label=str(name),
        )
    ax.set_xscale("log")
    ax.set_xlabel(
        {"area": "area (px²)" if view.sized[ok].all() else "area (of the image)", "aspect": "width / height"}[what]
    )
    ax.set_ylabel("regions")
    ax.legend(fontsize=8)
    return ax


def plot_confusion(confusion: pd.DataFrame, ax: Axes | None = None, normalize: bool = False) -> Axes:
    """A confusion matrix (as `Evaluation.confusion` gives it) as an image with counts in the cells."""
    values = confusion.to_numpy(dtype=float)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    ax = _axes(ax)
    ax.imshow(values, cmap="Blues")
    n_rows, n_cols = values.shape
    ax.set_xticks(range(n_cols), [str(c) for c in confusion.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(i) for i in confusion.index])
    top = values.max() if values.size else 0
    for (r, c), v in np.ndenumerate(values):
        if v:
            text = f"{v:.2f}" if normalize else f"{int(v)}"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color="white" if v > top / 2 else "black")
    ax.set_xlabel(str(confusion.columns.name or "predicted"))
    ax.set_ylabel(str(confusion.index.name or "truth"))
    return ax


def plot_pr(ev: Evaluation, ax: Axes | None = None, iou: float = 0.5, labels: pd.DataFrame | None = None) -> Axes:
    """COCO's interpolated precision-recall curve per label at ``iou``, AP in the legend."""
    curves = ev.pr_curve(iou)
    ap = ev.ap_at(iou)
    ax = _axes(ax)
    for name in curves.columns:
        ax.plot(curves.index, curves[name], color=label_color(str(name), labels), label=f"{name} (AP {ap[name]:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"IoU {iou:g}")
    ax.legend(fontsize=8)
    return ax
