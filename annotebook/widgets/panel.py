"""The editor's side panel: the selected region's attributes and score, and the asset's tags, captions,
questions and review status. Every change is one undoable edit of the `EditorState`.

The panel is rebuilt from the state only when what it shows changed (a new selection, an edit, undo), so a
mouse move never touches it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from html import escape
from typing import Any

import ipywidgets as widgets

from . import shapes
from .regions import AssetRow, Region, normal_form
from .state import EditorState

__all__ = ["STATUSES", "SidePanel", "parse_value"]

#: review statuses offered (any other can be typed)
STATUSES = ("NotStarted", "InProgress", "Completed", "Rejected", "Skipped")
VISIBILITY = (("visible", 2), ("occluded", 1), ("not labelled", 0))
INPUT_WIDTH = "250px"
Run = Callable[[Callable[[], Any]], None]


def parse_value(text: str) -> Any:
    """An attribute value typed as text: JSON where it parses (``true``, ``3``, ``"a"``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _on_value(widget: Any, run: Run, fn: Callable[[Any], Any]) -> Any:
    widget.observe(lambda change: run(lambda: fn(change["new"])), names="value")
    if not isinstance(widget, widgets.Checkbox):
        widget.layout.width = INPUT_WIDTH  # ipywidgets' 300px default would overflow the panel
    return widget


class SidePanel:
    """A `widgets.VBox` (``.box``) showing one state; ``run`` applies a change and redraws the editor."""

    def __init__(self, state: EditorState, run: Run, can_set_status: bool):
        self.state = state
        self.run = run
        self.can_set_status = can_set_status
        self.box = widgets.VBox(layout=widgets.Layout(width="262px", padding="0 0 0 8px", overflow="hidden"))
        self._key: Any = None

    def refresh(self) -> None:
        """Rebuild the panel when what it shows changed."""
        s = self.state
        key = (
            s.asset,
            s.selection,
            s.vertex,
            normal_form(s.selected()),
            tuple(map(normal_form, s.rows.values())),
            s.status,
            tuple(s.labels.names),
            s.selection in s.locked,
        )
        if key == self._key:
            return
        self._key = key
        region = s.selected()
        self.box.children = [*(self._region(region) if region else [_note("no region selected")]), *self._asset()]

    # -- the selected region -------------------------------------------------------------------------------
    def _region(self, region: Region) -> list[Any]:
        title = (
            f"<b class='annotebook-note'>{escape(region.kind)}</b> "
            f"<small class='annotebook-dim'>{escape(region.id)}</small>"
            + (" <small class='annotebook-error'>locked</small>" if region.id in self.state.locked else "")
        )
        out: list[Any] = [widgets.HTML(title), self._label(region)]
        for name, value in (region.attributes or {}).items():
            out.append(self._attribute(region.id, name, value))
        rid = region.id
        add = widgets.Text(placeholder="add attribute: name=value", continuous_update=False)
        out.append(_on_value(add, self.run, lambda text: self._add_attribute(rid, text)))
        score = widgets.Text(
            value="" if region.score is None else f"{region.score:g}",
            description="score",
            continuous_update=False,
            placeholder="none (a human row)",
        )
        out.append(_on_value(score, self.run, lambda text: self._set_score(rid, text)))
        if region.kind == "keypoints" and self.state.vertex is not None:
            out.append(self._visibility(region))
        return out

    def _label(self, region: Region) -> Any:
        """The selected region's own label, editable: a known name relabels it; a new one asks first."""
        box = widgets.Combobox(
            value=region.label or "",
            options=list(self.state.labels.names),
            description="label",
            ensure_option=False,
            continuous_update=False,
            placeholder="(no label)",
        )
        box.add_class("annotebook-region-label")
        rid = region.id

        def relabel(name: str) -> None:
            if self.state.selection == rid and name.strip() and name.strip() != (region.label or ""):
                self.state.assign_label(name)

        return _on_value(box, self.run, relabel)

    def _attribute(self, rid: str, name: str, value: Any) -> Any:
        if isinstance(value, bool):
            box = widgets.Checkbox(value=value, description=name, indent=False,
                                   layout=widgets.Layout(width=INPUT_WIDTH))  # fmt: skip
            return _on_value(box, self.run, lambda v: self._set_attribute(rid, name, bool(v)))
        text = widgets.Text(value=_shown(value), description=name, continuous_update=False, placeholder="(remove)")
        return _on_value(text, self.run, lambda t: self._set_attribute(rid, name, parse_value(t) if t else None))

    def _edit_region(self, rid: str, change: Callable[[Region], Region]) -> None:
        region = self.state.editable(self.state.regions.get(rid))
        if region is not None:
            self.state.commit(region, change(region))

    def _set_attribute(self, rid: str, name: str, value: Any) -> None:
        def change(r: Region) -> Region:
            attrs = {k: v for k, v in (r.attributes or {}).items() if k != name}
            if value is not None:
                attrs[name] = value
            return replace(r, attributes=attrs or None)

        self._edit_region(rid, change)

    def _add_attribute(self, rid: str, text: str) -> None:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise ValueError("type an attribute as name=value")
        self._set_attribute(rid, name.strip(), parse_value(value.strip()))

    def _set_score(self, rid: str, text: str) -> None:
        score = float(text) if text.strip() else None
        if score is not None and not (math.isfinite(score) and 0 <= score <= 1):
            raise ValueError("a score is a number in [0, 1]")
        self._edit_region(rid, lambda r: replace(r, score=score))

    def _visibility(self, region: Region) -> Any:
        part, index = self.state.vertex or (0, 0)
        vis = region.visibility or ()
        current = vis[index] if index < len(vis) else 2
        pick = widgets.Dropdown(options=VISIBILITY, value=current, description=f"point {index + 1}")

        def change(r: Region, v: int) -> Region:
            if v == 0:
                return shapes.without_vertex(r, part, index) or r
            old = r.visibility or (2,) * (len(r.points[part]) // 2)
            return replace(r, visibility=(*old[:index], int(v), *old[index + 1 :]))

        return _on_value(pick, self.run, lambda v: self._edit_region(region.id, lambda r: change(r, v)))

    # -- the asset -----------------------------------------------------------------------------------------
    def _asset(self) -> list[Any]:
        s = self.state
        name = escape(s.info.name or s.asset)
        out: list[Any] = [widgets.HTML(f"<hr style='margin:4px 0'><b class='annotebook-note'>asset</b> {name}")]
        options = list(dict.fromkeys([*STATUSES, *([s.status] if s.status else [])]))
        status = widgets.Combobox(
            value=s.status or "",
            options=options,
            description="status",
            ensure_option=False,
            continuous_update=False,
            disabled=not self.can_set_status,
            placeholder="(open with assets=... to set)" if not self.can_set_status else "",
        )
        out.append(_on_value(status, self.run, lambda v: s.set_status(v or None)))
        rows = list(s.rows.values())
        out += [self._tag(r) for r in rows if r.kind == "tag"]
        add_tag = widgets.Text(placeholder="add tag", continuous_update=False)
        out.append(_on_value(add_tag, self.run, lambda v: v.strip() and s.add(AssetRow("", "tag", v.strip(), True))))
        captions = [r for r in rows if r.kind == "caption"] or [AssetRow("", "caption")]
        out += [self._caption(r) for r in captions]
        out += [self._qa(r) for r in [*(r for r in rows if r.kind == "qa"), AssetRow("", "qa")]]
        return out

    def _put_row(self, row: AssetRow, change: Callable[[AssetRow], AssetRow]) -> None:
        """Add, change or (emptied) delete a whole-asset row."""
        if not row.id:
            new = change(row)
            if new.text or new.label:
                self.state.add(new)
            return
        current = self.state.rows.get(row.id)
        if current is not None:
            new = change(current)
            self.state.commit(current, new if new.text or new.label else None)

    def _tag(self, row: AssetRow) -> Any:
        name = row.label or "?"
        box = widgets.Checkbox(value=bool(row.value), description=name if row.value is not None else f"{name} (unset)",
                               indent=False, layout=widgets.Layout(width="205px"))  # fmt: skip
        _on_value(box, self.run, lambda v: self._put_row(row, lambda r: replace(r, value=bool(v))))
        drop = widgets.Button(icon="times", tooltip="delete this tag", layout=widgets.Layout(width="32px"))
        drop.on_click(lambda _: self.run(lambda: self.state.delete(row.id)))
        return widgets.HBox([box, drop])

    def _caption(self, row: AssetRow) -> Any:
        area = widgets.Textarea(value=row.text or "", placeholder="caption", continuous_update=False, rows=2)
        return _on_value(area, self.run, lambda v: self._put_row(row, lambda r: replace(r, text=v or None)))

    def _qa(self, row: AssetRow) -> Any:
        question = widgets.Text(value=row.text or "", placeholder="question", continuous_update=False)
        answer = widgets.Text(value=row.answer or "", placeholder="answer", continuous_update=False)
        _on_value(
            question,
            self.run,
            lambda v: self._put_row(row, lambda r: replace(r, text=v or None, answer=answer.value or None)),
        )

        def set_answer(v: str) -> None:
            if row.id:  # a new question takes its answer when the question is typed
                self._put_row(row, lambda r: replace(r, answer=v or None))

        _on_value(answer, self.run, set_answer)
        return widgets.VBox([question, answer])


def _note(text: str) -> Any:
    return widgets.HTML(f"<i class='annotebook-dim'>{escape(text)}</i>")
