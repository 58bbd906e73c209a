"""Drawing the state onto canvas layers: regions in batches, and the overlay of selection, handles and drafts.

A layer is anything with ipycanvas' `Canvas` drawing methods; nothing here imports ipycanvas. The regions are
grouped by colour and drawn with ipycanvas' batch calls (``stroke_rects``, ``fill_polygons``,
``stroke_line_segments``, ``fill_circles``), so 1,000 regions are a few dozen commands plus one ``fill_text`` per
label; the caller wraps a redraw in one ``hold_canvas()`` so that it travels as one message. Coordinates are
turned into canvas pixels here, through the viewport, as float32 (plenty for a screen, half the bytes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from . import shapes, tools
from .regions import BOX_KINDS, Region
from .state import EditorState
from .viewport import Viewport

__all__ = ["draw_overlay", "draw_regions", "place_labels", "region_anchor", "region_extent"]

Colors = Callable[[str | None], str]
F32 = npt.NDArray[np.float32]
LINE = 2.0
POINT_RADIUS = 4.0
HANDLE = 7.0
FONT_PX = 12
CHAR_PX = 7.0  # a rough width of one character of the label font, for the label's background
LABEL_CELL = 64.0  # canvas pixels per cell of the grid that finds overlapping labels
LABEL_STEPS = 6  # places tried below a region's corner before a label may overlap another
LABEL_AVOID_MAX = 400  # above this many labels on the canvas they take their usual places, overlaps and all


def _xy(part: Iterable[float]) -> npt.NDArray[np.float64]:
    return np.asarray(tuple(part), dtype=np.float64).reshape(-1, 2)


def _canvas(view: Viewport, xy: npt.ArrayLike) -> F32:
    return view.xy_to_canvas(xy).astype(np.float32)


class _Batch:
    """The drawing of one colour: arrays collected per primitive, sent as one call each."""

    def __init__(self) -> None:
        self.rects: list[tuple[float, float, float, float]] = []
        self.dashed_rects: list[tuple[float, float, float, float]] = []
        self.rings: list[F32] = []  # closed outlines (rotated boxes, polygon rings)
        self.fills: list[F32] = []  # one-ring polygons, filled in one call
        self.holed: list[list[F32]] = []  # polygons with holes, filled one path each (even-odd)
        self.lines: list[F32] = []
        self.dots: list[F32] = []
        self.rings_of_dots: list[F32] = []  # occluded keypoints: an outline only


def _collect(batch: _Batch, r: Region, view: Viewport, skeleton: tuple[tuple[int, int], ...]) -> None:
    if r.kind in BOX_KINDS and r.box is not None:
        if r.rotation % 360:
            batch.rings.append(_canvas(view, shapes.box_corners(r)))
            return
        x0, y0 = view.to_canvas(r.box[0], r.box[1])
        x1, y1 = view.to_canvas(r.box[2], r.box[3])
        (batch.dashed_rects if r.kind == "grounding" else batch.rects).append((x0, y0, x1 - x0, y1 - y0))
    elif r.kind == "polygon":
        rings = [_canvas(view, _xy(p)) for p in r.points if len(p) >= 6]
        batch.rings += rings
        if len(rings) == 1:
            batch.fills.append(rings[0])
        elif rings:
            batch.holed.append(rings)
    elif r.kind == "polyline":
        batch.lines += [_canvas(view, _xy(p)) for p in r.points if len(p) >= 4]
    elif r.kind == "keypoints" and r.points:
        xy = _canvas(view, _xy(r.points[0]))
        vis = np.asarray(r.visibility or (2,) * len(xy), dtype=int)[: len(xy)]
        vis = np.concatenate([vis, np.full(len(xy) - len(vis), 2)])
        shown = (vis > 0) & np.isfinite(xy).all(axis=1)
        batch.lines += [xy[[i, j]] for i, j in skeleton if max(i, j) < len(xy) and shown[i] and shown[j]]
        batch.dots.append(xy[shown & (vis == 2)])
        batch.rings_of_dots.append(xy[shown & (vis == 1)])


def _flush(layer: Any, color: str, b: _Batch) -> None:
    layer.stroke_style = color
    layer.fill_style = color
    if b.fills or b.holed:
        layer.global_alpha = 0.2
        if b.fills:
            layer.fill_polygons(b.fills)
        for rings in b.holed:
            layer.begin_path()
            for ring in rings:
                layer.move_to(float(ring[0, 0]), float(ring[0, 1]))
                for x, y in ring[1:].tolist():
                    layer.line_to(x, y)
                layer.close_path()
            layer.fill("evenodd")
        layer.global_alpha = 1.0
    if b.rects:
        layer.stroke_rects(*np.asarray(b.rects, dtype=np.float32).T)
    if b.dashed_rects:
        layer.set_line_dash([6, 4])
        layer.stroke_rects(*np.asarray(b.dashed_rects, dtype=np.float32).T)
        layer.set_line_dash([])
    if b.rings:
        layer.stroke_polygons(b.rings)
    if b.lines:
        layer.stroke_line_segments(b.lines)
    dots = np.concatenate(b.dots) if b.dots else np.empty((0, 2))
    if len(dots):
        layer.fill_circles(dots[:, 0], dots[:, 1], POINT_RADIUS)
    hollow = np.concatenate(b.rings_of_dots) if b.rings_of_dots else np.empty((0, 2))
    if len(hollow):
        layer.stroke_circles(hollow[:, 0], hollow[:, 1], POINT_RADIUS)


def region_anchor(r: Region) -> tuple[float, float] | None:
    """Where a region's label goes (image pixels): the top-left of its extent."""
    if r.box is not None:
        corners = shapes.box_corners(r)
        return min(x for x, _ in corners), min(y for _, y in corners)
    xy = np.concatenate([_xy(p) for p in r.points]) if r.points else np.empty((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    return (float(xy[:, 0].min()), float(xy[:, 1].min())) if len(xy) else None


def _label_text(r: Region) -> str:
    """A region's label; a grounding box adds its phrase (once, when the phrase is its tag's name)."""
    if r.kind == "grounding" and r.text:
        return f"{r.label}: {r.text}" if r.label and r.label != r.text else r.text
    return r.label or r.kind


def draw_regions(layer: Any, state: EditorState, colors: Colors, skeletons: dict[str, Any] | None = None) -> None:
    """Clear ``layer`` and draw every region but the one being dragged, batched per colour, then the labels."""
    view = state.viewport
    skeletons = skeletons or {}
    layer.clear()
    layer.line_width = LINE
    batches: dict[str, _Batch] = defaultdict(_Batch)
    shown = [r for r in state.regions.values() if r.id != state.hidden and r.id not in state.hidden_ids]
    for r in shown:
        _collect(batches[colors(r.label)], r, view, skeletons.get(r.label or "", ()))
    for color, batch in batches.items():
        _flush(layer, color, batch)
    if state.show_labels and shown:
        _draw_labels(layer, shown, view, colors)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def place_labels(
    items: list[tuple[float, float, float, float, float]], bounds: tuple[float, float]
) -> list[tuple[float, float]]:
    """Where each label goes so that no two overlap: ``items`` are (x0, y0, x1, y1, text width) of each region's
    extent on the canvas; the result is each label's top-left. Tried in turn: above the region's top-left corner,
    inside it, below it, above its top-right corner (each only where it stays within ``bounds``), then a few
    steps down from the first choice; when all are taken (hundreds of labels on one spot) the first choice.
    Placed labels are kept in a grid of cells, so each try looks at its neighbours only."""
    h = float(FONT_PX + 4)
    grid: dict[tuple[int, int], list[tuple[float, float, float, float]]] = defaultdict(list)
    out: list[tuple[float, float]] = []

    def cells(r: tuple[float, float, float, float]) -> list[tuple[int, int]]:
        return [
            (i, j)
            for i in range(int(r[0] // LABEL_CELL), int((r[0] + r[2]) // LABEL_CELL) + 1)
            for j in range(int(r[1] // LABEL_CELL), int((r[1] + r[3]) // LABEL_CELL) + 1)
        ]

    def free(t: tuple[float, float], w: float) -> bool:
        if not (t[1] >= 0 and t[1] + h <= bounds[1] and t[0] + w >= 0 and t[0] <= bounds[0]):
            return False
        r = (t[0], t[1], w, h)
        return not any(_overlaps(r, p) for c in cells(r) for p in grid.get(c, ()))

    if len(items) > LABEL_AVOID_MAX:  # a crowd of labels: the usual place each, at once
        return [(x0, y0 - h) if y0 - h >= 0 else (x0, y0) for x0, y0, _, _, _ in items]
    for x0, y0, x1, y1, w in items:
        tries = [(x0, y0 - h), (x0, y0), (x0, y1), (x1 - w, y0 - h), (x1 - w, y1)]
        tries += [(x0, y0 + k * h) for k in range(1, LABEL_STEPS + 1)]
        spot = next((t for t in tries if free(t, w)), tries[0] if tries[0][1] >= 0 else tries[1])
        rect = (spot[0], spot[1], w, h)
        for c in cells(rect):
            grid[c].append(rect)
        out.append(spot)
    return out


def region_extent(r: Region) -> tuple[float, float, float, float] | None:
    """The region's extent (image pixels), rotated box corners and finite points included."""
    if r.box is not None:
        xs, ys = zip(*shapes.box_corners(r), strict=True)
        return min(xs), min(ys), max(xs), max(ys)
    xy = np.concatenate([_xy(p) for p in r.points]) if r.points else np.empty((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return None
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _draw_labels(layer: Any, regions: list[Region], view: Viewport, colors: Colors) -> None:
    todo: list[tuple[Region, str, tuple[float, float, float, float, float]]] = []
    for r in regions:
        extent = region_extent(r)
        if extent is not None:
            x0, y0 = view.to_canvas(extent[0], extent[1])
            x1, y1 = view.to_canvas(extent[2], extent[3])
            text = _label_text(r)
            todo.append((r, text, (x0, y0, x1, y1, len(text) * CHAR_PX + 6)))
    spots = place_labels([t[2] for t in todo], (float(view.canvas_width), float(view.canvas_height)))
    placed: dict[str, list[tuple[float, float, float, str]]] = defaultdict(list)
    for (r, text, item), (x, y) in zip(todo, spots, strict=True):
        placed[colors(r.label)].append((x, y, item[4], text))
    layer.font = f"{FONT_PX}px sans-serif"
    layer.text_baseline = "top"
    for color, items in placed.items():
        layer.fill_style = color
        arr = np.asarray([i[:3] for i in items], dtype=np.float32)
        layer.fill_rects(arr[:, 0], arr[:, 1], arr[:, 2], float(FONT_PX + 4))
    layer.fill_style = "white"
    for items in placed.values():
        for x, y, _, text in items:
            layer.fill_text(text, float(x) + 3, float(y) + 2)


# ------------------------------------------------------------------------------------------------------------
# The overlay: what moves with the pointer


def _outline(layer: Any, r: Region, view: Viewport) -> None:
    if r.box is not None:
        layer.stroke_polygon(_canvas(view, shapes.box_corners(r)).tolist())
        return
    if r.kind == "keypoints" and r.points:
        xy = _canvas(view, _xy(r.points[0]))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy):
            layer.stroke_circles(xy[:, 0], xy[:, 1], POINT_RADIUS + 2)
        return
    for part in r.points:
        xy = _canvas(view, _xy(part))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if r.kind == "polygon" and len(xy) >= 3:
            layer.stroke_polygon(xy.tolist())
        elif r.kind == "polyline" and len(xy) >= 2:
            layer.stroke_lines(xy.tolist())


def _handles(layer: Any, r: Region, view: Viewport, vertex: tuple[int, int] | None) -> None:
    pts: npt.NDArray[Any]
    if r.box is not None:
        pts = _canvas(view, list(shapes.handle_points(r).values()))
    else:
        pts = np.concatenate([_canvas(view, _xy(p)) for p in r.points]) if r.points else np.empty((0, 2))
        pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        return
    h = HANDLE
    layer.fill_style = "white"
    layer.fill_rects(pts[:, 0] - h / 2, pts[:, 1] - h / 2, h)
    layer.stroke_rects(pts[:, 0] - h / 2, pts[:, 1] - h / 2, h)
    if vertex is not None and r.box is None and vertex[0] < len(r.points):
        part = r.points[vertex[0]]
        if 2 * vertex[1] + 1 < len(part):
            x, y = view.to_canvas(part[2 * vertex[1]], part[2 * vertex[1] + 1])
            layer.fill_style = "#ff3b30"
            layer.fill_rect(x - h / 2 - 1, y - h / 2 - 1, h + 2, h + 2)


def _draft(layer: Any, state: EditorState, colors: Colors) -> None:
    g, view = state.gesture, state.viewport
    layer.set_line_dash([5, 4])
    if isinstance(g, tools.BoxDraft):
        layer.stroke_style = colors(state.label)
        x0, y0 = view.to_canvas(g.x, g.y)
        x1, y1 = view.to_canvas(*g.pointer)
        layer.stroke_rect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
    elif isinstance(g, tools.PathDraft):
        layer.stroke_style = layer.fill_style = colors(g.label)
        pts = [view.to_canvas(*p) for p in g.points]
        trail = pts + ([view.to_canvas(*g.pointer)] if g.pointer is not None else [])
        if g.kind != "keypoints" and len(trail) >= 2:
            layer.stroke_lines(trail)
        if pts:
            xy = np.asarray(pts, dtype=np.float32)
            layer.fill_circles(xy[:, 0], xy[:, 1], POINT_RADIUS)
            if g.kind == "polygon" and len(pts) >= 3:  # the first vertex closes the polygon
                layer.stroke_circle(pts[0][0], pts[0][1], tools.CLOSE_PX)
        if g.kind == "keypoints" and len(g.points) < len(g.names) and g.pointer is not None:
            x, y = view.to_canvas(*g.pointer)
            hint = f"{len(g.points) + 1}/{len(g.names)}: {g.names[len(g.points)]}"
            layer.set_line_dash([])
            layer.font = f"bold {FONT_PX + 1}px sans-serif"
            layer.text_baseline = "top"
            layer.fill_style = "rgba(0, 0, 0, 0.75)"  # a dark plate, so the hint reads on any image
            layer.fill_rect(x + 10, y + 10, len(hint) * (CHAR_PX + 1) + 8, FONT_PX + 8)
            layer.fill_style = "white"
            layer.fill_text(hint, x + 14, y + 13)
    layer.set_line_dash([])


def draw_overlay(layer: Any, state: EditorState, colors: Colors) -> None:
    """Clear ``layer`` and draw the dragged region's preview, the selection with its handles, and any draft."""
    view = state.viewport
    layer.clear()
    g = state.gesture
    shown = g.preview if isinstance(g, tools.Drag) and g.dragging and g.preview is not None else state.selected()
    if shown is not None:
        layer.line_width = LINE + 1
        layer.stroke_style = colors(shown.label)
        _outline(layer, shown, view)
        layer.line_width = 1.0
        layer.stroke_style = "black"
        _handles(layer, shown, view, state.vertex)
    if isinstance(g, (tools.BoxDraft, tools.PathDraft)):
        layer.line_width = LINE
        _draft(layer, state, colors)
