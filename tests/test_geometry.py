"""Pixels <-> normalised, areas, extents, rotated corners, IoU and box formats (annotebook/geometry.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotebook import geometry
from annotebook.errors import ValidationError
from annotebook.schema import annotations_frame, assets_frame

NAN = float("nan")
unit = st.floats(0.0, 1.0, allow_nan=False)
size = st.integers(1, 20_000)


def _assets(**sizes: tuple[int, int]) -> pd.DataFrame:
    return assets_frame([{"dataset": "d", "asset": a, "width": w, "height": h} for a, (w, h) in sizes.items()])


def _anns(*rows: dict[str, Any]) -> pd.DataFrame:
    return annotations_frame([{"dataset": "d", "asset": "a", "label": "x", **r} for r in rows])


def _box(x0: float, y0: float, x1: float, y1: float, rotation: float = 0.0, **more: Any) -> dict[str, Any]:
    return {"kind": "box", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "rotation": rotation, **more}


def _mixed() -> pd.DataFrame:
    """One row of each geometry, on a shuffled non-default index."""
    anns = _anns(
        _box(0.0, 0.0, 1.0, 0.5, id="b"),
        {"id": "p", "kind": "polygon", "points": [[0.0, 0.0, 0.5, 0.0, 0.5, 0.5]], "asset": "b"},
        {"id": "k", "kind": "keypoints", "points": [[0.1, 0.2, NAN, NAN]], "visibility": [2, 0]},
        {"id": "c", "kind": "caption", "text": "hello", "asset": "not-in-assets"},
    )
    return anns.set_axis(pd.Index([30, 10, 20, 0]))


# ------------------------------------------------------------------------------------------------------------
# Pixels <-> normalised


def test_to_pixels_multiplies_by_the_asset_size_keeping_order_and_index() -> None:
    anns = _mixed()
    before = anns.copy()
    px = geometry.to_pixels(anns, _assets(a=(640, 480), b=(100, 50)))
    assert px.index.tolist() == [30, 10, 20, 0]
    assert px["id"].tolist() == ["b", "p", "k", "c"]
    assert px.loc[30, ["x0", "y0", "x1", "y1"]].tolist() == [0.0, 0.0, 640.0, 240.0]
    assert px.loc[10, "points"] == ((0.0, 0.0, 50.0, 0.0, 50.0, 25.0),)
    kp = px.loc[20, "points"][0]
    assert kp[:2] == (64.0, 96.0) and math.isnan(kp[2]) and math.isnan(kp[3])
    assert px.loc[0, ["x0", "y0", "x1", "y1"]].isna().all() and px.loc[0, "points"] is None
    assert px.dtypes.equals(anns.dtypes)
    pd.testing.assert_frame_equal(anns, before)  # the input is untouched


def test_to_normalised_is_the_inverse_of_to_pixels() -> None:
    anns = _mixed()
    assets = _assets(a=(640, 480), b=(100, 50))
    back = geometry.to_normalised(geometry.to_pixels(anns, assets), assets)
    pd.testing.assert_frame_equal(back.drop(columns="points"), anns.drop(columns="points"))
    assert back.loc[10, "points"] == anns.loc[10, "points"]


def test_a_missing_asset_size_is_a_validation_error_naming_the_assets() -> None:
    anns = _anns(_box(0.1, 0.1, 0.2, 0.2, id="1", asset="gone"), _box(0.1, 0.1, 0.2, 0.2, id="2", asset="nosize"))
    assets = assets_frame([{"dataset": "d", "asset": "nosize", "width": None, "height": 10}])
    with pytest.raises(ValidationError, match="d/gone, d/nosize") as err:
        geometry.to_pixels(anns, assets)
    problems = err.value.problems
    assert problems is not None
    assert problems[["id", "column"]].values.tolist() == [["1", "asset"], ["2", "asset"]]
    assert "not in the assets table" in problems["problem"].iloc[0]


def test_an_asset_listed_with_two_sizes_has_no_size() -> None:
    anns = _anns(_box(0.1, 0.1, 0.2, 0.2, id="1"), _box(0.1, 0.1, 0.2, 0.2, id="2", asset="b"))
    assets = _assets(a=(10, 10), b=(20, 20))
    assert geometry.to_pixels(anns, pd.concat([assets, assets])).loc[1, "x1"] == 4.0  # listed twice, same size
    twice = pd.concat([assets, _assets(a=(30, 30))], ignore_index=True)
    with pytest.raises(ValidationError, match="1 asset") as err:
        geometry.to_pixels(anns, twice)
    assert err.value.problems is not None
    assert err.value.problems["problem"].tolist() == [
        "asset d/a has no single positive width/height in the assets table"
    ]


def test_rows_without_coordinates_need_no_asset_size() -> None:
    anns = _anns({"id": "t", "kind": "tag", "value": True, "asset": "unknown"})
    assert geometry.to_pixels(anns, _assets()).equals(anns)


@settings(max_examples=200, deadline=None)
@given(
    xs=st.tuples(unit, unit).map(sorted),
    ys=st.tuples(unit, unit).map(sorted),
    ring=st.lists(unit, min_size=6, max_size=12).filter(lambda v: len(v) % 2 == 0),
    width=size,
    height=size,
)
def test_pixel_round_trip_and_whole_image_box(
    xs: list[float], ys: list[float], ring: list[float], width: int, height: int
) -> None:
    anns = _anns(
        _box(xs[0], ys[0], xs[1], ys[1], id="b"),
        _box(0.0, 0.0, 1.0, 1.0, id="whole"),
        {"id": "p", "kind": "polygon", "points": [ring]},
    )
    assets = _assets(a=(width, height))
    px = geometry.to_pixels(anns, assets)
    assert px.loc[1, ["x0", "y0", "x1", "y1"]].tolist() == [0.0, 0.0, float(width), float(height)]
    back = geometry.to_normalised(px, assets)
    cols = ["x0", "y0", "x1", "y1"]
    np.testing.assert_allclose(back[cols].to_numpy(), anns[cols].to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.loc[2, "points"][0], anns.loc[2, "points"][0], rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------------------
# Areas


def test_polygon_area_subtracts_holes() -> None:
    square = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0)
    hole = (0.25, 0.25, 0.75, 0.25, 0.75, 0.75, 0.25, 0.75)
    assert geometry.polygon_area((square,)) == 1.0
    assert geometry.polygon_area((square[::-1],)) == 1.0  # either winding
    assert geometry.polygon_area((square, hole)) == 0.75
    assert geometry.polygon_area(((0.0, 0.0, 1.0, 0.0, 0.0, 1.0),)) == 0.5
    assert math.isnan(geometry.polygon_area(None))
    assert math.isnan(geometry.polygon_area(((0.0, 0.0, 1.0),)))


def test_box_area_ignores_rotation() -> None:
    anns = _anns(_box(0.1, 0.2, 0.5, 0.7), _box(0.1, 0.2, 0.5, 0.7, rotation=33.0))
    np.testing.assert_allclose(geometry.box_area(anns), [0.2, 0.2])


def test_area_per_kind_in_normalised_units_and_pixels() -> None:
    anns = _anns(
        _box(0.0, 0.0, 0.5, 0.5),
        {"kind": "polygon", "points": [[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]},
        {"kind": "polyline", "points": [[0.0, 0.0, 1.0, 1.0]]},
        {"kind": "keypoints", "points": [[0.5, 0.5]], "visibility": [2]},
        {"kind": "grounding", "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0, "parent": "c"},
        {"kind": "tag", "value": True},
        {"kind": "caption", "text": "a"},
    )
    np.testing.assert_array_equal(geometry.area(anns), [0.25, 0.5, 0.0, 0.0, 1.0, NAN, NAN])
    np.testing.assert_array_equal(
        geometry.area(anns, _assets(a=(200, 100))), [5000.0, 10000.0, 0.0, 0.0, 20000.0, NAN, NAN]
    )


# ------------------------------------------------------------------------------------------------------------
# Extents and rotated corners


def test_rotated_corners_turn_clockwise_in_pixel_space() -> None:
    # 40 x 10 px box centred at (100, 50) px on a 200 x 100 image; 90 degrees makes it 10 x 40 px
    corners = geometry.rotated_corners(0.4, 0.45, 0.6, 0.55, 90.0, 200, 100)
    expected = [[0.525, 0.3], [0.525, 0.7], [0.475, 0.7], [0.475, 0.3]]  # top-left went to the top-right
    np.testing.assert_allclose(corners, expected, atol=1e-12)
    np.testing.assert_allclose(
        geometry.rotated_corners(0.1, 0.2, 0.3, 0.4, 0.0, 7, 3),
        [[0.1, 0.2], [0.3, 0.2], [0.3, 0.4], [0.1, 0.4]],
    )


def test_rotated_corners_broadcast() -> None:
    out = geometry.rotated_corners(np.zeros(3), 0.0, 1.0, 1.0, np.array([0.0, 90.0, 180.0]), 10, 10)
    assert out.shape == (3, 4, 2)


def test_extent_of_boxes_rotated_boxes_and_point_kinds() -> None:
    anns = _anns(
        _box(0.4, 0.45, 0.6, 0.55, rotation=90.0, id="r"),
        _box(0.1, 0.2, 0.3, 0.4, id="b"),
        {"id": "k", "kind": "keypoints", "points": [[0.1, 0.9, NAN, NAN, 0.3, 0.2]], "visibility": [2, 0, 1]},
        {"id": "q", "kind": "qa", "text": "why?"},
    ).set_axis(pd.Index(list("wxyz")))
    px = geometry.extent(anns, _assets(a=(200, 100)))
    assert px.index.tolist() == list("wxyz") and px.columns.tolist() == ["x0", "y0", "x1", "y1"]
    np.testing.assert_allclose(px.loc["w"], [0.475, 0.3, 0.525, 0.7], atol=1e-12)
    assert px.loc["x"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert px.loc["y"].tolist() == [0.1, 0.2, 0.3, 0.9]
    assert px.loc["z"].isna().all()
    normalised = geometry.extent(anns)  # no sizes: rotated in normalised space, as if the image were square
    np.testing.assert_allclose(normalised.loc["w"], [0.45, 0.4, 0.55, 0.6], atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# IoU and box formats

box_xyxy = st.tuples(unit, unit, unit, unit).map(
    lambda v: (min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3]))
)


def test_iou_examples() -> None:
    a = _anns(_box(0.0, 0.0, 0.5, 0.5), _box(0.5, 0.5, 1.0, 1.0))
    b = _anns(_box(0.0, 0.0, 0.5, 0.5), _box(0.25, 0.0, 0.75, 0.5), _box(0.0, 0.0, 0.0, 0.0))
    out = geometry.iou(a, b)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, [[1.0, 1 / 3, 0.0], [0.0, 0.0, 0.0]])
    assert geometry.iou(a.iloc[:0], b).shape == (0, 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(box_xyxy, min_size=1, max_size=8), st.lists(box_xyxy, min_size=1, max_size=8))
def test_iou_is_symmetric_and_bounded(a: list[tuple[float, ...]], b: list[tuple[float, ...]]) -> None:
    ab = geometry.iou(np.array(a), np.array(b))
    assert ab.shape == (len(a), len(b))
    np.testing.assert_array_equal(ab, geometry.iou(np.array(b), np.array(a)).T)
    assert ((ab >= 0) & (ab <= 1)).all()
    areas = np.array([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in a])
    np.testing.assert_array_equal(np.diag(geometry.iou(np.array(a), np.array(a)))[areas > 0], 1.0)


def test_box_convert_examples() -> None:
    xyxy = [[0.1, 0.2, 0.5, 0.6]]
    np.testing.assert_allclose(geometry.box_convert(xyxy, "xyxy", "xywh"), [[0.1, 0.2, 0.4, 0.4]])
    np.testing.assert_allclose(geometry.box_convert(xyxy, "xyxy", "cxcywh"), [[0.3, 0.4, 0.4, 0.4]])
    np.testing.assert_allclose(geometry.box_convert([0.3, 0.4, 0.4, 0.4], "cxcywh", "xywh"), [0.1, 0.2, 0.4, 0.4])
    with pytest.raises(ValueError, match="unknown box format"):
        geometry.box_convert(xyxy, "xyxy", "yolo")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(box_xyxy, min_size=1, max_size=5),
    st.sampled_from(geometry.BOX_FORMATS),
    st.sampled_from(geometry.BOX_FORMATS),
)
def test_box_convert_round_trips(boxes: list[tuple[float, ...]], a: geometry.BoxFormat, b: geometry.BoxFormat) -> None:
    start = geometry.box_convert(np.array(boxes), "xyxy", a)
    back = geometry.box_convert(geometry.box_convert(start, a, b), b, a)
    np.testing.assert_allclose(back, start, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(geometry.box_convert(start, a, "xyxy"), boxes, rtol=1e-12, atol=1e-15)
