"""Vertex lists of many rows as flat arrays, so polygon areas and keypoint tests run without a loop per row."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class FlatParts:
    """The parts of some rows' ``points``: vertex coordinates and, per vertex, its part; per part, its row."""

    xy: FloatArray  # (m, 2)
    part_of_vertex: IntArray  # (m,)
    row_of_part: IntArray  # (p,) positions into the rows handed in
    first_part: npt.NDArray[np.bool_]  # (p,) whether the part is its row's first (a polygon's outline)
    starts: IntArray  # (p,) index of each part's first vertex in xy

    @property
    def row_of_vertex(self) -> IntArray:
        return np.asarray(self.row_of_part[self.part_of_vertex], dtype=np.intp)


def flat_parts(points: npt.NDArray[Any]) -> FlatParts:
    """Flatten an object array of ``points`` values (tuples of flat ``(x, y, ...)`` tuples; None for none).

    Parts with an odd number of coordinates lose their last one (validation reports them).
    """
    rows = [p if isinstance(p, (tuple, list)) else () for p in points]
    n_parts = np.fromiter(map(len, rows), dtype=np.intp, count=len(rows))
    parts = list(itertools.chain.from_iterable(rows))
    lengths = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
    coords = np.fromiter(itertools.chain.from_iterable(parts), dtype=np.float64, count=int(lengths.sum()))
    keep = np.ones(len(coords), dtype=bool)
    odd = np.flatnonzero(lengths % 2)
    keep[np.cumsum(lengths)[odd] - 1] = False
    xy = coords[keep].reshape(-1, 2)
    vertices = lengths // 2
    row_of_part = np.repeat(np.arange(len(rows)), n_parts)
    first_part = np.zeros(len(parts), dtype=bool)
    first_part[(np.cumsum(n_parts) - n_parts)[n_parts > 0]] = True
    starts = np.cumsum(vertices) - vertices
    return FlatParts(xy, np.repeat(np.arange(len(parts)), vertices), row_of_part, first_part, starts)


def polygon_areas(points: npt.NDArray[Any]) -> FloatArray:
    """Shoelace area per row: the first ring's area minus the later rings' (holes); NaN for a row with no ring."""
    flat = flat_parts(points)
    out = np.full(len(points), np.nan)
    if not len(flat.xy):
        return out
    nxt = np.arange(1, len(flat.xy) + 1)
    ends = np.append(flat.starts[1:], len(flat.xy)) - 1
    nonempty = ends >= flat.starts
    nxt[ends[nonempty]] = flat.starts[nonempty]
    x, y = flat.xy[:, 0], flat.xy[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    ring = 0.5 * np.abs(np.bincount(flat.part_of_vertex, weights=cross, minlength=len(flat.row_of_part)))
    signed = np.where(flat.first_part, ring, -ring)
    has = np.bincount(flat.row_of_part, weights=nonempty, minlength=len(points)) > 0
    total = np.bincount(flat.row_of_part, weights=signed, minlength=len(points))
    out[has] = total[has]
    return out
