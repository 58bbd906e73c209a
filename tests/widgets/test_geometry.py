"""The pure geometry of the editor: the viewport transform and region shapes (hit tests, handles, vertices)."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotebook.widgets import drawing, imagery, keys, regions, shapes, sink, state, tools, viewport
from annotebook.widgets.regions import Region, Units
from annotebook.widgets.viewport import MAX_SCALE, Viewport


@pytest.mark.parametrize("module", [drawing, imagery, keys, regions, shapes, sink, state, tools, viewport])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_fit_centres_the_image() -> None:
    v = Viewport(800, 600, 400, 400)
    assert (v.scale, v.ox, v.oy) == (1.5, 100.0, 0.0)
    assert v.to_canvas(0, 0) == (100.0, 0.0) and v.to_canvas(400, 400) == (700.0, 600.0)
    assert v.visible() == (0.0, 0.0, 400.0, 400.0)


@given(
    cx=st.floats(0, 800),
    cy=st.floats(0, 600),
    factor=st.floats(0.1, 10),
    dx=st.floats(-500, 500),
    dy=st.floats(-500, 500),
)
def test_zoom_keeps_the_point_and_transforms_invert(cx: float, cy: float, factor: float, dx: float, dy: float) -> None:
    v = Viewport(800, 600, 4000, 3000).pan(dx, dy)
    z = v.zoom_at(cx, cy, factor)
    assert z.to_image(cx, cy) == pytest.approx(v.to_image(cx, cy), abs=1e-6)
    ix, iy = z.to_image(cx, cy)
    assert z.to_canvas(ix, iy) == pytest.approx((cx, cy), abs=1e-6)


def test_zoom_limits() -> None:
    v = Viewport(800, 600, 400, 300)
    assert v.zoom_at(0, 0, 1e9).scale == MAX_SCALE
    assert v.zoom_at(0, 0, 1e-9).scale == pytest.approx(v.fit_scale / 4)
    assert v.tolerance(6) == 6 / v.scale


def test_units_give_back_exactly_what_they_read() -> None:
    units = Units(3, 7)
    for value in (0.1, 0.7, 1 / 3, 0.123456789):
        assert units.to_norm(units.to_px(value, 0), 0) == value
        assert units.to_norm(units.to_px(value, 1), 1) == value
    assert math.isnan(units.to_norm(math.nan, 0))


def test_hit_tests() -> None:
    box = Region("b", "box", "x", box=(10.0, 10.0, 50.0, 30.0))
    poly = Region(
        "p",
        "polygon",
        "x",
        points=((0.0, 0.0, 100.0, 0.0, 100.0, 100.0, 0.0, 100.0), (40.0, 40.0, 60.0, 40.0, 60.0, 60.0, 40.0, 60.0)),
    )
    line = Region("l", "polyline", "x", points=((0.0, 200.0, 100.0, 200.0),))
    assert shapes.contains(box, 20, 20, 0) and not shapes.contains(box, 60, 20, 5)
    assert shapes.contains(poly, 20, 20, 0) and not shapes.contains(poly, 50, 50, 1)  # the hole
    assert shapes.contains(line, 50, 202, 3) and not shapes.contains(line, 50, 210, 3)
    assert shapes.regions_at([poly, box], 20, 20, 1) == ["b", "p"]
    assert shapes.handle_at(box, 51, 31, 3) == "se" and shapes.handle_at(box, 30, 9, 3) == "n"
    assert shapes.vertex_at(poly, 41, 39, 3) == (1, 0)
    assert shapes.edge_at(poly, 50, 1, 2) == (0, 0, 50.0, 0.0)
    assert shapes.edge_at(poly, 1, 50, 2) == (0, 3, 0.0, 50.0)  # polygons close: the last edge


def test_rotated_box_geometry() -> None:
    box = Region("b", "box", "x", box=(0.0, 0.0, 20.0, 10.0), rotation=90.0)
    corners = shapes.box_corners(box)
    assert corners[0] == pytest.approx((15.0, -5.0))  # top-left turned clockwise about (10, 5)
    assert shapes.contains(box, 10, -4, 0) and not shapes.contains(box, 0, 5, 0)
    bigger = shapes.resized(box, "e", *shapes.handle_points(box)["e"][:1], 25.0)
    assert shapes.box_corners(bigger)[0] == pytest.approx(corners[0])


def test_resize_past_the_opposite_side_flips() -> None:
    box = Region("b", "box", "x", box=(10.0, 10.0, 50.0, 30.0))
    assert shapes.resized(box, "e", 0.0, 0.0).box == (0.0, 10.0, 10.0, 30.0)


def test_vertex_edits() -> None:
    line = Region("l", "polyline", "x", points=((0.0, 0.0, 10.0, 0.0),))
    assert shapes.with_inserted(line, 0, 0, 5.0, 1.0).points == ((0.0, 0.0, 5.0, 1.0, 10.0, 0.0),)
    assert shapes.without_vertex(line, 0, 0) is None
    kp = Region("k", "keypoints", "x", points=((1.0, 1.0, math.nan, math.nan),), visibility=(2, 0))
    placed = shapes.with_vertex(kp, 0, 1, 3.0, 4.0)
    assert placed.visibility == (2, 2) and placed.points == ((1.0, 1.0, 3.0, 4.0),)
    moved = shapes.moved(kp, 1.0, 1.0)
    assert moved.points[0][:2] == (2.0, 2.0) and math.isnan(moved.points[0][2])
