"""`EditorState` on its own (no widgets): commands, undo / redo, the sink, and property tests."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annotebook as ab
from annotebook import schema
from annotebook.widgets import shapes
from annotebook.widgets.regions import AssetRow, Region
from annotebook.widgets.sink import FrameSink, MemorySink
from annotebook.widgets.state import EditorState

from .conftest import hand_tables


def hand_state() -> tuple[EditorState, pd.DataFrame, pd.DataFrame]:
    assets, anns, _ = hand_tables()
    return EditorState(FrameSink(anns, assets), ["a", "b"]), anns, assets


def content(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's contract content in normal form, for exact comparison."""
    cols = [c for c in schema.ANNOTATION_COLUMNS if c != "load"]
    return [{c: schema.normal_value(c, r[c]) for c in cols} for r in frame[cols].to_dict("records")]


def test_commands_have_do_and_undo() -> None:
    state, anns, _ = hand_state()
    box = state.regions["box"]
    state.commit(box, shapes.moved(box, 3.0, 0.0))
    edit = state.undo_stack[-1]
    edit.undo(state)
    assert anns.set_index("id").loc["box", "x0"] == 0.1
    edit.do(state)
    assert anns.set_index("id").loc["box", "x0"] == pytest.approx(0.11)


def test_a_no_op_edit_is_not_recorded() -> None:
    state, _, _ = hand_state()
    box = state.regions["box"]
    state.commit(box, replace(box))
    assert state.undo_stack == []


def test_only_changed_fields_are_written() -> None:
    state, anns, _ = hand_state()
    anns.loc[anns["id"] == "box", "author"] = "someone else"  # written outside the editor: left alone
    box = state.regions["box"]
    state.commit(box, replace(box, label="lynx"))
    r = anns.set_index("id").loc["box"]
    assert (r["label"], r["author"], r["x0"]) == ("lynx", "someone else", 0.1)


def test_status_and_asset_rows() -> None:
    state, anns, assets = hand_state()
    state.set_status("InProgress")
    tag = state.add(AssetRow("", "tag", "night", True))
    assert assets.loc[assets["asset"] == "a", "status"].item() == "InProgress"
    assert anns.set_index("id").loc[tag.id, "value"]
    state.undo()
    state.undo()
    assert pd.isna(assets.loc[assets["asset"] == "a", "status"].item())
    assert anns.set_index("id").loc[tag.id, "deleted"]


def test_status_needs_an_assets_frame() -> None:
    _, anns, _ = hand_state()
    state = EditorState(FrameSink(anns), ["a"])
    with pytest.raises(ValueError, match="assets="):
        state.set_status("Completed")
    assert state.info.width == 1000.0 and not state.info.size_known  # no assets table: a placeholder size


def test_undo_of_a_delete_restores_the_z_order() -> None:
    state, _, _ = hand_state()
    state.delete("box")
    assert list(state.regions) == ["poly", "line"]
    state.undo()
    assert list(state.regions) == ["box", "poly", "line"] and state.selection == "box"


def test_nothing_to_undo_or_redo() -> None:
    state, _, _ = hand_state()
    assert not state.undo() and state.message == "nothing to undo"
    assert not state.redo() and state.message == "nothing to redo"


def test_sink_raises_for_a_vanished_row() -> None:
    state, anns, _ = hand_state()
    anns._update_inplace(anns[anns["id"] != "box"])  # type: ignore[operator]
    assert state.sink.locate("poly") == 0  # type: ignore[attr-defined]
    with pytest.raises(LookupError, match="reopen the editor"):  # its old position holds "poly" now
        state.sink.locate("box")  # type: ignore[attr-defined]


def test_memory_sink_round_trip() -> None:
    sink = MemorySink([{"id": "1", "asset": "a", "kind": "box", "label": "x", "x0": 0.1, "y0": 0.1, "x1": 0.2,
                        "y1": 0.2, "rotation": 0.0}], sizes={"a": (10, 10)})  # fmt: skip
    state = EditorState(sink, ["a"])
    box = state.regions["1"]
    state.commit(box, shapes.moved(box, 1.0, 1.0))
    assert sink.table["1"]["x0"] == pytest.approx(0.2)
    state.undo()
    assert sink.table["1"]["x0"] == 0.1


# -- property: any sequence of edits, then undo-all, gives the start ---------------------------------------------

XY = st.floats(-20.0, 320.0, allow_nan=False)
OPS = st.one_of(
    st.tuples(st.just("box"), XY, XY, st.floats(0.5, 200.0), st.floats(0.5, 150.0)),
    st.tuples(st.just("polygon"), st.lists(st.tuples(XY, XY), min_size=3, max_size=6)),
    st.tuples(st.just("move"), st.integers(0, 9), XY, XY),
    st.tuples(st.just("resize"), st.integers(0, 9), st.sampled_from(sorted(shapes.HANDLES)), XY, XY),
    st.tuples(st.just("vertex"), st.integers(0, 9), st.integers(0, 9), XY, XY),
    st.tuples(st.just("insert"), st.integers(0, 9), st.integers(0, 9), XY, XY),
    st.tuples(st.just("unvertex"), st.integers(0, 9), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.integers(0, 9)),
    st.tuples(st.just("relabel"), st.integers(0, 9), st.sampled_from(["cat", "dog", "ému"])),
    st.tuples(st.just("attribute"), st.integers(0, 9), st.sampled_from([None, True, 3, "x"])),
    st.tuples(st.just("tag"), st.sampled_from(["night", "day"])),
    st.tuples(st.just("status"), st.sampled_from([None, "Completed"])),
    st.tuples(st.just("step"), st.sampled_from([1, -1])),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


def apply(state: EditorState, op: tuple[Any, ...]) -> None:
    regions = list(state.regions.values())
    pick = regions[op[1] % len(regions)] if regions and isinstance(op[1:2] and op[1], int) else None
    name = op[0]
    if name == "box":
        state.add(Region("", "box", "cat", box=(op[1], op[2], op[1] + op[3], op[2] + op[4])))
    elif name == "polygon":
        state.add(Region("", "polygon", "dog", points=(tuple(v for p in op[1] for v in p),)))
    elif name == "step":
        state.step(op[1])
    elif name == "undo":
        state.undo()
    elif name == "redo":
        state.redo()
    elif name == "tag":
        state.add(AssetRow("", "tag", op[1], True))
    elif name == "status":
        state.set_status(op[1])
    elif pick is not None:
        _edit_region(state, pick, op)


def _edit_region(state: EditorState, r: Region, op: tuple[Any, ...]) -> None:
    name = op[0]
    n = len(r.points[0]) // 2 if r.points else 0
    new: Region | None = None
    if name == "move":
        new = shapes.moved(r, op[2], op[3])
    elif name == "resize" and r.box is not None:
        new = shapes.resized(r, op[2], op[3], op[4])
    elif name == "vertex" and n:
        new = shapes.with_vertex(r, 0, op[2] % n, op[3], op[4])
    elif name == "insert" and n:
        new = shapes.with_inserted(r, 0, op[2] % n, op[3], op[4])
    elif name == "unvertex" and n:
        new = shapes.without_vertex(r, 0, op[2] % n)
    elif name == "delete":
        state.delete(r.id)
    elif name == "relabel":
        new = replace(r, label=op[2])
    elif name == "attribute":
        new = replace(r, attributes=None if op[2] is None else {"a": op[2]})
    if new is not None:
        state.commit(r, new)


def snapshots(state: EditorState) -> dict[str, Any]:
    out = {}
    for asset in state.walk:
        state.open(asset)
        out[asset] = state.snapshot()
    return out


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(OPS, max_size=25))
def test_undo_all_gives_the_start_in_memory(ops: list[tuple[Any, ...]]) -> None:
    _, anns, _ = hand_tables()
    rows = [{**r, "id": str(r["id"])} for r in anns.to_dict("records")]
    state = EditorState(MemorySink(rows, sizes={"a": (300, 200), "b": (300, 200)}), ["a", "b"])
    start = snapshots(state)
    state.open("a")
    for op in ops:
        apply(state, op)
    while state.redo():  # edits undone along the way are redone too: the furthest state
        pass
    furthest = snapshots(state)
    while state.undo():
        pass
    assert snapshots(state) == start
    while state.redo():
        pass
    assert snapshots(state) == furthest


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, max_size=15))
def test_undo_all_gives_the_start_in_a_loaded_frame(conn: ab.Connection, ops: list[tuple[Any, ...]]) -> None:
    anns = conn.annotations("t")
    assets = conn.assets("t")
    before = content(anns)
    state = EditorState(FrameSink(anns, assets), ["a0", "a1", "a2"])
    for op in ops:
        apply(state, op)
    while state.undo():
        pass
    assert len(anns.annot.diff()) == 0
    assert content(anns.iloc[: len(before)]) == before  # bit for bit: no float drifted
    assert anns.iloc[len(before) :]["deleted"].all()  # rows the editor added are markers diff leaves out
    assert assets["status"].isna().all()


def test_extents_follow_points_exactly() -> None:
    state, anns, _ = hand_state()
    poly = state.regions["poly"]
    state.commit(poly, shapes.with_vertex(poly, 0, 0, 10.0, 20.0))
    r = anns.set_index("id").loc["poly"]
    assert (r["x0"], r["y0"], r["x1"], r["y1"]) == schema.part_extent(r["points"])
    assert r["x0"] == 10.0 / 300 and not math.isnan(r["y1"])


def test_reload_reads_changes_made_outside_and_an_edit_never_revives_a_row() -> None:
    state, anns, _ = hand_state()
    box = state.regions["box"]
    anns.loc[anns["id"] == "box", "deleted"] = True  # deleted in a cell while the editor was open
    state.commit(box, shapes.moved(box, 3.0, 0.0))  # the editor still showed it: the edit writes geometry only
    assert anns.set_index("id").loc["box", "deleted"]
    state.reload()
    assert "box" not in state.regions


def test_a_refused_undo_stays_on_the_stack() -> None:
    state, anns, _ = hand_state()
    box = state.regions["box"]
    state.commit(box, shapes.moved(box, 3.0, 0.0))
    anns._update_inplace(anns.iloc[::-1])  # type: ignore[operator]  # the rows reordered: "box" is not at its place
    anns.loc[anns["id"] == "box", "id"] = "renamed-by-hand"
    anns.loc[anns["id"] == "poly", "id"] = "renamed-too"
    with pytest.raises(LookupError):
        state.undo()
    assert len(state.undo_stack) == 1 and state.redo_stack == []
