"""The `Editor` widget: an ipycanvas view of an `EditorState`, with its controls.

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
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from ipycanvas import MultiCanvas, hold_canvas

from ..errors import AnnotebookError, TraceError
from . import keys, tools
from .drawing import draw_overlay, draw_regions
from .imagery import Crop, Picture, asset_picture
from .panel import SidePanel
from .regions import REGION_KINDS
from .sink import FrameSink
from .state import TOOLS, EditorState, labels_info

__all__ = ["Editor", "walk_of"]

IMAGE, REGIONS, OVERLAY = 0, 1, 2
BACKGROUND = "#2b2b2b"
PLACEHOLDER = "#9e9e9e"
KEEP_CROPS = 2  # crop widgets kept alive: a draw command in flight may still name the previous one
TOOL_ICONS = {"select": "mouse-pointer", "box": "square-o", "polygon": "star-o", "polyline": "pencil",
              "keypoints": "dot-circle-o", "pan": "arrows"}  # fmt: skip


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
    if isinstance(target, str):
        return (in_frame, in_frame.index(target)) if target in in_frame else ([target, *in_frame], 0)
    if isinstance(target, Sequence) and not isinstance(target, str) and all(isinstance(t, str) for t in target):
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


class Editor(widgets.VBox):
    """Draw, move, resize, relabel and delete regions of ``frame``'s assets; every edit lands in ``frame``.

    ``assets`` (an assets frame) gives sizes and images and receives the review status; by default the frame's
    own assets table is used, read only. ``labels`` defaults to the frame's labels table.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        target: Any = None,
        assets: pd.DataFrame | None = None,
        labels: pd.DataFrame | None = None,
        *,
        width: int = 800,
        height: int = 560,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.frame = frame
        self.labels = labels if labels is not None else _traced(frame, "labels")
        table = assets if assets is not None else _traced(frame, "assets")
        walk, start = walk_of(frame, target, table)
        self.sink = FrameSink(frame, assets, lookup=table)
        info = labels_info(self.labels)
        used = frame.loc[frame["kind"].isin(REGION_KINDS).to_numpy(dtype=bool, na_value=False), "label"]
        info.names = list(dict.fromkeys([*info.names, *used.dropna().astype(str).tolist()]))
        self.state = EditorState(self.sink, walk, start=start, labels=info, canvas_size=(width, height), clock=clock)
        self._colors: dict[str | None, str] = {}
        self._skeletons = self._skeleton_table()
        self._picture: Picture | None = None
        self._why = ""
        self._base: Any = None
        self._crop: Crop | None = None
        self._crop_widgets: list[Any] = []
        self._shown_asset: str | None = None
        self._syncing = False
        self.canvas = MultiCanvas(3, width=width, height=height)
        self.canvas.layout = widgets.Layout(width=f"{width}px", height=f"{height}px")
        self._wire_canvas()
        self.panel = SidePanel(self.state, self.run, can_set_status=assets is not None)
        body = widgets.HBox([self.canvas, self.panel.box], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([self._toolbar(), body, self._footer()])
        self.render()

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
        for w in [self._base, *self._crop_widgets, *self.canvas._canvases, self.canvas, self.panel.box]:
            if w is not None:
                w.close()
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
        d.image = d.regions = d.overlay = d.panel = False
        self._message.value = f"<span style='color:#c0392b'>{s.message}</span>" if s.message else ""

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
        self._label = widgets.Combobox(
            value=s.label or "", options=list(s.labels.names), placeholder="label", ensure_option=False,
            continuous_update=False, layout=widgets.Layout(width="160px"),
        )  # fmt: skip
        self._label.observe(lambda ch: self._from_control(lambda: self._relabel(ch["new"])), names="value")
        self._labels_shown = widgets.Checkbox(value=s.show_labels, description="labels", indent=False)
        self._labels_shown.observe(lambda ch: self._from_control(lambda: self._show_labels(ch["new"])), names="value")

        def button(icon: str, tip: str, action: Callable[[], Any]) -> Any:
            b = widgets.Button(icon=icon, tooltip=tip, layout=widgets.Layout(width="36px"))
            b.on_click(lambda _: self.run(action))
            return b

        buttons = [
            button("trash", "delete (Del)", lambda: keys.on_key(s, "Delete")),
            button("undo", "undo (Ctrl+Z)", s.undo),
            button("repeat", "redo (Ctrl+Y)", s.redo),
            button("arrows-alt", "fit (f)", lambda: s.set_viewport(s.viewport.fit())),
            button("refresh", "read the asset's rows again (after changing the frame in a cell)", s.reload),
            button("arrow-left", "previous asset (p)", lambda: s.step(-1)),
            button("arrow-right", "next asset (n)", lambda: s.step(1)),
        ]
        self._where = widgets.HTML()
        return widgets.VBox(
            [self._tool, widgets.HBox([self._label, self._labels_shown, *buttons, self._where])],
        )

    def _footer(self) -> Any:
        self._message = widgets.HTML()
        help_line = widgets.HTML(f"<small style='color:#666'>{keys.HELP}</small>")
        return widgets.VBox([self._message, help_line])

    def _from_control(self, change: Callable[[], Any]) -> None:
        if not self._syncing:  # not an echo of _sync_controls
            self.run(change)

    def _relabel(self, label: str) -> None:
        from dataclasses import replace

        s = self.state
        s.label = label.strip() or None
        region = s.selected()
        if region is not None and s.label and region.label != s.label:
            s.commit(region, replace(region, label=s.label))

    def _show_labels(self, show: bool) -> None:
        self.state.show_labels = bool(show)
        self.state.dirty.regions = True

    def _sync_controls(self) -> None:
        s = self.state
        self._syncing = True
        try:
            self._tool.value = s.tool
            self._labels_shown.value = s.show_labels
            if s.label and s.label not in self._label.options:
                self._label.options = [*self._label.options, s.label]
            self._label.value = s.label or ""
        finally:
            self._syncing = False
        name = s.info.name or s.asset
        self._where.value = f"&nbsp;<b>{name}</b> ({s.index + 1}/{len(s.walk)}) · {len(s.regions)} regions"
