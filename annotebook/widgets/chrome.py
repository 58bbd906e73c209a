"""The editor's lists and help: the label list (hotkey badges), the region list (select, hide, lock) and the
"?" overlay of every shortcut, plus the style sheet that gives the canvas a cursor per tool and shows the busy
sign while the kernel runs a cell.

Every text that goes into HTML here (label names, region ids, kinds) goes through `html.escape`; buttons carry
their text as plain descriptions, which ipywidgets never parses as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as widgets

from .keys import SHORTCUTS
from .state import EditorState

__all__ = ["MAX_LISTED", "STYLE", "LabelList", "RegionList", "help_html"]

Run = Callable[[Callable[[], Any]], None]
Colors = Callable[[str | None], str]
MAX_LISTED = 150  # regions listed; beyond that the list says how many more there are (Tab still reaches them)

#: the style sheet of every editor on the page: theme colours (light and dark), cursors, the busy sign
STYLE = """<style>
.annotebook-editor { color: var(--jp-ui-font-color1); }
.annotebook-editor .annotebook-note, .annotebook-editor .annotebook-where { color: var(--jp-ui-font-color1); }
.annotebook-editor .annotebook-dim { color: var(--jp-ui-font-color2); }
.annotebook-editor .annotebook-error { color: var(--jp-error-color1, #c0392b); font-weight: bold; }
.annotebook-editor .annotebook-unpushed { margin-left: 12px; padding: 1px 6px; border-radius: 8px;
  background: var(--jp-warn-color3, #ffe0b2); color: var(--jp-warn-color0, #e65100); }
.annotebook-editor .annotebook-unpushed[data-count="0"] { background: none; color: var(--jp-ui-font-color2); }
.annotebook-editor .annotebook-confirm { color: var(--jp-ui-font-color0); }
.annotebook-busy { visibility: hidden; margin-left: 12px; padding: 1px 6px; border-radius: 8px; font-weight: bold;
  color: white; background: var(--jp-warn-color1, #ef6c00); }
.jp-NotebookPanel:has(.jp-Notebook-ExecutionIndicator[data-status="busy"]) .annotebook-busy {
  animation: annotebook-show 0s linear 0.4s forwards; }
@keyframes annotebook-show { to { visibility: visible; } }
.annotebook-tool-select canvas, canvas.annotebook-tool-select { cursor: default; }
.annotebook-tool-box canvas, canvas.annotebook-tool-box { cursor: crosshair; }
.annotebook-tool-polygon canvas, canvas.annotebook-tool-polygon { cursor: crosshair; }
.annotebook-tool-polyline canvas, canvas.annotebook-tool-polyline { cursor: crosshair; }
.annotebook-tool-keypoints canvas, canvas.annotebook-tool-keypoints { cursor: cell; }
.annotebook-tool-pan canvas, canvas.annotebook-tool-pan { cursor: grab; }
.annotebook-editor .annotebook-chip { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: middle; }
.annotebook-editor .annotebook-stage { position: relative; }
.annotebook-editor .annotebook-help-layer { position: absolute; top: 8px; left: 8px; right: 8px; z-index: 10; }
.annotebook-editor .annotebook-help { border: 1px solid var(--jp-border-color1); padding: 6px 10px;
  background: var(--jp-layout-color1); color: var(--jp-ui-font-color0); opacity: 0.96; line-height: 1.3;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.3); }
.annotebook-editor .annotebook-help td { padding: 0 10px 0 0; text-align: left; vertical-align: top; }
.annotebook-editor .annotebook-help kbd { font-family: var(--jp-code-font-family); font-weight: bold; }
.annotebook-editor .annotebook-row-selected { outline: 2px solid var(--jp-brand-color1); }
.annotebook-editor .annotebook-list button { text-align: left; overflow: hidden; text-overflow: ellipsis; }
</style>"""


def help_html() -> str:
    """The "?" overlay: every shortcut in a table."""
    mouse = (
        ("click", "select (again on the same spot: the region beneath)"),
        ("drag", "move; the handles resize; drag a polygon's edge to add a vertex"),
        ("wheel", "zoom about the pointer"),
    )
    pairs = [*SHORTCUTS, *mouse]
    half = (len(pairs) + 1) // 2

    def table(part: list[tuple[str, str]]) -> str:
        rows = "".join(f"<tr><td><kbd>{escape(k)}</kbd></td><td>{escape(what)}</td></tr>" for k, what in part)
        return f"<table style='flex:1'>{rows}</table>"

    return (
        "<div class='annotebook-help'><b>Shortcuts</b> (click the canvas first; <kbd>?</kbd> or Esc closes this)"
        f"<div style='display:flex;gap:16px'>{table(pairs[:half])}{table(pairs[half:])}</div></div>"
    )


def _chip(color: str) -> str:
    return f"<span class='annotebook-chip' style='background:{escape(color)}'></span>"


def _badge(i: int) -> str:
    return str((i + 1) % 10) if i < 10 else " "


class LabelList:
    """The labels in order, each with its digit; a click picks the label of the next shape. "assign" (or ``a``)
    gives the picked label to the selected region; a name typed below is a new label once confirmed."""

    def __init__(self, state: EditorState, run: Run, colors: Colors):
        self.state, self.run, self.colors = state, run, colors
        self.box = widgets.VBox(layout=widgets.Layout(width="170px", min_width="170px", padding="0 6px 0 0"))
        self.box.add_class("annotebook-list")
        self.buttons: dict[str, Any] = {}
        self.assign = widgets.Button(
            description="assign (a)",
            icon="tag",
            tooltip="give the picked label to the selected region (a)",
            layout=widgets.Layout(width="164px"),
        )
        self.assign.on_click(lambda _: self.run(self.state.assign_label))
        self.new = widgets.Text(placeholder="new label, Enter", continuous_update=False,
                                layout=widgets.Layout(width="164px"))  # fmt: skip
        self.new.observe(lambda ch: self._typed(ch["new"]), names="value")
        self._key: Any = None

    def _typed(self, text: str) -> None:
        if text.strip():
            self.run(lambda: self.state.pick_label(text))
            self.new.value = ""

    def refresh(self) -> None:
        """Rebuild when the names changed; restyle the picked one."""
        s = self.state
        key = tuple(s.labels.names)
        if key != self._key:
            self._key = key
            self.buttons = {}
            rows: list[Any] = [widgets.HTML("<b class='annotebook-note'>labels</b>")]
            unlisted = s.labels.listed and any(n not in s.labels.listed for n in s.labels.names)
            for i, name in enumerate(s.labels.names):
                odd = bool(s.labels.listed) and name not in s.labels.listed
                b = widgets.Button(
                    description=f"{_badge(i)}  {name}{' *' if odd else ''}",
                    tooltip=f"next shape: {name}" + (" (not in the labels table: a typo?)" if odd else ""),
                    layout=widgets.Layout(width="140px"),
                )
                b.on_click(lambda _, name=name: self.run(lambda: self.state.pick_label(name)))
                self.buttons[name] = b
                rows.append(widgets.HBox([widgets.HTML(_chip(self.colors(name))), b]))
            if unlisted:
                rows.append(widgets.HTML("<small class='annotebook-dim'>* not in the labels table</small>"))
            if s.labels.fixed:
                rows.append(widgets.HTML("<small class='annotebook-dim'>this backend's labels are fixed</small>"))
            else:
                rows.append(self.new)
            rows.append(self.assign)
            self.box.children = rows
        for name, b in self.buttons.items():
            b.button_style = "info" if name == s.label else ""
        self.assign.disabled = s.selection is None


class RegionList:
    """The asset's regions in drawing order: a click selects (stacked regions are all here), the eye hides one
    (not drawn, not reached by clicks), the lock keeps it from edits (clicks go through it)."""

    def __init__(self, state: EditorState, run: Run, colors: Colors):
        self.state, self.run, self.colors = state, run, colors
        self.box = widgets.VBox(layout=widgets.Layout(max_height="360px", overflow="auto", width="262px"))
        self.box.add_class("annotebook-list")
        self.rows: dict[str, Any] = {}
        self._built: dict[str, tuple[Any, Any]] = {}
        self.title = widgets.HTML()
        self._key: Any = None

    def refresh(self) -> None:
        """Show the asset's regions: a row is built again only when its label, kind, or hidden or locked state
        changed (a new selection only restyles), so a click costs no widget churn."""
        s = self.state
        regions = list(s.regions.values())
        wanted: dict[str, Any] = {}
        for r in regions[:MAX_LISTED]:
            key = (r.label, r.kind, r.id in s.hidden_ids, r.id in s.locked)
            old = self._built.get(r.id)
            wanted[r.id] = old if old is not None and old[0] == key else (key, self._row(r.id, r.label, r.kind))
        for rid, (_, row) in self._built.items():
            if wanted.get(rid, (None, None))[1] is not row:
                row.close()
        self._built = wanted
        self.rows = {rid: row for rid, (_, row) in wanted.items()}
        for rid, row in self.rows.items():
            row.children[1].button_style = "info" if rid == s.selection else ""
        more = len(regions) - MAX_LISTED
        layout = (s.asset, len(regions), tuple(self.rows))
        if layout != self._key:
            self._key = layout
            self.title.value = (
                "<hr style='margin:4px 0'><b class='annotebook-note'>regions</b> "
                f"<span class='annotebook-dim'>({len(regions)})</span>"
            )
            tail = (
                [widgets.HTML(f"<small class='annotebook-dim'>{more} more (Tab walks them all)</small>")]
                if more > 0
                else []
            )
            self.box.children = [self.title, *self.rows.values(), *tail]

    def _row(self, rid: str, label: str | None, kind: str) -> Any:
        s = self.state
        pick = widgets.Button(description=f"{label or '(no label)'} · {kind}", tooltip=f"select {rid}",
                              layout=widgets.Layout(width="160px"))  # fmt: skip
        pick.on_click(lambda _: self.run(lambda: s.select_row(rid)))
        hidden, locked = rid in s.hidden_ids, rid in s.locked
        eye = widgets.Button(icon="eye-slash" if hidden else "eye", tooltip="show" if hidden else "hide",
                             layout=widgets.Layout(width="34px", padding="0"))  # fmt: skip
        eye.on_click(lambda _: self.run(lambda: s.toggle_hidden(rid)))
        lock = widgets.Button(icon="lock" if locked else "unlock", tooltip="unlock" if locked else "lock",
                              layout=widgets.Layout(width="34px", padding="0"))  # fmt: skip
        lock.on_click(lambda _: self.run(lambda: s.toggle_locked(rid)))
        row = widgets.HBox([widgets.HTML(_chip(self.colors(label))), pick, eye, lock])
        row.add_class(f"annotebook-region-{_css_id(rid)}")
        return row


def _css_id(rid: str) -> str:
    """A region id as a CSS class fragment (the browser tests find rows by it)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in rid)
