"""The editor as a whole: shortcuts, undo / redo, zoom and pan, the side panel, the frame it writes into,
and what it sends to the browser."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import annotebook as ab
from annotebook.widgets.editor import walk_of

from .conftest import Front, big_image, hand_tables, open_editor


def live(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["deleted"]]


# -- the frame the editor writes into ----------------------------------------------------------------------------


def test_edits_land_in_the_same_frame_and_diff_shows_exactly_them(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    assert front.editor.frame is anns
    assert front.state.asset == "a0"
    box = next(r for r in front.state.regions.values() if r.kind == "box")
    front.state.select(box.id)  # boxes and the polygon overlap here: pick one for sure
    front.key("ArrowRight")
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    changes = anns.annot.diff()
    assert len(changes.added) == 1 and len(changes.modified) == 1 and len(changes.deleted) == 0
    assert sorted(changes.changes["field"]) == ["x0", "x1"]
    assert changes.added.iloc[0]["asset"] == "a0"
    added = anns[anns["id"] == changes.added.iloc[0]["id"]]
    assert added.index[0] == anns.index.max()  # a fresh integer label
    assert added["load"].iloc[0] == anns["load"].iloc[0]
    assert anns.dtypes.equals(ab.annotations_frame().dtypes.reindex(anns.columns).fillna(anns.dtypes))


def test_undo_everything_leaves_an_empty_diff(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    front.tool("select")
    front.click(*front.at(25, 20))
    front.key("ArrowDown", shift=True)
    client_id = front.state.selection
    front.key("Delete")
    assert len(anns.annot.diff()) == 0  # added, moved, deleted: nothing to push; the row stays as a marker
    assert anns.set_index("id").loc[client_id, "deleted"]
    for _ in range(2):
        front.key("z", ctrl=True)
    assert len(anns.annot.diff().added) == 1
    front.key("z", ctrl=True)  # undo the add: the client row is marked deleted, which diff leaves out
    assert len(anns.annot.diff()) == 0
    assert anns.annot.validate().empty
    front.key("y", ctrl=True)  # redo the add: the same client id comes back
    changes = anns.annot.diff()
    assert len(changes.added) == 1 and changes.added.iloc[0]["id"] == client_id == front.state.selection


def test_redo_variants_and_meta_for_mac(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    front.key("z", meta=True)
    assert len(anns.annot.diff()) == 0
    front.key("Z", shift=True, ctrl=True)
    assert len(anns.annot.diff()) == 1
    front.key("z", ctrl=True)
    front.key("y", meta=True)
    assert len(anns.annot.diff()) == 1


def test_duplicate_index_labels_are_written_by_position(anns: pd.DataFrame) -> None:
    anns.index = [7] * len(anns)
    front = open_editor(anns)
    target = next(iter(front.state.regions))
    front.state.select(target)
    before = anns.copy()
    front.key("ArrowLeft")
    changed = ~((anns["x0"] == before["x0"]) | anns["x0"].isna()).to_numpy()
    assert changed.sum() == 1 and anns["id"].to_numpy()[changed][0] == target


def test_a_mask_target_walks_its_assets_and_edits_land_in_the_frame(anns: pd.DataFrame) -> None:
    mask = anns["asset"].isin(["a1", "a2"]) & (anns["kind"] == "box")
    front = open_editor(anns, target=mask)
    assert front.state.walk == ["a1", "a2"]
    front.key("n")
    assert front.state.asset == "a2"
    front.key("n")
    assert front.state.asset == "a2" and "last asset" in front.editor._message.value
    front.key("Delete")  # nothing selected: nothing happens
    front.click(*front.at(*next(iter(front.state.regions.values())).box[:2]))
    front.key("Delete")
    assert len(anns.annot.diff().deleted) == 1
    front.key("p")
    assert front.state.asset == "a1"


def test_walk_of_targets(anns: pd.DataFrame) -> None:
    assert walk_of(anns) == (["a0", "a1", "a2"], 0)
    assert walk_of(anns, "a1") == (["a0", "a1", "a2"], 1)
    with pytest.raises(ValueError, match="no asset 'zz'"):
        walk_of(anns, "zz")  # a typo never opens an empty asset
    table = pd.DataFrame({"asset": ["a0", "a1", "a2", "zz"]})
    assert walk_of(anns, "zz", table) == (["zz", "a0", "a1", "a2"], 0)  # an asset without rows, in its table
    assert walk_of(anns, ["a2", "a0"]) == (["a2", "a0"], 0)
    assert walk_of(anns, (anns["kind"] == "tag").to_numpy()) == (["a2"], 0)
    with pytest.raises(ValueError, match="no rows"):
        walk_of(anns, anns["kind"] == "nothing")


def test_accessor_edit_opens_on_an_asset(anns: pd.DataFrame) -> None:
    editor = anns.annot.edit("a1")
    assert editor.state.asset == "a1" and editor.frame is anns
    assert type(anns.annot.browse()).__name__ == "Browser"


def test_undo_across_assets_opens_that_asset(hand: Front) -> None:
    hand.click(100, 100)
    hand.key("ArrowRight")
    hand.key("n")
    assert hand.state.asset == "b"
    hand.key("z", ctrl=True)
    assert hand.state.asset == "a" and hand.editor.frame.set_index("id").loc["box", "x0"] == 0.1


def test_editing_goes_on_after_a_push_renames_the_new_row(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    client_id = front.state.selection
    anns.annot.push()
    assert client_id not in set(anns["id"])  # the backend gave it its id, in place
    front.tool("select")
    front.key("ArrowRight")
    changes = anns.annot.diff()
    assert len(changes.modified) == 1 and set(changes.changes["field"]) == {"x0", "x1"}


# -- shortcuts ---------------------------------------------------------------------------------------------------


def test_arrows_nudge_in_image_pixels(hand: Front) -> None:
    hand.click(100, 100)
    hand.key("ArrowRight")
    hand.key("ArrowDown", shift=True)
    r = hand.editor.frame.set_index("id").loc["box"]
    assert r["x0"] == pytest.approx(31 / 300) and r["y0"] == pytest.approx(30 / 200)
    assert len(hand.state.undo_stack) == 2


def test_digits_pick_the_next_label_and_a_assigns_it(hand: Front) -> None:
    """A digit picks the next shape's label and never relabels the selection; ``a`` assigns it explicitly."""
    hand.key("2")
    assert hand.state.label == "dog" and "next shape: <b>dog</b>" in hand.editor._where.value
    hand.click(100, 100)
    assert hand.state.selection == "box"
    hand.key("1")
    assert hand.editor.frame.set_index("id").loc["box", "label"] == "cat"  # the selection keeps its label
    hand.key("2")
    hand.key("a")
    assert hand.editor.frame.set_index("id").loc["box", "label"] == "dog"
    hand.key("9")  # no ninth label: nothing
    assert hand.state.label == "dog"


def test_a_new_shape_keeps_its_label_when_a_digit_follows(hand: Front) -> None:
    """Drawing a polyline, then pressing a digit, leaves the polyline's label alone (it stays selected)."""
    hand.key("1")
    hand.tool("polyline")
    hand.click(20, 20)
    hand.click(120, 60)
    hand.key("Enter")
    new_id = hand.state.selection
    hand.key("2")
    assert hand.editor.frame.set_index("id").loc[new_id, "label"] == "cat"
    assert hand.state.label == "dog"


def test_the_selected_regions_label_is_shown_and_edited_in_the_panel(hand: Front) -> None:
    hand.key("3")  # next shape: star
    hand.click(400, 300)  # the polygon, labelled dog
    box = find(hand, "Combobox", description="label")
    assert box.value == "dog"  # the selection's own label, not the next shape's
    box.value = "cat"
    assert hand.editor.frame.set_index("id").loc["poly", "label"] == "cat"


def test_a_new_label_waits_for_a_yes(hand: Front) -> None:
    hand.click(400, 300)
    find(hand, "Combobox", description="label").value = "dgo"
    assert hand.editor.frame.set_index("id").loc["poly", "label"] == "dog"  # nothing yet
    assert hand.state.pending is not None and hand.state.pending.suggestion == "dog"
    assert "is not a label yet" in hand.editor._confirm.children[0].value
    assert hand.editor._confirm.layout.display == "flex"
    hand.key("Escape")  # no
    assert hand.state.pending is None and "dgo" not in hand.state.labels.names
    hand.editor.label_list.new.value = "zebra"  # a new label for the next shape
    create = next(b for b in hand.editor._confirm.children if getattr(b, "description", "").startswith("create"))
    create.click()
    assert hand.state.label == "zebra" and "zebra" in hand.state.labels.names
    hand.tool("box")
    hand.drag(300, 20, 400, 100)
    assert hand.editor.frame["label"].iloc[-1] == "zebra"
    assert "zebra" in hand.editor.label_list.buttons


def test_fixed_labels_refuse_a_new_name() -> None:
    assets, anns, labels = hand_tables()
    front = open_editor(anns, assets=assets, labels=labels, width=600, height=400, fixed_labels=True)
    front.click(100, 100)
    find(front, "Combobox", description="label").value = "dgo"
    assert front.state.pending is None and front.editor.frame.set_index("id").loc["box", "label"] == "cat"
    message = html.unescape(front.editor._message.value)
    assert "makes no new ones" in message and "did you mean 'dog'" in message


def test_region_list_selects_hides_and_locks(hand: Front) -> None:
    rl = hand.editor.region_list
    assert list(rl.rows) == ["box", "poly", "line"]
    rl.rows["line"].children[1].click()  # select from the list
    assert hand.state.selection == "line"
    rl.rows["poly"].children[2].click()  # hide the polygon: a click there reaches nothing
    assert "poly" in hand.state.hidden_ids
    hand.click(400, 300)
    assert hand.state.selection is None
    rl.rows["poly"].children[2].click()  # show it again
    rl.rows["poly"].children[3].click()  # lock it: clicks go through, edits are refused
    hand.click(400, 300)
    assert hand.state.selection is None
    rl.rows["poly"].children[1].click()
    assert hand.state.selection == "poly"
    hand.key("Delete")
    assert not hand.editor.frame.set_index("id").loc["poly", "deleted"] and "locked" in hand.editor._message.value
    hand.drag(400, 300, 420, 300)
    assert hand.editor.frame.set_index("id").loc["poly", "points"][0][0] == 0.5


def test_stacked_regions_are_reachable_by_tab_and_by_id(hand: Front) -> None:
    hand.key("Tab")
    assert hand.state.selection == "box"
    hand.key("Tab")
    hand.key("Tab")
    assert hand.state.selection == "line"
    hand.editor.select_row("bbox")  # a row of another asset: its asset opens
    assert hand.state.asset == "b" and hand.state.selection == "bbox"
    with pytest.raises(LookupError):
        hand.state.select_row("nope")


def test_help_overlay_lists_every_shortcut(hand: Front) -> None:
    from annotebook.widgets.keys import SHORTCUTS

    assert hand.editor._help.layout.display == "none"
    hand.key("?")
    assert hand.editor._help.layout.display == "block"
    for keys_, _ in SHORTCUTS:
        assert keys_.replace("<", "&lt;") in hand.editor._help.value
    hand.editor._help_button.click()
    assert hand.editor._help.layout.display == "none"


def test_cursor_follows_the_tool(hand: Front) -> None:
    assert "annotebook-tool-select" in hand.editor.canvas._dom_classes
    hand.tool("box")
    assert "annotebook-tool-box" in hand.editor.canvas._dom_classes
    assert "annotebook-tool-select" not in hand.editor.canvas._dom_classes


def test_unpushed_count_in_the_header(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    assert "no unpushed changes" in front.editor._unpushed.value
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    assert "1 unpushed change<" in front.editor._unpushed.value
    anns.annot.push()
    front.editor._reload()
    front.editor.render()
    assert "no unpushed changes" in front.editor._unpushed.value


def test_size_follows_the_cell_and_edit_takes_a_size(anns: pd.DataFrame) -> None:
    editor = anns.annot.edit(width=500, height=300)
    assert editor.state.canvas_size == (500, 300)
    assert editor.canvas.layout.width == "100%" and editor.canvas.layout.max_width == "500px"
    with pytest.raises(ValueError, match="width and height"):
        anns.annot.edit(width=5)


def test_a_half_built_editor_closes_quietly(anns: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    import gc

    with pytest.raises(ValueError):
        anns.annot.edit("no_such_asset")
    gc.collect()
    assert "Exception ignored" not in capsys.readouterr().err


def test_tool_letters_buttons_and_labels_toggle(hand: Front) -> None:
    for key, tool in [
        ("b", "box"),
        ("g", "polygon"),
        ("l", "polyline"),
        ("k", "keypoints"),
        ("h", "pan"),
        ("v", "select"),
    ]:
        hand.key(key)
        assert hand.state.tool == tool and hand.editor._tool.value == tool
    hand.editor._tool.value = "polygon"
    assert hand.state.tool == "polygon"
    hand.key("t")
    assert not hand.state.show_labels and not hand.editor._labels_shown.value
    hand.key("q")  # no meaning: ignored
    hand.key("s", ctrl=True)


# -- zoom and pan ------------------------------------------------------------------------------------------------


def test_wheel_zooms_about_the_last_mouse_position(hand: Front) -> None:
    hand.move(150, 100)
    under = hand.state.viewport.to_image(150, 100)
    hand.wheel(0, -400)  # one doubling in
    assert hand.state.viewport.scale == pytest.approx(4.0)
    assert hand.state.viewport.to_image(150, 100) == pytest.approx(under)
    hand.tool("box")
    hand.drag(150, 100, 250, 300)
    r = hand.editor.frame.iloc[-1]
    assert (r.x0, r.y0) == pytest.approx((75 / 300, 50 / 200))
    assert (r.x1, r.y1) == pytest.approx(((75 + 25) / 300, (50 + 50) / 200))


def test_pan_tool_keys_and_fit(hand: Front) -> None:
    hand.tool("pan")
    hand.drag(300, 200, 250, 150)
    v = hand.state.viewport
    assert (v.ox, v.oy) == pytest.approx((-50, -50))
    assert hand.state.viewport.to_image(300, 200) == pytest.approx((175, 125))
    hand.key("ArrowLeft", ctrl=True)
    assert hand.state.viewport.ox == pytest.approx(10)
    hand.key("ArrowUp")  # nothing selected: arrows pan too
    assert hand.state.viewport.oy == pytest.approx(10)
    hand.key("+")
    hand.key("-")
    hand.key("f")
    assert (hand.state.viewport.scale, hand.state.viewport.ox, hand.state.viewport.oy) == (2.0, 0.0, 0.0)


def test_zoomed_drags_map_through_the_viewport(hand: Front) -> None:
    hand.move(120, 100)
    for _ in range(3):
        hand.wheel(0, -100)
    hand.click(*hand.at(60, 50))
    assert hand.state.selection == "box"
    hand.drag(*hand.at(60, 50), *hand.at(61.5, 49.25))
    r = hand.editor.frame.set_index("id").loc["box"]
    assert r["x0"] == pytest.approx(31.5 / 300) and r["y0"] == pytest.approx(19.25 / 200)


# -- the side panel ----------------------------------------------------------------------------------------------


def widgets_of(front: Front) -> list[Any]:
    out, todo = [], list(front.editor.panel.box.children)
    while todo:
        w = todo.pop(0)
        out.append(w)
        todo += list(getattr(w, "children", ()))
    return out


def find(front: Front, cls: str, **traits: Any) -> Any:
    return next(
        w for w in widgets_of(front) if type(w).__name__ == cls and all(getattr(w, k) == v for k, v in traits.items())
    )


def test_panel_attributes_and_score(hand: Front) -> None:
    hand.click(100, 100)
    find(hand, "Text", placeholder="add attribute: name=value").value = "occluded=true"
    find(hand, "Checkbox", description="occluded").value = False
    find(hand, "Text", placeholder="add attribute: name=value").value = "note=a cat"
    find(hand, "Text", description="score").value = "0.75"
    r = hand.editor.frame.set_index("id").loc["box"]
    assert r["attributes"] == {"occluded": False, "note": "a cat"} and r["score"] == 0.75
    find(hand, "Text", description="score").value = "7"
    assert "[0, 1]" in hand.editor._message.value
    find(hand, "Text", description="note").value = ""
    assert hand.editor.frame.set_index("id").loc["box", "attributes"] == {"occluded": False}


def test_panel_tags_caption_qa_and_status(hand: Front) -> None:
    assets = hand.editor.sink.assets
    find(hand, "Text", placeholder="add tag").value = "night"
    find(hand, "Checkbox", description="night").value = False
    find(hand, "Textarea", placeholder="caption").value = "a cat and a dog"
    find(hand, "Text", placeholder="question").value = "how many cats?"
    find(hand, "Combobox", description="status").value = "Completed"
    frame = hand.editor.frame
    rows = frame[frame["kind"].isin(["tag", "caption", "qa"])].set_index("kind")
    assert rows.loc["tag", "label"] == "night" and not rows.loc["tag", "value"]
    assert rows.loc["caption", "text"] == "a cat and a dog"
    assert rows.loc["qa", "text"] == "how many cats?"
    qa_answer = next(w for w in widgets_of(hand) if type(w).__name__ == "Text" and w.placeholder == "answer")
    qa_answer.value = "one"
    assert frame.set_index("kind").loc["qa", "answer"] == "one"
    assert assets.set_index("asset").loc["a", "status"] == "Completed"
    for _ in range(6):
        hand.key("z", ctrl=True)
    assert pd.isna(assets.set_index("asset").loc["a", "status"])
    assert frame[frame["kind"].isin(["tag", "caption", "qa"])]["deleted"].all()


def test_keypoint_visibility_in_the_panel(hand: Front) -> None:
    hand.key("3")
    hand.tool("keypoints")
    for x in (20, 60, 100):
        hand.click(x, 20)
    hand.tool("select")
    hand.click(60, 20)
    hand.click(60, 20)
    find(hand, "Dropdown", description="point 2").value = 1
    assert hand.editor.frame["visibility"].iloc[-1] == (2, 1, 2)


# -- what goes to the browser ------------------------------------------------------------------------------------


class Wire:
    """Counts the canvas manager's messages (every draw command of every canvas goes through it)."""

    def __init__(self, editor: Any):
        self.messages: list[tuple[Any, list[Any]]] = []
        self.manager = editor.canvas._canvas_manager
        self.manager.send = lambda content, buffers=None: self.messages.append((content, buffers or []))

    def close(self) -> None:
        del self.manager.send

    def commands(self, i: int = -1) -> list[Any]:
        return json.loads(bytes(self.messages[i][1][0]))


@pytest.fixture
def wire(hand: Front):
    w = Wire(hand.editor)
    yield w
    w.close()


def test_a_full_redraw_is_one_message(hand: Front, wire: Wire) -> None:
    hand.editor.replay()
    assert len(wire.messages) == 1
    layers = {c[1][0] for c in wire.commands() if c[0] == 60}  # switchCanvas
    assert len(layers) == 3


def test_a_drag_redraws_the_overlay_only(hand: Front, wire: Wire) -> None:
    overlay = "IPY_MODEL_" + hand.editor.canvas[2].model_id
    hand.move(100, 100)
    hand.down(100, 100)
    hand.move(110, 100)  # the drag starts: the region leaves the regions layer (once)
    wire.messages.clear()
    for x in range(112, 200, 4):
        hand.move(x, 100)
    assert len(wire.messages) == 22
    for i in range(len(wire.messages)):
        assert {c[1][0] for c in wire.commands(i) if c[0] == 60} <= {overlay}
    hand.up(200, 100)


def test_hovering_sends_nothing(hand: Front, wire: Wire) -> None:
    for x in range(0, 600, 10):
        hand.move(x, 100)
    assert wire.messages == []


def test_client_ready_replays_the_layer(hand: Front, wire: Wire) -> None:
    regions = hand.editor.canvas[1]
    regions.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": {"event": "client_ready"}}}, "buffers": []}
    )
    assert len(wire.messages) == 1
    assert {c[1][0] for c in wire.commands() if c[0] == 60} == {"IPY_MODEL_" + regions.model_id}


def test_image_sent_once_then_sharper_crops_when_zoomed(tmp_path: Path) -> None:
    path = big_image(tmp_path / "big.png")
    assets, anns, labels = hand_tables(2400, 1600)
    assets["uri"] = str(path)
    front = open_editor(anns, assets=assets, labels=labels, width=600, height=400)
    editor = front.editor
    base = editor._base
    assert base is not None and editor._picture is not None
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(base.value)).size == (600, 400)  # display size, not 2400 x 1600
    front.move(300, 200)
    front.wheel(0, -400)  # 2x: past the display image's resolution
    assert editor._crop is not None and len(editor._crop_widgets) == 1
    crop = editor._crop
    assert crop.resolution == pytest.approx(0.5)
    front.key("ArrowLeft", ctrl=True)  # a small pan: the crop's margin covers it
    assert editor._crop is crop and len(editor._crop_widgets) == 1
    for _ in range(6):
        front.wheel(0, -400)
    assert editor._crop.resolution == 1.0  # full resolution, and no more
    front.key("f")
    assert editor._crop is None and editor._base is base
    front.key("n")
    assert editor._base is not base  # one image per asset


def test_an_asset_without_image_gets_a_placeholder(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    assert front.editor._picture is None and front.editor._why == "no image"


def test_close_closes_the_canvas(hand: Front) -> None:
    hand.editor.close()
    assert hand.editor.canvas.comm is None


def test_emptying_a_caption_deletes_its_row(anns: pd.DataFrame) -> None:
    front = open_editor(anns, target="a2")
    cap = anns.loc[anns["kind"] == "caption", "id"].item()
    find(front, "Textarea", value="a dog on a sofa").value = "a dog on the sofa"
    assert anns.set_index("id").loc[cap, "text"] == "a dog on the sofa"
    find(front, "Textarea", value="a dog on the sofa").value = ""
    assert anns.set_index("id").loc[cap, "deleted"]
    find(front, "Checkbox", description="daytime").value = False
    changes = anns.annot.diff()
    assert changes.deleted["id"].tolist() == [cap]
    assert changes.changes[["field", "old", "new"]].values.tolist() == [["value", True, False]]


def test_without_assets_the_status_is_read_only(anns: pd.DataFrame) -> None:
    front = open_editor(anns)
    status = find(front, "Combobox", description="status")
    assert status.disabled
    with pytest.raises(ValueError, match="assets="):
        front.state.set_status("Completed")
    assert front.editor.sink.assets is None and front.editor.sink.lookup is not None


def test_a_message_outlives_mouse_moves(hand: Front) -> None:
    hand.key("n")
    hand.key("n")
    assert "last asset" in hand.editor._message.value
    hand.move(10, 10)
    assert "last asset" in hand.editor._message.value
    hand.click(10, 10)
    assert hand.editor._message.value == ""


def test_the_editor_and_the_browser_read_images_through_the_backend(
    samples: ab.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded frame's images come from its backend's ``image_path`` (cached there), not from the uri column."""
    anns = samples.assets("shapes").annot.load()
    asked: list[str] = []
    real = samples.backend.image_path

    def image_path(dataset: str, asset: str) -> str | None:
        asked.append(asset)
        return real(dataset, asset)

    monkeypatch.setattr(samples.backend, "image_path", image_path)
    first = str(anns["asset"].iloc[0])
    front = open_editor(anns, target=first)
    assert asked == [first] and front.editor._picture is not None
    anns.annot.browse()
    assert len(asked) > 1 and set(asked) <= set(anns["asset"])


def test_unpushed_count_on_a_big_frame_counts_on_refresh(anns: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    from annotebook.widgets import editor as editor_module

    monkeypatch.setattr(editor_module, "COUNT_EVERY_EDIT_ROWS", 1)  # any frame is "big"
    front = open_editor(anns)
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))
    assert "no unpushed changes (+1 edit since counted" in front.editor._unpushed.value
    front.editor.run(front.editor._reload)
    assert "1 unpushed change<" in front.editor._unpushed.value


def test_a_label_the_table_lacks_is_marked_in_the_list(samples: ab.Connection) -> None:
    anns = samples.assets("shapes").annot.load()
    editor = anns.annot.edit("shapes_030")  # holds a "sqare" row
    buttons = {b.description.split("  ", 1)[1]: b for b in editor.label_list.buttons.values()}
    assert "sqare *" in buttons and "not in the labels table" in buttons["sqare *"].tooltip
    assert "circle" in buttons
