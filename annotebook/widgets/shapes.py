"""Pure geometry of regions in pixels: hit tests, moving, resizing by a handle, and vertex edits.

Every function takes `Region` values and returns new ones; nothing here knows about canvases or tables.
Boxes may be rotated (clockwise degrees about their centre, y down), so box geometry goes through the box's own
frame: ``to_local`` turns an image point into coordinates along the box's axes, relative to its centre.

>>> from annotebook.widgets.regions import Region
>>> box = Region("1", "box", "cat", box=(10.0, 10.0, 50.0, 30.0))
>>> resized(box, "se", 60.0, 40.0).box
(10.0, 10.0, 60.0, 40.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .regions import BOX_KINDS, Region

__all__ = [
    "HANDLES",
    "BoxFrame",
    "box_corners",
    "contains",
    "edge_at",
    "extent",
    "handle_at",
    "handle_points",
    "kept_inside",
    "moved",
    "regions_at",
    "resized",
    "vertex_at",
    "with_inserted",
    "with_vertex",
    "without_vertex",
]

#: the 8 resize handles of a box, as (u, v) along its axes: -1 the low side, 0 the middle, 1 the high side
HANDLES = {
    "nw": (-1, -1),
    "n": (0, -1),
    "ne": (1, -1),
    "e": (1, 0),
    "se": (1, 1),
    "s": (0, 1),
    "sw": (-1, 1),
    "w": (-1, 0),
}
MIN_VERTICES = {"polygon": 3, "polyline": 2}


@dataclass(frozen=True)
class BoxFrame:
    """A box's centre, half sizes and rotation: its own coordinate frame."""

    cx: float
    cy: float
    hw: float
    hh: float
    cos: float
    sin: float

    @classmethod
    def of(cls, box: tuple[float, float, float, float], rotation: float) -> BoxFrame:
        """The frame of box ``(x0, y0, x1, y1)`` turned clockwise by ``rotation`` degrees."""
        x0, y0, x1, y1 = box
        theta = math.radians(rotation)
        return cls((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, math.cos(theta), math.sin(theta))

    def to_local(self, x: float, y: float) -> tuple[float, float]:
        """Image point (x, y) along the box's axes, from its centre."""
        dx, dy = x - self.cx, y - self.cy
        return dx * self.cos + dy * self.sin, -dx * self.sin + dy * self.cos

    def to_world(self, u: float, v: float) -> tuple[float, float]:
        """The image point at (u, v) along the box's axes."""
        return self.cx + u * self.cos - v * self.sin, self.cy + u * self.sin + v * self.cos


def box_corners(region: Region) -> list[tuple[float, float]]:
    """Top-left, top-right, bottom-right, bottom-left of a (maybe rotated) box, in pixels."""
    assert region.box is not None
    f = BoxFrame.of(region.box, region.rotation)
    return [f.to_world(u * f.hw, v * f.hh) for u, v in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def handle_points(region: Region) -> dict[str, tuple[float, float]]:
    """Where each of a box's 8 handles is, in pixels."""
    assert region.box is not None
    f = BoxFrame.of(region.box, region.rotation)
    return {name: f.to_world(u * f.hw, v * f.hh) for name, (u, v) in HANDLES.items()}


# ------------------------------------------------------------------------------------------------------------
# Hit tests (``tol`` is a distance in image pixels)


def _near_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float, float]:
    """(distance, qx, qy): the distance from (x, y) to segment ab and the nearest point on it."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    qx, qy = ax + t * dx, ay + t * dy
    return math.hypot(x - qx, y - qy), qx, qy


def _pairs(part: tuple[float, ...]) -> list[tuple[float, float]]:
    return [(part[i], part[i + 1]) for i in range(0, len(part) - 1, 2)]


def _inside_ring(x: float, y: float, ring: list[tuple[float, float]]) -> bool:
    inside = False
    for (ax, ay), (bx, by) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def _edges(region: Region) -> list[tuple[int, int, tuple[float, float], tuple[float, float]]]:
    """(part, i, a, b) for each edge from vertex i; polygons are closed, polylines open, keypoints have none."""
    if region.kind not in ("polygon", "polyline"):
        return []
    out = []
    for k, part in enumerate(region.points):
        xy = _pairs(part)
        ends = xy[1:] + xy[:1] if region.kind == "polygon" else xy[1:]
        out += [(k, i, a, b) for i, (a, b) in enumerate(zip(xy, ends, strict=False))]
    return out


def contains(region: Region, x: float, y: float, tol: float) -> bool:
    """Whether (x, y) is on ``region``: inside a box or polygon, or within ``tol`` of a line or point."""
    if region.kind in BOX_KINDS and region.box is not None:
        f = BoxFrame.of(region.box, region.rotation)
        u, v = f.to_local(x, y)
        return abs(u) <= f.hw + tol and abs(v) <= f.hh + tol
    if region.kind == "polygon":
        inside = sum(_inside_ring(x, y, _pairs(p)) for p in region.points) % 2 == 1
        if inside:
            return True
    if region.kind == "keypoints":
        return vertex_at(region, x, y, tol) is not None
    return edge_at(region, x, y, tol) is not None


def regions_at(regions: list[Region], x: float, y: float, tol: float) -> list[str]:
    """Ids of the regions under (x, y), topmost (last drawn) first."""
    return [r.id for r in reversed(regions) if contains(r, x, y, tol)]


def handle_at(region: Region, x: float, y: float, tol: float) -> str | None:
    """The name of the box handle within ``tol`` of (x, y), corners first."""
    if region.kind not in BOX_KINDS or region.box is None:
        return None
    hits = [(math.hypot(x - hx, y - hy), name) for name, (hx, hy) in handle_points(region).items()]
    best = min(hits)
    return best[1] if best[0] <= tol else None


def vertex_at(region: Region, x: float, y: float, tol: float) -> tuple[int, int] | None:
    """(part, index) of the nearest vertex within ``tol`` of (x, y); unlabelled keypoints are skipped."""
    best: tuple[float, int, int] | None = None
    for k, part in enumerate(region.points):
        for i, (vx, vy) in enumerate(_pairs(part)):
            d = math.hypot(x - vx, y - vy)
            if d <= tol and (best is None or d < best[0]):
                best = (d, k, i)
    return None if best is None else (best[1], best[2])


def edge_at(region: Region, x: float, y: float, tol: float) -> tuple[int, int, float, float] | None:
    """(part, i, qx, qy): the nearest edge within ``tol``, from vertex i, and the nearest point on it."""
    best: tuple[float, int, int, float, float] | None = None
    for k, i, a, b in _edges(region):
        d, qx, qy = _near_segment(x, y, a, b)
        if d <= tol and (best is None or d < best[0]):
            best = (d, k, i, qx, qy)
    return None if best is None else best[1:]


# ------------------------------------------------------------------------------------------------------------
# Edits: each returns a new Region


def extent(region: Region) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the region's corners or labelled vertices; NaNs when it has none."""
    if region.box is not None:
        xy = box_corners(region)
    else:
        xy = [p for part in region.points for p in _pairs(part) if p[0] == p[0] and p[1] == p[1]]
    if not xy:
        return (math.nan,) * 4
    return min(x for x, _ in xy), min(y for _, y in xy), max(x for x, _ in xy), max(y for _, y in xy)


def kept_inside(region: Region, dx: float, dy: float, width: float, height: float) -> tuple[float, float]:
    """The shift (dx, dy) cut down so that a region inside the image stays inside it."""
    x0, y0, x1, y1 = extent(region)
    if x0 >= 0 and x1 <= width:
        dx = min(max(dx, -x0), width - x1)
    if y0 >= 0 and y1 <= height:
        dy = min(max(dy, -y0), height - y1)
    return dx, dy


def moved(region: Region, dx: float, dy: float) -> Region:
    """``region`` shifted by (dx, dy) pixels."""
    if region.box is not None:
        x0, y0, x1, y1 = region.box
        return replace(region, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))
    shift = (dx, dy)
    return replace(region, points=tuple(tuple(v + shift[i % 2] for i, v in enumerate(p)) for p in region.points))


def resized(region: Region, handle: str, x: float, y: float) -> Region:
    """The box with ``handle`` dragged to (x, y); the opposite side stays put (a crossing flips the box)."""
    assert region.box is not None
    u, v = HANDLES[handle]
    if region.rotation % 360 == 0:  # axis-aligned: set the edges themselves, exactly
        x0, y0, x1, y1 = region.box
        x0, x1 = (x, x1) if u < 0 else (x0, x) if u > 0 else (x0, x1)
        y0, y1 = (y, y1) if v < 0 else (y0, y) if v > 0 else (y0, y1)
        return replace(region, box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    f = BoxFrame.of(region.box, region.rotation)
    qx, qy = f.to_local(x, y)
    a0, a1 = (qx, f.hw) if u < 0 else (-f.hw, qx) if u > 0 else (-f.hw, f.hw)
    b0, b1 = (qy, f.hh) if v < 0 else (-f.hh, qy) if v > 0 else (-f.hh, f.hh)
    cx, cy = f.to_world((a0 + a1) / 2, (b0 + b1) / 2)
    hw, hh = abs(a1 - a0) / 2, abs(b1 - b0) / 2
    return replace(region, box=(cx - hw, cy - hh, cx + hw, cy + hh))


def _with_part(region: Region, k: int, part: tuple[float, ...]) -> Region:
    return replace(region, points=(*region.points[:k], part, *region.points[k + 1 :]))


def with_vertex(region: Region, k: int, i: int, x: float, y: float) -> Region:
    """``region`` with vertex ``i`` of part ``k`` at (x, y); a keypoint placed there becomes visible."""
    part = region.points[k]
    out = _with_part(region, k, (*part[: 2 * i], x, y, *part[2 * i + 2 :]))
    vis = region.visibility
    if region.kind == "keypoints" and vis is not None and i < len(vis) and vis[i] == 0:
        out = replace(out, visibility=(*vis[:i], 2, *vis[i + 1 :]))
    return out


def with_inserted(region: Region, k: int, i: int, x: float, y: float) -> Region:
    """``region`` with a new vertex (x, y) after vertex ``i`` of part ``k``."""
    part = region.points[k]
    return _with_part(region, k, (*part[: 2 * i + 2], x, y, *part[2 * i + 2 :]))


def without_vertex(region: Region, k: int, i: int) -> Region | None:
    """``region`` without vertex ``i`` of part ``k``; None when the part would get too few vertices.

    A keypoint is not removed (its position is its name): it becomes unlabelled (NaN, visibility 0).
    """
    part = region.points[k]
    if region.kind == "keypoints":
        vis = region.visibility or (2,) * (len(part) // 2)
        out = _with_part(region, k, (*part[: 2 * i], math.nan, math.nan, *part[2 * i + 2 :]))
        return replace(out, visibility=(*vis[:i], 0, *vis[i + 1 :]))
    if len(part) // 2 <= MIN_VERTICES.get(region.kind, 1):
        return None
    return _with_part(region, k, part[: 2 * i] + part[2 * i + 2 :])
