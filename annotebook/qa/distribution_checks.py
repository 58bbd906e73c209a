"""Regions whose size or shape is unusual for their own label.

Each label's regions (box and polygon rows) are compared with that label's own distribution by a robust z-score
of the logarithm: ``z = (log v - median) / (1.4826 * MAD)``, the MAD floored so that a label whose regions are all
alike (every circle's box is square) does not call a rounding difference an outlier. Labels with fewer than
``min_rows`` regions have no distribution to speak of and are skipped. Sizes and aspects are in pixels where the
assets table gives sizes (an aspect in normalised units would change with the image's shape).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._view import View
from .findings import Found

__all__ = ["aspect_outlier", "size_outlier"]


def _robust_z(values: np.ndarray, groups: np.ndarray, floor: float, min_rows: int) -> np.ndarray:
    """Per value, its robust z within its group (NaN for groups under ``min_rows`` and for NaN values)."""
    s = pd.Series(values)
    g = s.groupby(groups)
    median = g.transform("median")
    mad = (s - median).abs().groupby(groups).transform("median")
    n = g.transform("count")
    scale = np.maximum(1.4826 * mad.to_numpy(dtype=float), floor)
    z = (s - median).to_numpy(dtype=float) / scale
    z[n.to_numpy(dtype=float) < min_rows] = np.nan
    return z


def _outliers(
    view: View, check: str, values: np.ndarray, noun: str, z_max: float, floor: float, min_rows: int
) -> Found:
    rows = np.flatnonzero(view.region & np.isfinite(values) & (values > 0) & (view.label_codes >= 0))
    logv = np.log(values[rows])
    z = _robust_z(logv, view.label_codes[rows], floor, min_rows)
    with np.errstate(invalid="ignore"):
        hit = np.abs(z) > z_max
    at, zz = rows[hit], z[hit]
    typical = np.exp(pd.Series(logv).groupby(view.label_codes[rows]).transform("median").to_numpy()[hit])
    unit = " px²" if noun == "area" and view.sized[at].all() else ""
    detail = [
        f"{'small' if zv < 0 else 'large'} {noun} for {lab!r}: {v:.3g}{unit} (its median {t:.3g}{unit}, z {zv:+.1f})"
        if noun == "area"
        else f"{'narrow' if zv < 0 else 'wide'} for {lab!r}: {noun} {v:.2f} (its median {t:.2f}, z {zv:+.1f})"
        for lab, v, t, zv in zip(view.label[at], values[at], typical, zz, strict=True)
    ]
    return Found(check, view.ids[at], view.asset[at], "info", detail, np.minimum(np.abs(zz) / (2 * z_max), 1.0))


def size_outlier(view: View, *, z: float = 3.5, floor: float = 0.25, min_rows: int = 8) -> Found:
    """Regions tiny or huge for their label: |robust z| of log area above ``z`` (default 3.5, the usual cut for
    the modified z-score), the MAD scale floored at ``floor`` (0.25 in log units: about 28% in area). Severity
    info; score |z| / 2z, capped at 1.
    """
    wh = view.wh
    return _outliers(view, "size_outlier", wh[:, 0] * wh[:, 1], "area", z, floor, min_rows)


def aspect_outlier(view: View, *, z: float = 4.0, floor: float = 0.1, min_rows: int = 8) -> Found:
    """Regions unusually wide or narrow for their label: |robust z| of log(width / height) above ``z`` (default
    4), the scale floored at ``floor`` (0.1 in log units: about 10%). Severity info; score |z| / 2z, capped at 1.
    """
    wh = view.wh
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = wh[:, 0] / wh[:, 1]
    return _outliers(view, "aspect_outlier", aspect, "aspect", z, floor, min_rows)
