"""`EditorState`: everything the editor knows, as a plain Python object that tests drive directly.

The state holds the current asset's regions (in image pixels) and whole-asset rows, the selection, the active
tool, the viewport, the undo / redo stacks and the dirty flags that tell the view which canvas layers to redraw.
It imports no widget library: the `Editor` is a view that draws from it (docs: style item 8).

Every edit is an `Edit` command, ``before -> after`` of one item, with ``do`` and ``undo``; both go through one
`Sink`, so each lands in the table at once. Undo and redo walk one history for the whole session: undoing an edit
made on another asset first opens that asset.

>>> from annotebook.widgets.sink import MemorySink
>>> from annotebook.widgets.regions import Region
>>> state = EditorState(MemorySink(sizes={"a": (100, 80)}), ["a"])
>>> r = state.add(Region("", "box", "cat", box=(1.0, 2.0, 30.0, 40.0)))
>>> state.undo(), list(state.regions)
(True, [])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import regions as rg
from .regions import AssetRow, Region, Units
from .sink import AssetInfo, Sink
from .viewport import Viewport

__all__ = ["TOOLS", "Dirty", "Edit", "EditorState", "Item", "LabelInfo", "PendingLabel", "Status"]

TOOLS = ("select", "box", "polygon", "polyline", "keypoints", "pan")


@dataclass(frozen=True)
class Status:
    """The asset's review status, as an undoable item."""

    value: str | None


Item = Region | AssetRow | Status


@dataclass(frozen=True)
class Edit:
    """One undoable edit on ``asset``: an item goes from ``before`` to ``after`` (None: not there)."""

    asset: str
    before: Item | None
    after: Item | None

    def do(self, state: EditorState) -> None:
        """Apply the edit (to the state and, through its sink, the table)."""
        state.write_edit(self.before, self.after)

    def undo(self, state: EditorState) -> None:
        """Take the edit back."""
        state.write_edit(self.after, self.before)


@dataclass
class Dirty:
    """Which parts of the view are out of date."""

    image: bool = True
    regions: bool = True
    overlay: bool = True
    panel: bool = True

    def everything(self) -> None:
        """Mark every part out of date (a new asset, a new front end)."""
        self.image = self.regions = self.overlay = self.panel = True

    def any(self) -> bool:
        """Whether anything needs redrawing."""
        return self.image or self.regions or self.overlay or self.panel


@dataclass
class LabelInfo:
    """The labels table, as the editor uses it: names in order (digits pick them) and keypoint names."""

    names: list[str] = field(default_factory=list)
    keypoints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: bool = False  # the backend makes no new labels: a name not in ``names`` is refused
    listed: frozenset[str] = frozenset()  # the names the labels table has (others come from the frame or the user)


@dataclass(frozen=True)
class PendingLabel:
    """A label name that is not a label yet, waiting for the user's yes (`EditorState.confirm_label`)."""

    name: str
    for_selection: str | None  # the region it relabels once confirmed; None: it becomes the next shape's label
    suggestion: str | None  # the nearest existing name, for a likely typo


class EditorState:
    """Regions, selection, tool, viewport, history and dirty flags of one editing session."""

    def __init__(
        self,
        sink: Sink,
        walk: Sequence[str],
        *,
        start: int = 0,
        labels: LabelInfo | None = None,
        canvas_size: tuple[int, int] = (800, 600),
        clock: Callable[[], float] = time.monotonic,
    ):
        if not walk:
            raise ValueError("the editor needs at least one asset")
        self.sink = sink
        self.walk = list(walk)
        self.labels = labels or LabelInfo()
        self.canvas_size = canvas_size
        self.clock = clock
        self.tool = "select"
        self.label: str | None = self.labels.names[0] if self.labels.names else None
        self.show_labels = True
        self.undo_stack: list[Edit] = []
        self.redo_stack: list[Edit] = []
        self.dirty = Dirty()
        self.message = ""
        self.pointer: tuple[float, float] | None = None  # last mouse position on the canvas
        self.gesture: Any = None  # the tool's interaction in progress (see tools.py)
        self.hidden: str | None = None  # a region drawn on the overlay while it is dragged
        self.last_pick: tuple[float, float] | None = None  # where a click last selected a region (canvas)
        self.pending: PendingLabel | None = None  # a new label name waiting for a yes
        self.hidden_ids: set[str] = set()  # regions the region list hides (not drawn, not hit by clicks)
        self.locked: set[str] = set()  # regions the region list locks (clicks go through, no edit)
        self.show_help = False
        self._units: dict[str, Units] = {}
        self.index = start
        self.open(self.walk[start])

    # -- the current asset ---------------------------------------------------------------------------------
    def open(self, asset: str) -> None:
        """Load ``asset``'s rows from the sink and fit the view; the history is kept."""
        self.asset = asset
        self.index = self.walk.index(asset) if asset in self.walk else self.index
        self.info: AssetInfo = self.sink.info(asset)
        units = self._units.get(asset)
        if units is None or (units.width, units.height) != (self.info.width, self.info.height):
            units = self._units[asset] = Units(self.info.width, self.info.height)
        self.units = units
        self.regions: dict[str, Region] = {}
        self.rows: dict[str, AssetRow] = {}
        self._order: dict[str, int] = {}
        for n, row in enumerate(self.sink.rows(asset)):
            self._order[str(row["id"])] = n
            if row["kind"] in rg.REGION_KINDS:
                region = rg.region_from_row(row, units)
                if region is not None:
                    self.regions[region.id] = region
            elif row["kind"] in rg.ASSET_KINDS:
                self.rows[str(row["id"])] = rg.asset_row_from_row(row)
        self.status = self.info.status
        self.selection: str | None = None
        self.vertex: tuple[int, int] | None = None
        self.gesture = None
        self.hidden = None
        self.last_pick = None
        self.hidden_ids = getattr(self, "hidden_ids", set()) & set(self.regions)
        self.locked = getattr(self, "locked", set()) & set(self.regions)
        self.viewport = Viewport(*self.canvas_size, self.info.width, self.info.height)
        self.dirty.everything()

    def reload(self) -> None:
        """Read the asset's rows again (the frame was changed outside the editor), keeping the view."""
        viewport, selection = self.viewport, self.selection
        self.open(self.asset)
        self.viewport = viewport
        self.select(selection if selection in self.regions else None)

    def step(self, by: int) -> bool:
        """Open the next (``by=1``) or previous (``-1``) asset of the walk; False at either end."""
        target = self.index + by
        if not 0 <= target < len(self.walk):
            self.message = "last asset" if by > 0 else "first asset"
            return False
        self.open(self.walk[target])
        return True

    def selected(self) -> Region | None:
        """The selected region, if any."""
        return self.regions.get(self.selection) if self.selection else None

    def select(self, id: str | None, vertex: tuple[int, int] | None = None) -> None:
        """Select region ``id`` (None: nothing), and optionally one of its vertices (part, index)."""
        if (id, vertex) != (self.selection, self.vertex):
            self.selection, self.vertex = id, vertex
            self.dirty.overlay = self.dirty.panel = True

    def select_row(self, id: str) -> None:
        """Select the row with id ``id`` wherever it is in the walk (its asset is opened first); it is shown even
        when the region list hid it. A seam for code that walks rows (a review queue): ``editor.select_row(id)``."""
        if id not in self.regions:
            asset = self.sink.asset_of(id)
            if asset is None:
                raise LookupError(f"no row {id!r} in the frame the editor was opened on")
            if asset not in self.walk:
                self.walk.append(asset)
            self.open(asset)
        if id not in self.regions:
            raise LookupError(f"row {id!r} is not a region the editor can draw (a deleted row, or a whole-asset row)")
        self.hidden_ids.discard(id)
        self.dirty.regions = True
        self.select(id)

    def pickable(self) -> list[Region]:
        """The regions a click on the canvas can reach: neither hidden nor locked, in drawing order."""
        return [r for r in self.regions.values() if r.id not in self.hidden_ids and r.id not in self.locked]

    def toggle_hidden(self, id: str) -> None:
        """Hide region ``id`` (not drawn, not reached by clicks), or show it again."""
        self.hidden_ids.symmetric_difference_update({id})
        if id in self.hidden_ids and self.selection == id:
            self.select(None)
        self.dirty.regions = self.dirty.overlay = self.dirty.panel = True

    def toggle_locked(self, id: str) -> None:
        """Lock region ``id`` (clicks go through it to what lies beneath; no edit), or unlock it."""
        self.locked.symmetric_difference_update({id})
        self.dirty.overlay = self.dirty.panel = True

    def editable(self, region: Region | None) -> Region | None:
        """``region`` when it may be edited; a locked region is refused with a message."""
        if region is not None and region.id in self.locked:
            raise ValueError(f"region {region.id} is locked: unlock it in the region list to edit it")
        return region

    # -- labels --------------------------------------------------------------------------------------------
    def pick_label(self, name: str) -> None:
        """Make ``name`` the label of the next shape drawn (the selection keeps its own label)."""
        self._choose(name, None)

    def assign_label(self, name: str | None = None) -> None:
        """Give the selected region label ``name`` (default: the label picked for the next shape)."""
        region = self.editable(self.selected())
        if region is None:
            raise ValueError("select a region first: the label goes to the selected region")
        name = self.label if name is None else name
        if not name:
            raise ValueError("pick a label first (a digit, or a click in the label list)")
        self._choose(name, region.id)

    def _choose(self, name: str, region: str | None) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a label needs a name")
        self.pending = None
        self.dirty.panel = True
        if name not in self.labels.names:
            if self.labels.fixed:
                near = _nearest(name, self.labels.names)
                hint = f"; did you mean {near!r}?" if near else ""
                raise ValueError(f"{name!r} is not one of this dataset's labels; its backend makes no new ones{hint}")
            self.pending = PendingLabel(name, region, _nearest(name, self.labels.names))
            return
        self._apply_label(name, region)

    def confirm_label(self) -> None:
        """Yes to the pending new label: it becomes a label, and goes where it was meant to."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        self.labels.names.append(pending.name)
        self._apply_label(pending.name, pending.for_selection)

    def cancel_label(self) -> None:
        """No to the pending new label: nothing changes."""
        self.pending = None
        self.dirty.panel = True

    def _apply_label(self, name: str, region_id: str | None) -> None:
        if region_id is None:
            self.label = name
            self.dirty.panel = self.dirty.overlay = True
            return
        region = self.regions.get(region_id)
        if region is not None and region.label != name:
            self.commit(region, replace(region, label=name))

    def set_viewport(self, viewport: Viewport) -> None:
        """Show the image through ``viewport`` (every layer is redrawn)."""
        self.viewport = viewport
        self.dirty.image = self.dirty.regions = self.dirty.overlay = True

    # -- edits ---------------------------------------------------------------------------------------------
    def commit(self, before: Item | None, after: Item | None) -> Item | None:
        """Apply one edit and record it for undo; returns ``after`` as it landed (a new row gets its id)."""
        if rg.normal_form(before) == rg.normal_form(after):
            return after
        landed = self.write_edit(before, after)
        self.undo_stack.append(Edit(self.asset, before, landed))
        self.redo_stack.clear()
        return landed

    def add(self, item: Region | AssetRow) -> Region | AssetRow:
        """Add a new region or whole-asset row (its ``id`` is left empty); returns it with its id."""
        landed = self.commit(None, replace(item, id=""))
        assert isinstance(landed, (Region, AssetRow))
        return landed

    def delete(self, id: str) -> None:
        """Delete region or row ``id``."""
        item = self.regions.get(id) or self.rows.get(id)
        if item is not None:
            self.commit(item, None)

    def set_status(self, value: str | None) -> None:
        """Set the asset's review status (an undoable edit)."""
        self.commit(Status(self.status), Status(value or None))

    def undo(self) -> bool:
        """Undo the last edit (opening its asset first when needed); False when there is none."""
        return self._replay(self.undo_stack, self.redo_stack, Edit.undo)

    def redo(self) -> bool:
        """Redo the last undone edit; False when there is none."""
        return self._replay(self.redo_stack, self.undo_stack, Edit.do)

    def _replay(self, source: list[Edit], target: list[Edit], how: Callable[[Edit, EditorState], None]) -> bool:
        if not source:
            self.message = "nothing to undo" if how is Edit.undo else "nothing to redo"
            return False
        edit = source[-1]
        if edit.asset != self.asset:
            self.open(edit.asset)
        how(edit, self)  # when the table refuses (a row gone from the frame), the edit stays where it was
        target.append(source.pop())
        shown = edit.before if how is Edit.undo else edit.after
        if isinstance(shown, Region):
            self.select(shown.id)
        elif isinstance(edit.before or edit.after, Region):
            self.select(None)
        return True

    def write_edit(self, old: Item | None, new: Item | None) -> Item | None:
        """Make the table (through the sink) and this state go from ``old`` to ``new``.

        The one path by which the editor writes into the frame: every edit, undo and redo comes through here.
        """
        self.dirty.panel = True
        if isinstance(new, Status) or isinstance(old, Status):
            value = new.value if isinstance(new, Status) else None
            self.sink.set_status(self.asset, value)
            self.status = value
            return new
        self.dirty.regions = self.dirty.overlay = True
        if new is None:
            assert old is not None
            self.sink.delete(old.id)
            self._forget(old.id)
            return None
        if old is None and not new.id:  # a new row: the sink gives it its id
            new = replace(new, id=self.sink.add(self.asset, self._fields(new)))
            self._order[new.id] = max(self._order.values(), default=-1) + 1
        elif old is None:  # a row coming back (undo of a delete, redo of an add): its content never changed
            self.sink.restore(new.id)
        else:
            before, after = self._fields(old), self._fields(new)
            self.sink.update(new.id, {k: v for k, v in after.items() if _differs(k, before.get(k), v)})
        self._remember(new)
        return new

    def _fields(self, item: Region | AssetRow) -> dict[str, Any]:
        if isinstance(item, Region):
            return rg.fields_of(item, self.units)
        return rg.asset_row_fields(item)

    def _forget(self, id: str) -> None:
        self.regions.pop(id, None)
        self.rows.pop(id, None)
        if self.selection == id:
            self.selection, self.vertex = None, None

    def _remember(self, item: Region | AssetRow) -> None:
        table: dict[str, Any] = self.regions if isinstance(item, Region) else self.rows
        back = item.id not in table
        table[item.id] = item
        if back:  # a row coming back takes its place in table order again
            ordered = sorted(table.items(), key=lambda kv: self._order.get(kv[0], len(self._order)))
            table.clear()
            table.update(ordered)

    # -- for tests and the view ----------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        """The asset's content in a form that compares exactly (NaN equals NaN)."""
        return (
            self.asset,
            tuple(rg.normal_form(r) for r in self.regions.values()),
            tuple(rg.normal_form(r) for r in self.rows.values()),
            self.status,
        )

    def keypoint_names(self, label: str | None) -> tuple[str, ...]:
        """The labels table's keypoint names of ``label`` (empty: a single point)."""
        return self.labels.keypoints.get(label or "", ())


def _nearest(name: str, names: Sequence[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return close[0] if close else None


def _differs(column: str, a: Any, b: Any) -> bool:
    from ..schema import normal_value

    return bool(normal_value(column, a) != normal_value(column, b))


def labels_info(labels: Any) -> LabelInfo:
    """`LabelInfo` from a labels table (or None)."""
    if labels is None or len(labels) == 0 or "name" not in labels.columns:
        return LabelInfo()
    names = [str(n) for n in labels["name"].dropna().tolist()]
    keypoints: dict[str, tuple[str, ...]] = {}
    if "keypoints" in labels.columns:
        for name, kp in zip(labels["name"], labels["keypoints"], strict=True):
            if isinstance(kp, (tuple, list)) and len(kp):
                keypoints[str(name)] = tuple(str(k) for k in kp)
    return LabelInfo(list(dict.fromkeys(names)), keypoints, listed=frozenset(names))
