"""The editor's tools: what a mouse press, move and release do, as functions of (state, event).

Events carry canvas coordinates, as ipycanvas sends them; the viewport turns them into image pixels. ipycanvas
0.14.3 sends every mouse move, no button and no modifier keys with mouse events, no double-click and no key-up,
so every tool is built from presses, releases and moves alone, and a double click is two releases close in
time and place. A tool keeps its interaction in progress in ``state.gesture`` and marks what to redraw in
``state.dirty``; a drag previews on the overlay layer only and commits one edit on release.

- **select**: a click selects the topmost region (a second click on the same spot selects the one beneath; hidden and
  locked regions are passed over); a drag moves the region; on the selected box, 8 handles resize it; on the
  selected polygon or polyline, a vertex drags, and a drag from an edge inserts a vertex there (a plain click on
  an edge changes nothing).
- **box**: press, drag, release (a click alone draws nothing). A press that never saw its release (a right click
  whose menu took the release, a release outside the page) is dropped by the next press.
- **polygon**: click the vertices; close on the first vertex, by a double click, or with Enter.
- **polyline**: click the vertices; finish by a double click or with Enter.
- **keypoints**: each click places the next of the label's keypoint names (labels table); a label without names
  takes one point. Enter finishes early (the missing points are unlabelled).
- **pan**: drag the image (the select tool also pans when dragged on empty space).

>>> from annotebook.widgets.sink import MemorySink
>>> from annotebook.widgets.state import EditorState
>>> state = EditorState(MemorySink(sizes={"a": (800, 600)}), ["a"], canvas_size=(800, 600))
>>> state.tool = "box"
>>> press(state, 10, 10); move(state, 50, 40); release(state, 100, 80)
>>> [r.box for r in state.regions.values()]
[(10.0, 10.0, 100.0, 80.0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from . import shapes
from .regions import Region
from .state import EditorState

__all__ = [
    "CLOSE_PX",
    "DOUBLE_CLICK_S",
    "DRAG_PX",
    "HANDLE_PX",
    "HIT_PX",
    "BoxDraft",
    "Drag",
    "PanDrag",
    "PathDraft",
    "cancel",
    "finish",
    "inside",
    "leave",
    "move",
    "press",
    "release",
    "set_tool",
    "undo_point",
    "wheel",
    "zoom",
]

DRAG_PX = 3.0  # a press and release further apart than this (canvas pixels) is a drag, not a click
HIT_PX = 5.0  # how near a line or point a click must be
HANDLE_PX = 7.0  # how near a handle or vertex
CLOSE_PX = 8.0  # how near the first vertex a click closes a polygon
DOUBLE_CLICK_S = 0.45
EDGE_PX = 12.0  # a pointer leaving the canvas this near its border really left it
WHEEL_PX_PER_DOUBLING = 400.0  # wheel delta (pixels, as browsers report it) that doubles or halves the zoom


@dataclass
class Drag:
    """The select tool's press, and the drag it may become: what was grabbed, and the preview."""

    x: float
    y: float
    grab: str  # "handle", "vertex", "edge", "region" or "" (nothing)
    original: Region | None = None
    handle: str = ""
    part: int = 0
    index: int = 0
    was_selected: bool = False
    dragging: bool = False
    preview: Region | None = None


@dataclass
class BoxDraft:
    """A box being drawn: its first corner (image pixels) and where the pointer is."""

    x: float
    y: float
    cx: float  # the press, on the canvas
    cy: float
    pointer: tuple[float, float]


@dataclass
class PathDraft:
    """A polygon, polyline or keypoints being clicked: the points so far (image pixels)."""

    kind: str
    label: str | None
    points: list[tuple[float, float]] = field(default_factory=list)
    pointer: tuple[float, float] | None = None
    last_click: tuple[float, float, float] | None = None  # canvas x, y and time of the last click
    names: tuple[str, ...] = ()


@dataclass
class PanDrag:
    """The pan tool's drag: where the pointer was last."""

    x: float
    y: float


def inside(state: EditorState, cx: float, cy: float) -> tuple[float, float]:
    """The image point under canvas point (cx, cy), kept on the image (the contract's [0, 1])."""
    x, y = state.viewport.to_image(cx, cy)
    return min(max(x, 0.0), state.info.width), min(max(y, 0.0), state.info.height)


def set_tool(state: EditorState, tool: str) -> None:
    """Switch tools; a drawing in progress is dropped."""
    cancel(state)
    state.tool = tool
    state.dirty.panel = state.dirty.overlay = True


def cancel(state: EditorState) -> None:
    """Drop the interaction in progress (Escape)."""
    if state.gesture is not None or state.hidden is not None:
        state.gesture = None
        state.dirty.overlay = True
        if state.hidden is not None:
            state.hidden = None
            state.dirty.regions = True


# ------------------------------------------------------------------------------------------------------------
# Events


def press(state: EditorState, cx: float, cy: float) -> None:
    """A mouse press at canvas point (cx, cy)."""
    state.pointer = (cx, cy)
    if state.tool == "select":
        state.gesture = _grab(state, cx, cy)
    elif state.tool == "pan":
        state.gesture = PanDrag(cx, cy)
    elif state.tool == "box":
        x, y = inside(state, cx, cy)  # a draft still open here lost its release: this press starts afresh
        state.gesture = BoxDraft(x, y, cx, cy, (x, y))
        state.dirty.overlay = True


def move(state: EditorState, cx: float, cy: float) -> None:
    """A mouse move (ipycanvas sends each one, pressed or not)."""
    state.pointer = (cx, cy)
    g = state.gesture
    if g is None:
        return
    if isinstance(g, Drag) and g.grab == "" and math.hypot(cx - g.x, cy - g.y) > DRAG_PX:
        g = state.gesture = PanDrag(g.x, g.y)  # the select tool dragged on empty space: a pan
    x, y = inside(state, cx, cy)
    if isinstance(g, Drag) and g.original is not None:
        if not g.dragging and math.hypot(cx - g.x, cy - g.y) > DRAG_PX:
            g.dragging = True
            state.hidden = g.original.id
            state.dirty.regions = True  # once: the region leaves the regions layer while it is dragged
        if g.dragging:
            g.preview = _dragged(state, g, x, y)
            state.dirty.overlay = True
    elif isinstance(g, PanDrag):
        state.set_viewport(state.viewport.pan(cx - g.x, cy - g.y))
        g.x, g.y = cx, cy
    elif isinstance(g, (BoxDraft, PathDraft)):
        g.pointer = (x, y)
        state.dirty.overlay = True


def release(state: EditorState, cx: float, cy: float) -> None:
    """A mouse release: ends a drag (one edit) or makes a click."""
    state.pointer = (cx, cy)
    g = state.gesture
    if isinstance(g, Drag):
        state.gesture = None
        _end_drag(state, g, cx, cy)
    elif isinstance(g, PanDrag):
        state.gesture = None
    elif isinstance(g, BoxDraft):
        _box_release(state, g, cx, cy)
    elif state.tool in ("polygon", "polyline", "keypoints"):
        _path_click(state, cx, cy)


def wheel(state: EditorState, dx: float, dy: float) -> None:
    """A wheel turn: zoom about the last pointer position (ipycanvas sends the deltas only, no position)."""
    zoom(state, 2.0 ** (-dy / WHEEL_PX_PER_DOUBLING))


def zoom(state: EditorState, factor: float) -> None:
    """Zoom by ``factor`` about the pointer (the canvas centre before the pointer was seen)."""
    cw, ch = state.canvas_size
    cx, cy = state.pointer if state.pointer is not None else (cw / 2, ch / 2)
    state.set_viewport(state.viewport.zoom_at(cx, cy, factor))


def leave(state: EditorState, cx: float, cy: float) -> None:
    """The pointer left the canvas: a drag that crossed the canvas's edge ends there (no release will come).

    A "leave" far inside the canvas is something opening over it (a context menu after a right click): the
    press was not a drag, so a drag or box in progress is dropped rather than committed. Clicked drafts stay.
    """
    g = state.gesture
    if not isinstance(g, (Drag, PanDrag, BoxDraft)):
        return
    w, h = state.canvas_size
    if min(cx, cy, w - cx, h - cy) > EDGE_PX:
        cancel(state)
        return
    release(state, cx, cy)


# ------------------------------------------------------------------------------------------------------------
# Select


def _grab(state: EditorState, cx: float, cy: float) -> Drag:
    """What a press picks up: a handle or vertex or edge of the selection, else the region under it."""
    x, y = state.viewport.to_image(cx, cy)
    near, hit = state.viewport.tolerance(HANDLE_PX), state.viewport.tolerance(HIT_PX)
    sel = state.selected()
    if sel is not None and sel.id not in state.locked:
        handle = shapes.handle_at(sel, x, y, near)
        if handle:
            return Drag(cx, cy, "handle", sel, handle=handle, was_selected=True)
        vertex = shapes.vertex_at(sel, x, y, near)
        if vertex:
            return Drag(cx, cy, "vertex", sel, part=vertex[0], index=vertex[1], was_selected=True)
        edge = shapes.edge_at(sel, x, y, hit)
        if edge:
            return Drag(cx, cy, "edge", sel, part=edge[0], index=edge[1], was_selected=True)
    under = shapes.regions_at(state.pickable(), x, y, hit)
    if not under:
        return Drag(cx, cy, "")
    target = state.selection if state.selection in under else under[0]
    was_selected = target == state.selection
    state.select(target)  # pressed: selected at once, so a drag shows its outline and a key acts on it
    return Drag(cx, cy, "region", state.regions[target], was_selected=was_selected)


def _dragged(state: EditorState, g: Drag, x: float, y: float) -> Region:
    assert g.original is not None
    if g.grab == "handle":
        return shapes.resized(g.original, g.handle, x, y)
    if g.grab == "vertex":
        return shapes.with_vertex(g.original, g.part, g.index, x, y)
    if g.grab == "edge":
        return shapes.with_inserted(g.original, g.part, g.index, x, y)
    x0, y0 = state.viewport.to_image(g.x, g.y)
    x1, y1 = state.viewport.to_image(*(state.pointer or (g.x, g.y)))
    dx, dy = shapes.kept_inside(g.original, x1 - x0, y1 - y0, state.info.width, state.info.height)
    return shapes.moved(g.original, dx, dy)


def _end_drag(state: EditorState, g: Drag, cx: float, cy: float) -> None:
    if g.original is not None and g.original.id not in state.regions:  # deleted meanwhile: nothing to move
        cancel(state)
        return
    if g.dragging and g.original is not None:
        x, y = inside(state, cx, cy)
        landed = state.commit(g.original, _dragged(state, g, x, y))
        state.hidden = None
        state.dirty.regions = state.dirty.overlay = True
        vertex = (g.part, g.index + (1 if g.grab == "edge" else 0)) if g.grab in ("vertex", "edge") else None
        state.select(landed.id if isinstance(landed, Region) else None, vertex)
        return
    _click(state, g, cx, cy)


def _click(state: EditorState, g: Drag, cx: float, cy: float) -> None:
    if g.grab == "vertex":
        state.select(state.selection, (g.part, g.index))
    elif g.grab == "edge":  # a click on an edge keeps the selection as it is: only a drag inserts a vertex
        state.select(state.selection, None)
    elif g.grab == "region" and g.original is not None:
        target = g.original.id
        last = state.last_pick
        if g.was_selected and last is not None and math.hypot(cx - last[0], cy - last[1]) <= HIT_PX:
            # a second click on the same spot: the next region beneath, so stacked regions are all reachable
            x, y = state.viewport.to_image(cx, cy)
            under = shapes.regions_at(state.pickable(), x, y, state.viewport.tolerance(HIT_PX))
            if target in under and len(under) > 1:
                target = under[(under.index(target) + 1) % len(under)]
        state.select(target)
        state.last_pick = (cx, cy)
    elif g.grab == "":
        state.select(None)
        state.last_pick = None


# ------------------------------------------------------------------------------------------------------------
# Box


def _box_release(state: EditorState, g: BoxDraft, cx: float, cy: float) -> None:
    x, y = inside(state, cx, cy)
    state.gesture = None
    state.dirty.overlay = True
    if math.hypot(cx - g.cx, cy - g.cy) <= DRAG_PX:
        state.message = "drag to draw a box"
        return
    box = (min(g.x, x), min(g.y, y), max(g.x, x), max(g.y, y))
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        state.message = "a box needs a width and a height"
        return
    landed = state.add(Region("", "box", state.label, box=box))
    state.select(landed.id)


# ------------------------------------------------------------------------------------------------------------
# Polygon, polyline, keypoints


def _path_click(state: EditorState, cx: float, cy: float) -> None:
    g = state.gesture
    if not isinstance(g, PathDraft) or g.kind != state.tool:
        names = state.keypoint_names(state.label) if state.tool == "keypoints" else ()
        g = state.gesture = PathDraft(state.tool, state.label, names=names)
    now = state.clock()
    x, y = inside(state, cx, cy)
    state.dirty.overlay = True
    if g.kind == "polygon" and len(g.points) >= 3:
        fx, fy = state.viewport.to_canvas(*g.points[0])
        if math.hypot(cx - fx, cy - fy) <= CLOSE_PX:
            finish(state)
            return
    last = g.last_click
    double = last is not None and now - last[2] <= DOUBLE_CLICK_S and math.hypot(cx - last[0], cy - last[1]) <= CLOSE_PX
    if double and g.kind != "keypoints":
        finish(state)  # the double click's first click already placed its vertex
        return
    g.last_click = (cx, cy, now)
    g.points.append((x, y))
    if g.kind == "keypoints" and len(g.points) >= max(len(g.names), 1):
        finish(state)


def undo_point(state: EditorState) -> bool:
    """Drop the last clicked point of a drawing in progress (Backspace while drawing)."""
    g = state.gesture
    if isinstance(g, PathDraft) and g.points:
        g.points.pop()
        g.last_click = None
        state.dirty.overlay = True
        return True
    return False


def finish(state: EditorState) -> bool:
    """Complete the polygon, polyline or keypoints being drawn (Enter); False when there is none to complete."""
    g = state.gesture
    if not isinstance(g, PathDraft):
        return False
    need = {"polygon": 3, "polyline": 2, "keypoints": 1}[g.kind]
    if len(g.points) < need:
        state.message = f"a {g.kind} needs at least {need} points"
        return False
    state.gesture = None
    state.dirty.overlay = True
    flat = tuple(v for p in g.points for v in p)
    region = Region("", g.kind, g.label, points=(flat,))
    if g.kind == "keypoints":
        missing = max(len(g.names) - len(g.points), 0)
        region = replace(
            region,
            points=(flat + (math.nan, math.nan) * missing,),
            visibility=(2,) * len(g.points) + (0,) * missing,
        )
    landed = state.add(region)
    state.select(landed.id)
    return True
