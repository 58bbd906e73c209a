"""Keyboard shortcuts: one table, the help line made from it, and what each key does to the state.

ipycanvas sends ``key_down`` with the key name (the browser's ``KeyboardEvent.key``) and the shift / ctrl /
meta flags while the canvas has the focus (click it first); there is no key-up, so nothing is "held".

>>> from annotebook.widgets.sink import MemorySink
>>> from annotebook.widgets.state import EditorState
>>> state = EditorState(MemorySink(), ["a"])
>>> on_key(state, "b"), state.tool
('tool', 'box')
"""

from __future__ import annotations

from collections.abc import Callable

from . import shapes, tools
from .regions import Region
from .state import EditorState

__all__ = ["HELP", "SHORTCUTS", "TOOL_KEYS", "on_key"]

TOOL_KEYS = {"v": "select", "b": "box", "g": "polygon", "l": "polyline", "k": "keypoints", "h": "pan"}
NUDGE_PX = 1.0  # image pixels per arrow press (Shift: ten times)
PAN_PX = 60.0  # canvas pixels per arrow press when nothing is selected, or with Ctrl
ZOOM_STEP = 1.25
ARROWS = {"ArrowLeft": (-1, 0), "ArrowRight": (1, 0), "ArrowUp": (0, -1), "ArrowDown": (0, 1)}

#: (keys, what they do), in the order the help line lists them
SHORTCUTS = (
    ("v b g l k h", "tools: select, box, polygon, polyline, keypoints, pan"),
    ("Del / Backspace", "delete the selected vertex, else the region"),
    ("Ctrl+Z / Ctrl+Y", "undo / redo"),
    ("arrows", "nudge the selection (Shift: x10); pan when nothing is selected"),
    ("Ctrl+arrows", "pan"),
    ("+ / - / f", "zoom in / out / fit"),
    ("n / p", "next / previous asset"),
    ("1-9, 0", "pick the label of the next shape (the badges of the label list)"),
    ("a", "assign the picked label to the selected region"),
    ("Enter / Esc", "finish / cancel a drawing"),
    ("Ctrl+Z while drawing", "take back the last point"),
    ("Tab", "select the next region (stacked ones too)"),
    ("t", "show / hide labels"),
    ("?", "show / hide this help"),
)
HELP = " · ".join(f"<b>{k}</b> {what}" for k, what in SHORTCUTS)


def on_key(state: EditorState, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> str | None:
    """Do what ``key`` means; returns the action's name, or None for a key with no meaning."""
    name = key.lower() if len(key) == 1 else key
    if isinstance(state.gesture, (tools.Drag, tools.PanDrag)):
        tools.cancel(state)  # a key in the middle of a drag: the drag is dropped, the key acts on the saved state
    if ctrl or meta:
        return _with_ctrl(state, name, shift)
    if name in TOOL_KEYS:
        tools.set_tool(state, TOOL_KEYS[name])
        return "tool"
    if name in ARROWS:
        return _arrow(state, *ARROWS[name], big=shift)
    if name.isdigit() and len(name) == 1:
        return _pick_label(state, (int(name) - 1) % 10)
    action = _SIMPLE.get(name)
    return action(state) if action else None


def _with_ctrl(state: EditorState, name: str, shift: bool) -> str | None:
    if name == "z" and not shift and tools.undo_point(state):
        return "undo point"  # in the middle of a drawing: its last point, not the edit before it
    if name == "z" and not shift:
        return "undo" if state.undo() else None
    if name == "y" or (name == "z" and shift):
        return "redo" if state.redo() else None
    if name in ARROWS:
        dx, dy = ARROWS[name]
        state.set_viewport(state.viewport.pan(-dx * PAN_PX, -dy * PAN_PX))
        return "pan"
    return None


def _fit(state: EditorState) -> str:
    state.set_viewport(state.viewport.fit())
    return "fit"


def _zoom_in(state: EditorState) -> str:
    tools.zoom(state, ZOOM_STEP)
    return "zoom"


def _zoom_out(state: EditorState) -> str:
    tools.zoom(state, 1 / ZOOM_STEP)
    return "zoom"


def _escape(state: EditorState) -> str:
    if state.pending is not None:
        state.cancel_label()
    elif state.show_help:
        _toggle_help(state)
    elif state.gesture is not None:
        tools.cancel(state)
    else:
        state.select(None)
    return "cancel"


def _delete(state: EditorState) -> str | None:
    if tools.undo_point(state):
        return "undo point"
    region = state.editable(state.selected())
    if region is None:
        return None
    if state.vertex is not None:
        part, index = state.vertex
        smaller = shapes.without_vertex(region, part, index)
        if smaller is None:
            state.message = f"a {region.kind} keeps at least {shapes.MIN_VERTICES[region.kind]} vertices"
            return None
        state.commit(region, smaller)
        state.select(region.id)
        return "delete vertex"
    state.delete(region.id)
    return "delete"


def _arrow(state: EditorState, dx: int, dy: int, big: bool) -> str:
    region = state.editable(state.selected())
    if region is None:
        state.set_viewport(state.viewport.pan(-dx * PAN_PX, -dy * PAN_PX))
        return "pan"
    step = NUDGE_PX * (10 if big else 1)
    moved: Region
    if state.vertex is not None and region.points:
        part, index = state.vertex
        x, y = region.points[part][2 * index], region.points[part][2 * index + 1]
        x = min(max(x + dx * step, 0.0), state.info.width)
        y = min(max(y + dy * step, 0.0), state.info.height)
        moved = shapes.with_vertex(region, part, index, x, y)
    else:
        moved = shapes.moved(
            region, *shapes.kept_inside(region, dx * step, dy * step, state.info.width, state.info.height)
        )
    state.commit(region, moved)
    return "nudge"


def _pick_label(state: EditorState, position: int) -> str | None:
    """A digit picks the label of the next shape; the selected region keeps its own (``a`` assigns)."""
    names = state.labels.names
    if position >= len(names):
        return None
    state.pick_label(names[position])
    g = state.gesture
    if isinstance(g, tools.PathDraft):  # a shape being drawn is the next shape
        g.label = state.label
        state.dirty.overlay = True
    return "label"


def _assign(state: EditorState) -> str:
    state.assign_label()
    return "assign"


def _next_region(state: EditorState) -> str | None:
    """Select the next region in the list (drawing order), so stacked regions are reachable from the keyboard."""
    ids = [r.id for r in state.regions.values() if r.id not in state.hidden_ids]
    if not ids:
        return None
    at = ids.index(state.selection) + 1 if state.selection in ids else 0
    state.select(ids[at % len(ids)])
    return "select"


def _toggle_help(state: EditorState) -> str:
    state.show_help = not state.show_help
    state.dirty.panel = True
    return "help"


def _toggle_labels(state: EditorState) -> str:
    state.show_labels = not state.show_labels
    state.dirty.regions = state.dirty.panel = True
    return "labels"


_SIMPLE: dict[str, Callable[[EditorState], str | None]] = {
    "Escape": _escape,
    "Enter": lambda s: "finish" if tools.finish(s) else None,
    "Delete": _delete,
    "Backspace": _delete,
    "n": lambda s: "next" if s.step(1) else None,
    "p": lambda s: "previous" if s.step(-1) else None,
    "f": _fit,
    "+": _zoom_in,
    "=": _zoom_in,
    "-": _zoom_out,
    "t": _toggle_labels,
    "a": _assign,
    "Tab": _next_region,
    "?": _toggle_help,
}
