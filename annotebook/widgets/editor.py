"""The `Editor` widget: an ipycanvas view of an `EditorState`, with its controls.

Around the canvas: a header (tools, undo / redo, the asset and where it is in the walk, the count of unpushed
changes, a busy sign while the kernel is occupied, "?" for every shortcut), the label list on the left (a digit
badge per label: the digit picks the label of the next shape; ``a`` or "assign" gives it to the selection), and on
the right the selected region (its label, editable; attributes; score), the region list (click to select, hide,
lock; stacked regions are all there) and the asset's own rows. A label name that is not a label yet waits for a
yes ("create") before it exists, and is refused when the backend makes no new labels.

Three canvas layers: the image, the regions, and an overlay for what moves (a dragged region, handles, the
rubber band of a box, a polygon being clicked). Each front-end event goes to a tool or shortcut that changes the
state; then every layer the state marks dirty is redrawn, all in one ``hold_canvas()`` (one message). A drag
redraws the overlay only. When a browser attaches (a page reload, a second view) each canvas asks for its
drawing again and gets it (``on_client_ready``), since canvases keep no drawing of their own.

>>> editor = anns.annot.edit()                       # doctest: +SKIP
>>> editor = anns.annot.edit(anns.label == "sqare")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from ipycanvas import MultiCanvas, hold_canvas

from ..errors import AnnotebookError, TraceError
from . import keys, tools
from .chrome import STYLE, LabelList, RegionList, help_html
from .drawing import draw_overlay, draw_regions
from .imagery import Crop, Picture, asset_picture
from .panel import SidePanel
from .regions import REGION_KINDS
from .sink import FrameSink
from .state import TOOLS, EditorState, labels_info

__all__ = ["Editor", "labels_fixed", "walk_of"]

IMAGE, REGIONS, OVERLAY = 0, 1, 2
BACKGROUND = "#2b2b2b"
PLACEHOLDER = "#9e9e9e"
KEEP_CROPS = 2  # crop widgets kept alive: a draw command in flight may still name the previous one
TOOL_ICONS = {"select": "mouse-pointer", "box": "square-o", "polygon": "star-o", "polyline": "pencil",
              "keypoints": "dot-circle-o", "pan": "arrows"}  # fmt: skip
DEFAULT_SIZE = (800, 560)  # canvas pixels; on the page the canvas shrinks to the cell's width
COUNT_EVERY_EDIT_ROWS = 5000  # up to this many rows the unpushed count is the frame's diff after every edit


def _check_assets(wanted: list[str], known: set[str]) -> None:
    missing = [a for a in wanted if a not in known]
    if missing:
        import difflib

        near = difflib.get_close_matches(missing[0], sorted(known), n=3)
        hint = f"; close: {', '.join(near)}" if near else ""
        raise ValueError(f"no asset {missing[0]!r} in this frame or its assets table{hint}")


def walk_of(frame: pd.DataFrame, target: Any = None, assets: pd.DataFrame | None = None) -> tuple[list[str], int]:
    """The assets the editor walks with next / previous, and where it starts.

    ``target``: None (the frame's assets, from its first), an asset id (the frame's assets, from that one), a list
    of asset ids, or a boolean mask / Series over the frame's rows (the assets of the selected rows).
    """
    ids = frame["asset"].dropna().astype(str)
    in_frame = list(dict.fromkeys(ids.tolist()))
    if not in_frame and assets is not None:
        in_frame = list(dict.fromkeys(assets["asset"].dropna().astype(str).tolist()))
    if target is None:
        return in_frame, 0
    known = set(in_frame) | (set(assets["asset"].dropna().astype(str)) if assets is not None else set())
    if isinstance(target, str):
        _check_assets([target], known)
        return (in_frame, in_frame.index(target)) if target in in_frame else ([target, *in_frame], 0)
    if isinstance(target, Sequence) and not isinstance(target, str) and all(isinstance(t, str) for t in target):
        _check_assets(list(target), known)
        if not target:
            raise ValueError("the list of assets is empty: nothing to edit")
        return list(dict.fromkeys(target)), 0
    mask = target.reindex(frame.index) if isinstance(target, pd.Series) and target.index.is_unique else target
    picked = np.asarray(pd.Series(np.asarray(mask)).fillna(False), dtype=bool)
    if len(picked) != len(frame):
        raise ValueError(f"the mask has {len(picked)} values for a frame of {len(frame)} rows")
    walk = list(dict.fromkeys(frame["asset"].astype(str).to_numpy()[picked].tolist()))
    if not walk:
        raise ValueError("the selection holds no rows: nothing to edit")
    return walk, 0


def _traced(frame: pd.DataFrame, what: str) -> pd.DataFrame | None:
    try:
        table: pd.DataFrame = getattr(frame.annot, what)
        return table
    except TraceError:  # a hand-built frame: no assets or labels table
        return None


def labels_fixed(frame: pd.DataFrame) -> bool:
    """Whether the backend of the frame's load refuses labels it does not have (a hand-built frame: no)."""
    try:
        conn, _ = frame.annot._traced()
    except TraceError:
        return False
    return not conn.backend.capabilities.creates_labels


class Editor(widgets.VBox):
    """Draw, move, resize, relabel and delete regions of ``frame``'s assets; every edit lands in ``frame``.

    ``target``: an asset id, a list of asset ids (walked in that order: ``n`` / ``p``), or a row mask.
    ``assets`` (an assets frame) gives sizes and images and receives the review status; by default the frame's
    own assets table is used, read only. ``labels`` defaults to the frame's labels table. ``width`` and
    ``height`` are the canvas's pixels; on the page it shrinks to the cell's width, keeping its shape.

    For code that drives the editor (a review queue): ``editor.select_row(id)`` opens that row's asset and
    selects it; ``editor.open_asset(asset)`` shows an asset of the walk; ``editor.extra`` is a box under the
    header for the caller's own controls; ``editor.on_change(fn)`` calls ``fn(editor)`` after every change.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        target: Any = None,
        assets: pd.DataFrame | None = None,
        labels: pd.DataFrame | None = None,
        *,
        width: int = DEFAULT_SIZE[0],
        height: int = DEFAULT_SIZE[1],
        fixed_labels: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (isinstance(width, int) and isinstance(height, int) and 100 <= width <= 4000 and 100 <= height <= 4000):
            raise ValueError(f"width and height are canvas pixels from 100 to 4000 (got {width!r}, {height!r})")
        self._base: Any = None  # set first: close() may run on an editor whose construction failed
        self._crop_widgets: list[Any] = []
        self.frame = frame
        self.labels = labels if labels is not None else _traced(frame, "labels")
        table = assets if assets is not None else _traced(frame, "assets")
        walk, start = walk_of(frame, target, table)
        self.sink = FrameSink(frame, assets, lookup=table)
        info = labels_info(self.labels)
        used = frame.loc[frame["kind"].isin(REGION_KINDS).to_numpy(dtype=bool, na_value=False), "label"]
        info.names = list(dict.fromkeys([*info.names, *used.dropna().astype(str).tolist()]))
        info.fixed = labels_fixed(frame) if fixed_labels is None else fixed_labels
        self.state = EditorState(self.sink, walk, start=start, labels=info, canvas_size=(width, height), clock=clock)
        self._colors: dict[str | None, str] = {}
        self._skeletons = self._skeleton_table()
        self._picture: Picture | None = None
        self._why = ""
        self._crop: Crop | None = None
        self._shown_asset: str | None = None
        self._syncing = False
        self._listeners: list[Callable[[Editor], Any]] = []
        self._edits_seen = -1
        self._counted = self._edits_at_count = 0
        self._unpushed_text = ""
        self.canvas = MultiCanvas(3, width=width, height=height)
        # the canvas keeps its pixels and its shape; on the page it follows the cell's width up to its own
        self.canvas.layout = widgets.Layout(
            width="100%", height="auto", max_width=f"{width}px", align_self="flex-start"
        )
        self._cursor = ""
        self._wire_canvas()
        self.panel = SidePanel(self.state, self.run, can_set_status=assets is not None)
        self.label_list = LabelList(self.state, self.run, self.color)
        self.region_list = RegionList(self.state, self.run, self.color)
        self.extra = widgets.VBox()
        stage = widgets.Box(  # flex-start: the canvas keeps its shape instead of stretching to the panel's height
            [self._help_layer(), self.canvas],
            layout=widgets.Layout(flex="1 1 auto", min_width="200px", overflow="hidden", align_items="flex-start"),
        )
        stage.add_class("annotebook-stage")
        right = widgets.VBox(
            [self.panel.box, self.region_list.box],
            layout=widgets.Layout(width="270px", min_width="270px", flex="0 0 270px", overflow="hidden"),
        )
        body = widgets.HBox(
            [self.label_list.box, stage, right], layout=widgets.Layout(flex_flow="row nowrap", width="100%")
        )
        self._confirm = widgets.HBox(layout=widgets.Layout(display="none"))
        parts = [widgets.HTML(STYLE), self._toolbar(), self.extra, self._confirm, body, self._footer()]
        super().__init__(parts)
        self.add_class("annotebook-editor")
        self.render()

    def _help_layer(self) -> Any:
        """The "?" overlay: every shortcut, over the canvas (it hides nothing else and moves nothing)."""
        self._help = widgets.HTML(help_html(), layout=widgets.Layout(display="none"))
        self._help.add_class("annotebook-help-layer")
        return self._help

    # -- seams for code that drives the editor -------------------------------------------------------------
    def select_row(self, id: str) -> None:
        """Open the asset of row ``id`` and select it (shown even if the region list hid it)."""
        self.run(lambda: self.state.select_row(str(id)))

    def open_asset(self, asset: str) -> None:
        """Show ``asset`` (added to the end of the walk when it is not in it)."""

        def go() -> None:
            if asset not in self.state.walk:
                _check_assets([asset], set(self.sink.frame["asset"].dropna().astype(str)) | self._asset_ids())
                self.state.walk.append(asset)
            self.state.open(asset)

        self.run(go)

    def on_change(self, fn: Callable[[Editor], Any]) -> None:
        """Call ``fn(editor)`` after every change the editor applies (an edit, a selection, a new asset)."""
        self._listeners.append(fn)

    def _asset_ids(self) -> set[str]:
        table = self.sink.lookup
        return set(table["asset"].dropna().astype(str)) if table is not None and "asset" in table.columns else set()

    # -- events --------------------------------------------------------------------------------------------
    def _wire_canvas(self) -> None:
        c = self.canvas
        c.on_mouse_down(lambda x, y: self.run(lambda: tools.press(self.state, x, y)))
        c.on_mouse_move(lambda x, y: self.run(lambda: tools.move(self.state, x, y), keep_message=True))
        c.on_mouse_up(lambda x, y: self.run(lambda: tools.release(self.state, x, y)))
        c.on_mouse_out(lambda x, y: self.run(lambda: tools.leave(self.state, x, y)))
        c.on_mouse_wheel(lambda dx, dy: self.run(lambda: tools.wheel(self.state, dx, dy), keep_message=True))
        c.on_key_down(lambda key, shift, ctrl, meta: self.run(lambda: keys.on_key(self.state, key, shift, ctrl, meta)))
        for i in (IMAGE, REGIONS, OVERLAY):
            c[i].on_client_ready(lambda i=i: self.replay(i))

    def run(self, change: Callable[[], Any], keep_message: bool = False) -> None:
        """Apply one change to the state, then redraw what it made dirty; a refused edit becomes the message
        (which stays until the next press, key or control: a mouse move does not wipe it)."""
        if not keep_message:
            self.state.message = ""
        try:
            change()
        except (AnnotebookError, LookupError, ValueError) as exc:
            self.state.message = str(exc)
            self.state.dirty.panel = True
        self.render()
        if not keep_message:
            for fn in self._listeners:
                fn(self)

    def replay(self, layer: int = -1) -> None:
        """Draw a layer (or, by default, all) again: a new front end attached and has an empty canvas."""
        d = self.state.dirty
        if layer in (IMAGE, -1):
            d.image = True
        if layer in (REGIONS, -1):
            d.regions = True
        if layer in (OVERLAY, -1):
            d.overlay = True
        self.render()

    def close(self) -> None:
        """Close the editor with its canvas, controls and image widgets."""
        canvas = getattr(self, "canvas", None)
        layers = list(getattr(canvas, "_canvases", []) or [])
        panel = getattr(self, "panel", None)
        for w in [getattr(self, "_base", None), *getattr(self, "_crop_widgets", []), *layers, canvas]:
            if w is not None:
                w.close()
        if panel is not None:
            panel.box.close()
        super().close()

    # -- drawing -------------------------------------------------------------------------------------------
    def render(self) -> None:
        """Redraw every dirty layer in one ``hold_canvas()`` batch, then the controls."""
        s, d = self.state, self.state.dirty
        if s.asset != self._shown_asset:
            self._load_image()
        if d.image or d.regions or d.overlay:
            with hold_canvas():
                if d.image:
                    self._draw_image()
                if d.regions:
                    draw_regions(self.canvas[REGIONS], s, self.color, self._skeletons)
                if d.overlay:
                    draw_overlay(self.canvas[OVERLAY], s, self.color)
        if d.panel:
            self._sync_controls()
            self.panel.refresh()
            self.label_list.refresh()
            self.region_list.refresh()
        d.image = d.regions = d.overlay = d.panel = False
        self._message.value = f"<span class='annotebook-error'>{escape(s.message)}</span>" if s.message else ""

    def color(self, label: str | None) -> str:
        """The colour of ``label``: the labels table's, else one derived from the text (as in pictures)."""
        if label not in self._colors:
            from ..colors import label_color

            self._colors[label] = label_color(label or "(no label)", self.labels)
        return self._colors[label]

    def _skeleton_table(self) -> dict[str, Any]:
        if self.labels is None or "skeleton" not in self.labels.columns:
            return {}
        return {str(n): tuple(s) for n, s in zip(self.labels["name"], self.labels["skeleton"], strict=True) if s}

    def _load_image(self) -> None:
        """The asset's image, sent once at display size (an image widget the canvas draws from)."""
        info = self.state.info
        self._shown_asset = self.state.asset
        self._picture, self._why = asset_picture(
            self.state.asset, info.uri, info.width, info.height, self.frame, self.sink.lookup
        )
        for old in [self._base, *self._crop_widgets]:
            if old is not None:
                old.close()
        self._crop, self._crop_widgets = None, []
        w, h = self.state.canvas_size
        self._base = widgets.Image(value=self._picture.display_jpeg(w, h), format="jpeg") if self._picture else None

    def _draw_image(self) -> None:
        layer, view = self.canvas[IMAGE], self.state.viewport
        layer.clear()
        layer.fill_style = BACKGROUND
        layer.fill_rect(0, 0, *self.state.canvas_size)
        x, y = view.to_canvas(0, 0)
        w, h = view.image_width * view.scale, view.image_height * view.scale
        if self._picture is None or self._base is None:
            layer.fill_style = PLACEHOLDER
            layer.fill_rect(x, y, w, h)
            layer.fill_style = "#333"
            layer.font = "14px sans-serif"
            layer.fill_text(self._why or "no image", x + 8, y + 20)
            return
        crop = self._update_crop()
        layer.image_smoothing_enabled = view.scale < 2 * self._picture.native
        if crop is None or not crop.covers(view.visible()):
            layer.draw_image(self._base, x, y, w, h)
        if crop is not None:
            cx, cy = view.to_canvas(crop.x0, crop.y0)
            layer.draw_image(
                self._crop_widgets[-1], cx, cy, (crop.x1 - crop.x0) * view.scale, (crop.y1 - crop.y0) * view.scale
            )

    def _update_crop(self) -> Crop | None:
        """Zoomed past the display image: the visible part again, sharper (reused while it still serves)."""
        assert self._picture is not None
        crop = self._picture.crop_for(self.state.viewport, self._crop)
        if crop is not None and crop != self._crop:
            self._crop_widgets.append(widgets.Image(value=self._picture.crop_jpeg(crop), format="jpeg"))
            while len(self._crop_widgets) > KEEP_CROPS:
                self._crop_widgets.pop(0).close()
        self._crop = crop
        return crop

    # -- controls ------------------------------------------------------------------------------------------
    def _toolbar(self) -> Any:
        s = self.state
        self._tool = widgets.ToggleButtons(
            options=[(t, t) for t in TOOLS],
            value=s.tool,
            icons=[TOOL_ICONS[t] for t in TOOLS],
            tooltips=[f"{t} ({k})" for t in TOOLS for k, v in keys.TOOL_KEYS.items() if v == t],
            style=widgets.ToggleButtonsStyle(button_width="auto"),
        )
        self._tool.observe(lambda ch: self._from_control(lambda: tools.set_tool(s, ch["new"])), names="value")
        self._labels_shown = widgets.Checkbox(value=s.show_labels, description="labels", indent=False,
                                              layout=widgets.Layout(width="70px"))  # fmt: skip
        self._labels_shown.observe(lambda ch: self._from_control(lambda: self._show_labels(ch["new"])), names="value")

        def button(icon: str, tip: str, action: Callable[[], Any], text: str = "") -> Any:
            b = widgets.Button(icon=icon, description=text, tooltip=tip, layout=widgets.Layout(width="auto"))
            b.on_click(lambda _: self.run(action))
            return b

        buttons = [
            button("trash", "delete (Del)", lambda: keys.on_key(s, "Delete")),
            button("undo", "undo (Ctrl+Z)", s.undo),
            button("repeat", "redo (Ctrl+Y)", s.redo),
            button("arrows-alt", "fit (f)", lambda: s.set_viewport(s.viewport.fit())),
            button("refresh", "read the asset's rows again (after changing the frame in a cell)", self._reload),
            button("arrow-left", "previous asset (p)", lambda: s.step(-1)),
            button("arrow-right", "next asset (n)", lambda: s.step(1)),
        ]
        self._help_button = button("", "every shortcut (?)", lambda: keys.on_key(s, "?"), text="?")
        self._help_button.add_class("annotebook-help-button")
        self._where = widgets.HTML()
        self._unpushed = widgets.HTML()
        busy = widgets.HTML(
            "<span class='annotebook-busy' title='the kernel is running a cell: clicks and keys wait for it'>"
            "kernel busy: your clicks wait</span>"
        )
        return widgets.VBox(
            [
                widgets.HBox([self._tool, self._labels_shown, *buttons, self._help_button]),
                widgets.HBox([self._where, self._unpushed, busy]),
            ]
        )

    def _footer(self) -> Any:
        self._message = widgets.HTML()
        return widgets.VBox([self._message])

    def _from_control(self, change: Callable[[], Any]) -> None:
        if not self._syncing:  # not an echo of _sync_controls
            self.run(change)

    def _reload(self) -> None:
        self.state.reload()
        self._edits_seen = -1  # the frame may have been pushed or changed: count again

    def _show_labels(self, show: bool) -> None:
        self.state.show_labels = bool(show)
        self.state.dirty.regions = True

    def unpushed(self) -> int:
        """How many rows of the frame differ from its load (its diff's length); edits made here when untraced."""
        try:
            return len(self.frame.annot.diff())
        except AnnotebookError:
            return len(self.state.undo_stack)

    def _count_text(self, edits: int) -> str:
        """The header's count of unpushed changes: the frame's diff, counted after each edit; on a frame of more
        than `COUNT_EVERY_EDIT_ROWS` rows, counted on opening and on refresh, with the edits made since."""
        if self._edits_seen < 0 or len(self.frame) <= COUNT_EVERY_EDIT_ROWS:
            self._counted, self._edits_at_count = self.unpushed(), edits
        n, since = self._counted, abs(edits - self._edits_at_count)
        text = f"{n} unpushed change{'s' if n != 1 else ''}" if n else "no unpushed changes"
        if since:
            text += f" (+{since} edit{'s' if since != 1 else ''} since counted: refresh counts again)"
        return f"<span class='annotebook-unpushed' data-count='{n + since}'>{text}</span>"

    def _sync_controls(self) -> None:
        s = self.state
        self._syncing = True
        try:
            self._tool.value = s.tool
            self._labels_shown.value = s.show_labels
        finally:
            self._syncing = False
        cursor = f"annotebook-tool-{s.tool}"
        if cursor != self._cursor:
            if self._cursor:
                self.canvas.remove_class(self._cursor)
            self.canvas.add_class(cursor)
            self._cursor = cursor
        name = escape(s.info.name or s.asset)
        self._where.value = (
            f"<span class='annotebook-where'><b>{name}</b> ({s.index + 1}/{len(s.walk)}) · {len(s.regions)} regions"
            f" · next shape: <b>{escape(s.label or '(no label)')}</b></span>"
        )
        edits = len(s.undo_stack) + len(s.redo_stack) * 1000
        if edits != self._edits_seen:  # the diff is counted again only when an edit happened
            self._unpushed_text = self._count_text(edits)
            self._edits_seen = edits
        self._unpushed.value = self._unpushed_text
        self._help.layout.display = "block" if s.show_help else "none"
        self._confirm_row()

    def _confirm_row(self) -> None:
        pending = self.state.pending
        if pending is None:
            self._confirm.layout.display = "none"
            self._confirm.children = []
            return
        where = "the selected region" if pending.for_selection else "the next shape"
        text = widgets.HTML(
            f"<span class='annotebook-confirm'><b>{escape(pending.name)}</b> is not a label yet. "
            f"Create it for {where}?</span>"
        )
        create = widgets.Button(description=f"create {pending.name!r}", button_style="warning", icon="plus")
        create.on_click(lambda _: self.run(self.state.confirm_label))
        cancel = widgets.Button(description="cancel", icon="times")
        cancel.on_click(lambda _: self.run(self.state.cancel_label))
        row: list[Any] = [text, create, cancel]
        if pending.suggestion:
            near = pending.suggestion
            use = widgets.Button(description=f"use {near!r}", button_style="success")
            target = pending.for_selection

            def use_it(_: Any) -> None:
                self.run(lambda: self.state.assign_label(near) if target else self.state.pick_label(near))

            use.on_click(use_it)
            row.insert(1, use)
        self._confirm.children = row
        self._confirm.layout.display = "flex"
