"""Every tool, driven by front-end messages replayed into the canvas comm; asserted on the DataFrame.

The ``hand`` editor shows a 300 x 200 image on a 600 x 400 canvas: canvas = 2 x image pixels, no offset.
"""

from __future__ import annotations

import math

import pytest

from .conftest import Front


def row(front: Front, id: str) -> dict:
    frame = front.editor.frame
    return frame[frame["id"] == id].iloc[0].to_dict()


def new_rows(front: Front):
    frame = front.editor.frame
    return frame[frame["id"].str.startswith("new-") & ~frame["deleted"]]


# -- box ---------------------------------------------------------------------------------------------------------


def test_box_press_drag_release(hand: Front) -> None:
    hand.tool("box")
    hand.drag(400, 300, 100, 50)  # drawn up-left: the box is normalised
    added = new_rows(hand)
    assert len(added) == 1
    r = added.iloc[0]
    assert (r.kind, r.label, r.asset, r.dataset) == ("box", "cat", "a", "h")
    assert (r.x0, r.y0, r.x1, r.y1) == (50 / 300, 25 / 200, 200 / 300, 150 / 200)
    assert r.rotation == 0.0 and not r.deleted


def test_a_click_with_the_box_tool_draws_nothing(hand: Front) -> None:
    hand.tool("box")
    hand.click(100, 100)
    hand.move(250, 150)
    hand.click(300, 200)  # two clicks are not a box: only a drag is
    assert new_rows(hand).empty and hand.state.gesture is None


def test_a_right_click_never_leaves_a_box_behind(hand: Front) -> None:
    """A right click: a press whose release the context menu takes; the menu's leave comes from inside."""
    hand.tool("box")
    hand.move(100, 100)
    hand.down(100, 100)
    hand.send("mouse_out", x=100, y=100)  # the menu opened under the pointer
    assert hand.state.gesture is None
    hand.key("Escape")
    hand.click(300, 200)  # a later click: no box
    hand.down(100, 100)  # a press that lost its release, then a new press: the stale one is dropped
    hand.drag(200, 100, 260, 160)
    rows = new_rows(hand)
    assert len(rows) == 1 and rows.iloc[0]["x0"] == 100 / 300


def test_box_keeps_full_float_precision(hand: Front) -> None:
    hand.tool("box")
    hand.drag(100.3, 50.7, 333.1, 222.9)
    r = new_rows(hand).iloc[0]
    assert r.x0 == 100.3 / 2 / 300 and r.y1 == 222.9 / 2 / 200  # no rounding to canvas or image pixels


def test_degenerate_box_is_refused(hand: Front) -> None:
    hand.tool("box")
    hand.drag(100, 100, 120, 100)  # a zero-height box
    assert new_rows(hand).empty
    assert "width and a height" in hand.editor._message.value


def test_mouse_up_without_down_is_ignored(hand: Front) -> None:
    hand.tool("box")
    hand.up(10, 10)
    assert new_rows(hand).empty and hand.state.gesture is None


# -- polygon, polyline -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["first vertex", "double click", "enter"])
def test_polygon_closes(hand: Front, how: str) -> None:
    hand.tool("polygon")
    for x, y in [(20, 20), (120, 20), (120, 120)]:
        hand.click(x, y)
    if how == "first vertex":
        hand.click(22, 21)  # near the first vertex
    elif how == "double click":
        hand.click(20, 120)
        hand.clock.tick(0.1)
        hand.down(21, 120)
        hand.up(21, 120)
    else:
        hand.click(20, 120)
        hand.key("Enter")
    r = new_rows(hand).iloc[0]
    n = 3 if how == "first vertex" else 4
    assert r.kind == "polygon" and len(r.points) == 1 and len(r.points[0]) == 2 * n
    assert r.points[0][:6] == (10 / 300, 10 / 200, 60 / 300, 10 / 200, 60 / 300, 60 / 200)
    assert (r.x0, r.y0, r.x1, r.y1) == (10 / 300, 10 / 200, 60 / 300, 60 / 200)


def test_polygon_needs_three_points_backspace_and_escape(hand: Front) -> None:
    hand.tool("polygon")
    hand.click(20, 20)
    hand.click(120, 20)
    hand.key("Enter")
    assert new_rows(hand).empty and "at least 3" in hand.editor._message.value
    hand.key("Backspace")
    assert hand.state.gesture.points == [(10.0, 10.0)]
    hand.key("Escape")
    assert hand.state.gesture is None and new_rows(hand).empty


def test_polyline_enter_finishes(hand: Front) -> None:
    hand.tool("polyline")
    for x, y in [(20, 20), (120, 20), (120, 120)]:
        hand.click(x, y)
    hand.key("Enter")
    r = new_rows(hand).iloc[0]
    assert r.kind == "polyline" and r.points == ((10 / 300, 10 / 200, 60 / 300, 10 / 200, 60 / 300, 60 / 200),)


def test_polyline_double_click_finishes(hand: Front) -> None:
    hand.tool("polyline")
    hand.click(20, 20)
    hand.click(120, 20)
    hand.clock.tick(0.2)
    hand.down(120, 21)
    hand.up(120, 21)
    assert new_rows(hand).iloc[0].points == ((10 / 300, 10 / 200, 60 / 300, 10 / 200),)


# -- keypoints -------------------------------------------------------------------------------------------------


def test_keypoints_follow_the_labels_names(hand: Front) -> None:
    hand.key("3")  # "star": keypoints a, b, c
    assert hand.state.label == "star"
    hand.tool("keypoints")
    hand.click(20, 20)
    hand.move(50, 50)
    assert hand.state.gesture.names == ("a", "b", "c")
    hand.click(60, 20)
    assert new_rows(hand).empty
    hand.click(100, 20)  # the third name: done
    r = new_rows(hand).iloc[0]
    assert r.kind == "keypoints" and r.label == "star" and r.visibility == (2, 2, 2)
    assert r.points == ((10 / 300, 10 / 200, 30 / 300, 10 / 200, 50 / 300, 10 / 200),)


def test_keypoints_enter_leaves_the_rest_unlabelled(hand: Front) -> None:
    hand.key("3")
    hand.tool("keypoints")
    hand.click(20, 20)
    hand.key("Enter")
    r = new_rows(hand).iloc[0]
    assert r.visibility == (2, 0, 0)
    assert r.points[0][:2] == (10 / 300, 10 / 200) and all(math.isnan(v) for v in r.points[0][2:])


def test_keypoint_without_names_is_one_point(hand: Front) -> None:
    hand.tool("keypoints")  # label "cat": no keypoint names
    hand.click(30, 40)
    r = new_rows(hand).iloc[0]
    assert r.points == ((15 / 300, 20 / 200),) and r.visibility == (2,)


# -- select: click, move, handles, vertices --------------------------------------------------------------------


def test_click_selects_topmost_and_again_the_one_beneath(hand: Front) -> None:
    hand.tool("box")
    hand.drag(80, 60, 140, 120)  # a new box over the "box" region: topmost
    new_id = new_rows(hand).iloc[0].id
    hand.tool("select")
    hand.click(10, 10)
    assert hand.state.selection is None
    hand.click(100, 100)
    assert hand.state.selection == new_id
    hand.click(100, 100)
    assert hand.state.selection == "box"
    hand.click(590, 10)  # nothing there
    assert hand.state.selection is None


def test_drag_moves_a_region_as_one_edit(hand: Front) -> None:
    before = row(hand, "box")
    hand.drag(100, 100, 130, 80, steps=5)
    after = row(hand, "box")
    assert after["x0"] == pytest.approx(before["x0"] + 15 / 300)
    assert after["y1"] == pytest.approx(before["y1"] - 10 / 200)
    assert len(hand.state.undo_stack) == 1
    changed = sorted(k for k in before if str(before[k]) != str(after[k]))
    assert changed == ["x0", "x1", "y0", "y1"]


@pytest.mark.parametrize(
    ("handle", "to", "expect"),
    [
        ("nw", (40, 30), (20, 15, 90, 80)),
        ("n", (999, 30), (30, 15, 90, 80)),
        ("ne", (200, 30), (30, 15, 100, 80)),
        ("e", (200, 999), (30, 20, 100, 80)),
        ("se", (200, 170), (30, 20, 100, 85)),
        ("s", (999, 170), (30, 20, 90, 85)),
        ("sw", (40, 170), (20, 20, 90, 85)),
        ("w", (40, 999), (20, 20, 90, 80)),
    ],
)
def test_eight_handles_resize_a_box(hand: Front, handle: str, to: tuple[float, float], expect: tuple) -> None:
    hand.click(100, 100)  # select "box": pixels (30, 20)-(90, 80), canvas (60, 40)-(180, 160)
    points = {"nw": (60, 40), "n": (120, 40), "ne": (180, 40), "e": (180, 100), "se": (180, 160), "s": (120, 160),
              "sw": (60, 160), "w": (60, 100)}  # fmt: skip
    hand.drag(*points[handle], *to)
    r = row(hand, "box")
    got = (r["x0"] * 300, r["y0"] * 200, r["x1"] * 300, r["y1"] * 200)
    assert got == pytest.approx(expect)
    assert hand.state.undo_stack[-1].before.box != hand.state.undo_stack[-1].after.box


def test_resize_keeps_untouched_edges_bit_exact(hand: Front) -> None:
    original = row(hand, "box")
    hand.click(100, 100)
    hand.drag(180, 160, 200, 170)  # se handle
    r = row(hand, "box")
    assert (r["x0"], r["y0"]) == (original["x0"], original["y0"])  # 0.1 stays 0.1, not (0.1 * 300) / 300


def test_rotated_box_resize_keeps_the_opposite_corner(hand: Front) -> None:
    from annotebook.widgets import shapes

    frame = hand.editor.frame
    frame.loc[frame["id"] == "box", "rotation"] = 30.0
    hand.state.open("a")
    box = hand.state.regions["box"]
    before = shapes.box_corners(box)
    hand.click(*hand.at(*shapes.box_corners(box)[0]))  # a click on the rotated box selects it
    se = shapes.handle_points(box)["se"]
    hand.drag(*hand.at(*se), *hand.at(se[0] + 10, se[1] + 5))
    after = shapes.box_corners(hand.state.regions["box"])
    assert after[0] == pytest.approx(before[0])  # the nw corner did not move
    assert row(hand, "box")["rotation"] == 30.0


def test_drag_a_polygon_vertex(hand: Front) -> None:
    hand.click(400, 300)  # select "poly"
    hand.drag(300, 200, 280, 190)  # its first vertex, pixels (150, 100)
    pts = row(hand, "poly")["points"][0]
    assert pts[:2] == (140 / 300, 95 / 200)
    assert pts[2:] == (0.9, 0.5, 0.9, 0.9, 0.5, 0.9)  # the other vertices bit-exact
    assert hand.state.vertex == (0, 0)


def test_a_click_on_an_edge_changes_nothing(hand: Front) -> None:
    hand.click(400, 300)
    hand.click(420, 200)  # on the top edge: a plain click inserts no vertex
    assert len(row(hand, "poly")["points"][0]) == 8 and not hand.state.undo_stack
    assert hand.state.selection == "poly"


def test_drag_from_an_edge_inserts_and_drags(hand: Front) -> None:
    hand.click(400, 300)
    hand.drag(540, 280, 580, 280)  # right edge, dragged outwards
    pts = row(hand, "poly")["points"][0]
    assert pts[2:4] == (0.9, 0.5) and pts[4:6] == (290 / 300, 140 / 200) and pts[6:8] == (0.9, 0.9)


def test_polyline_vertex_and_edge(hand: Front) -> None:
    hand.click(120, 350)  # on the polyline (60, 320)-(180, 380)
    assert hand.state.selection == "line"
    hand.drag(180, 380, 190, 390)
    assert row(hand, "line")["points"][0][2:] == (95 / 300, 195 / 200)


def test_delete_key_removes_the_selected_vertex_then_the_region(hand: Front) -> None:
    hand.click(400, 300)
    hand.click(540, 360)  # a vertex click selects the vertex
    assert hand.state.vertex == (0, 2)
    hand.key("Delete")
    assert len(row(hand, "poly")["points"][0]) == 6
    hand.click(300, 200)
    hand.key("Delete")  # a triangle keeps 3 vertices
    assert len(row(hand, "poly")["points"][0]) == 6 and "at least 3" in hand.editor._message.value
    hand.key("Escape")
    hand.click(400, 250)
    hand.key("Backspace")  # no vertex selected: the region
    assert row(hand, "poly")["deleted"]


def test_keypoint_vertex_delete_unlabels_it(hand: Front) -> None:
    hand.key("3")
    hand.tool("keypoints")
    for x in (20, 60, 100):
        hand.click(x, 20)
    hand.tool("select")
    hand.click(60, 20)
    hand.click(60, 20)  # the vertex of the selected keypoints
    hand.key("Delete")
    r = new_rows(hand).iloc[0]
    assert r.visibility == (2, 0, 2) and math.isnan(r.points[0][2])


def test_mouse_out_ends_a_drag(hand: Front) -> None:
    hand.move(100, 100)
    hand.down(100, 100)
    hand.move(120, 100)
    hand.move(140, 100)
    hand.move(595, 100)
    hand.send("mouse_out", x=598, y=100)  # out across the canvas's right edge
    assert hand.state.gesture is None and hand.state.hidden is None
    assert row(hand, "box")["x0"] == pytest.approx(0.8)  # moved right up to the image edge


def test_ctrl_z_while_drawing_takes_back_the_last_point(hand: Front) -> None:
    hand.click(100, 100)
    hand.key("ArrowRight")  # an edit before the drawing
    hand.tool("polygon")
    for x, y in [(20, 20), (120, 20), (120, 120)]:
        hand.click(x, y)
    hand.key("z", ctrl=True)
    assert len(hand.state.gesture.points) == 2
    assert row(hand, "box")["x0"] != 0.1  # the nudge is still there


def test_a_drag_to_the_image_edge_stores_exactly_zero(hand: Front) -> None:
    hand.tool("box")
    hand.drag(-50, -50, 100, 100)
    r = new_rows(hand).iloc[0]
    assert (r.x0, r.y0) == (0.0, 0.0)
    hand.tool("select")
    hand.zoom_to = None
    hand.drag(50, 50, -10.000000001, -10.000000001)
    moved = hand.editor.frame.set_index("id").loc[r["id"]]
    assert moved["x0"] == 0.0 and moved["y0"] == 0.0


def test_drawing_and_moving_stay_on_the_image(hand: Front) -> None:
    hand.tool("box")
    hand.drag(500, 300, 700, 500)  # past the image's bottom-right corner (canvas 600 x 400)
    r = new_rows(hand).iloc[0]
    assert (r.x1, r.y1) == (1.0, 1.0) and r.x0 == 250 / 300
    hand.tool("select")
    hand.drag(100, 100, -300, -300)  # "box" dragged far up-left: it stops at the edges
    box = hand.editor.frame.set_index("id").loc["box"]
    assert (box["x0"], box["y0"]) == (0.0, 0.0) and box["x1"] == pytest.approx(0.2)
    assert hand.editor.frame.annot.validate().empty


def test_a_key_during_a_drag_drops_the_drag(hand: Front) -> None:
    hand.move(100, 100)
    hand.down(100, 100)
    hand.move(130, 100)
    hand.key("Delete")  # deletes the selection ("box", picked by the press) and ends the drag
    hand.up(150, 100)
    box = hand.editor.frame.set_index("id").loc["box"]
    assert box["deleted"] and box["x0"] == 0.1
    assert hand.state.hidden is None and hand.state.gesture is None


def test_select_drag_on_empty_space_pans_and_keeps_the_selection(hand: Front) -> None:
    hand.click(100, 100)
    hand.drag(590, 10, 560, 30)
    assert (hand.state.viewport.ox, hand.state.viewport.oy) == (-30.0, 20.0)
    assert hand.state.selection == "box" and hand.state.gesture is None
