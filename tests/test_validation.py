"""Every contract check of annotebook/validation.py, each naming the exact row id and column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from annotebook.errors import ValidationError
from annotebook.schema import STR, annotations_frame, assets_frame
from annotebook.validation import PROBLEM_COLUMNS, check, validate

NAN = float("nan")


def _valid_rows() -> list[dict[str, Any]]:
    """One valid row of every kind."""
    return [
        {
            "id": "box",
            "kind": "box",
            "label": "cat",
            "x0": 0.1,
            "y0": 0.2,
            "x1": 0.5,
            "y1": 0.6,
            "rotation": 0.0,
        },
        {
            "id": "rot",
            "kind": "box",
            "label": "cat",
            "x0": 0.0,
            "y0": 0.0,
            "x1": 1.0,
            "y1": 1.0,
            "rotation": 45.0,
        },
        {
            "id": "poly",
            "kind": "polygon",
            "label": "tri",
            "points": [[0.1, 0.1, 0.9, 0.1, 0.5, 0.9], [0.4, 0.3, 0.6, 0.3, 0.5, 0.5]],
            "attributes": {"occluded": True},
        },
        {"id": "line", "kind": "polyline", "label": "lane", "points": [[0.0, 0.0, 1.0, 1.0]]},
        {
            "id": "kp",
            "kind": "keypoints",
            "label": "person",
            "points": [[0.2, 0.2, 0.3, 0.3, NAN, NAN]],
            "visibility": [2, 1, 0],
        },
        {"id": "tag", "kind": "tag", "label": "daytime", "value": False},
        {"id": "cap", "kind": "caption", "text": "a dog on a sofa"},
        {
            "id": "gr",
            "kind": "grounding",
            "parent": "cap",
            "text": "dog",
            "span_start": 2,
            "span_end": 5,
            "x0": 0.1,
            "y0": 0.1,
            "x1": 0.4,
            "y1": 0.4,
        },
        {"id": "qa", "kind": "qa", "text": "how many dogs?", "answer": "one", "score": 0.5},
    ]


def _frame(*changes: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The valid frame with each change merged into the row whose id it names (or appended when new)."""
    records = {r["id"]: r for r in (rows if rows is not None else _valid_rows())}
    for change in changes:
        records[change["id"]] = {**records.get(change["id"], {}), **change}
    return annotations_frame([{"dataset": "d", "asset": "a", **r} for r in records.values()])


def _assets() -> pd.DataFrame:
    return assets_frame([{"dataset": "d", "asset": "a", "width": 640, "height": 480}])


def _found(problems: pd.DataFrame) -> list[tuple[Any, str]]:
    return [(None if pd.isna(i) else i, c) for i, c in zip(problems["id"], problems["column"], strict=True)]


def test_a_valid_frame_of_every_kind_has_no_problems() -> None:
    problems = validate(_frame(), _assets())
    assert problems.empty
    assert problems.columns.tolist() == list(PROBLEM_COLUMNS)
    assert all(problems[c].dtype == STR for c in PROBLEM_COLUMNS)
    check(_frame(), _assets())


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        # kind and label
        ({"id": "box", "kind": "rectangle"}, "kind", "unknown kind 'rectangle'"),
        ({"id": "box", "kind": None}, "kind", "kind is missing"),
        ({"id": "box", "label": None}, "label", "label is missing"),
        ({"id": "poly", "label": ""}, "label", "label is missing"),
        ({"id": "tag", "label": None}, "label", "label is missing"),
        # box and grounding geometry
        ({"id": "box", "x0": NAN}, "x0", "x0 is missing"),
        ({"id": "box", "y1": 1.25}, "y1", "y1 = 1.25 is outside [0, 1]"),
        ({"id": "box", "y0": -0.5}, "y0", "y0 = -0.5 is outside [0, 1]"),
        ({"id": "box", "x0": 0.7}, "x0", "x0 = 0.7 > x1 = 0.5"),
        ({"id": "box", "y0": 0.7}, "y0", "y0 = 0.7 > y1 = 0.6"),
        ({"id": "gr", "x1": NAN}, "x1", "x1 is missing"),
        ({"id": "gr", "x0": -0.25}, "x0", "x0 = -0.25 is outside"),
        ({"id": "gr", "y0": 0.5}, "y0", "y0 = 0.5 > y1 = 0.4"),
        # polygon
        ({"id": "poly", "points": None}, "points", "points is missing"),
        ({"id": "poly", "points": [[0.1, 0.1, 0.9, 0.1]]}, "points", "ring 1 has 2 vertices"),
        (
            {"id": "poly", "points": [[0.1, 0.1, 0.9, 0.1, 0.5, 0.9, 0.5]]},
            "points",
            "odd number of coordinates",
        ),
        ({"id": "poly", "points": [[0.1, 0.1, 0.9, 0.1, 1.5, 0.9]]}, "points", "outside [0, 1], first 1.5"),
        ({"id": "poly", "points": [[0.1, 0.1, 0.9, NAN, 0.5, 0.9]]}, "points", "1 coordinate NaN"),
        # polyline
        (
            {"id": "line", "points": [[0.0, 0.0]]},
            "points",
            "points has 1 vertex; a polyline needs at least 2",
        ),
        # keypoints
        ({"id": "kp", "visibility": [2, 1]}, "visibility", "visibility has 2 values for 3 points"),
        ({"id": "kp", "visibility": None}, "visibility", "visibility must be a tuple"),
        ({"id": "kp", "visibility": [2, 3, 0]}, "visibility", "not 3"),
        ({"id": "kp", "points": [[0.2, 0.2, 1.3, 0.3, NAN, NAN]]}, "points", "first point 2 at (1.3, 0.3)"),
        # tag, caption, qa
        ({"id": "tag", "value": None}, "value", "value is missing"),
        ({"id": "cap", "text": None}, "text", "a caption row holds the caption"),
        ({"id": "qa", "text": None}, "text", "a qa row holds the question"),
        # grounding parent, span and phrase
        ({"id": "gr", "parent": None}, "parent", "parent is missing"),
        ({"id": "gr", "parent": "box"}, "parent", "parent 'box' is a box row, not a caption"),
        ({"id": "gr", "span_start": None}, "span_start", "span_start is missing"),
        ({"id": "gr", "span_end": None}, "span_end", "span_end is missing"),
        ({"id": "gr", "span_start": 6, "span_end": 5}, "span_start", "[6, 5) is not a span"),
        ({"id": "gr", "span_start": 12, "span_end": 16}, "span_end", "span_end 16 is past the caption's 15"),
        ({"id": "gr", "text": "cat"}, "text", "text[2:5] is 'dog', not this row's text 'cat'"),
        ({"id": "gr", "span_end": 4}, "text", "text[2:4] is 'do'"),
        # any row
        ({"id": "qa", "score": 1.5}, "score", "score = 1.5 is outside [0, 1]"),
        ({"id": "box", "score": -0.1}, "score", "score = -0.1 is outside [0, 1]"),
        ({"id": "box", "attributes": "occluded"}, "attributes", "must be a dict or None, not str"),
        ({"id": "box", "asset": None}, "asset", "asset is missing"),
    ],
)
def test_each_problem_names_its_row_and_column(change: dict[str, Any], column: str, words: str) -> None:
    problems = validate(_frame(change))
    assert _found(problems) == [(change["id"], column)]
    assert words in problems["problem"].iloc[0]


@pytest.mark.parametrize("rotation", [NAN, float("inf")])
def test_a_box_needs_a_finite_rotation(rotation: float) -> None:
    anns = _frame()
    anns.loc[anns.id == "box", "rotation"] = rotation  # annotations_frame fills 0 for a missing one
    anns.loc[anns.id == "gr", "rotation"] = NAN  # a grounding has no rotation
    problems = validate(anns)
    assert _found(problems) == [("box", "rotation")]
    assert problems["problem"].iloc[0] == f"rotation is {rotation!r}; a box needs a finite rotation (0 for none)"


def test_points_that_are_not_parts_are_named() -> None:
    anns = _frame()
    anns["points"] = anns["points"].astype(object)
    anns.loc[anns.id == "poly", "points"] = pd.Series([(0.1, 0.1, 0.9, 0.1, 0.5, 0.9)], index=[2], dtype=object)
    problems = validate(anns)
    assert _found(problems) == [("poly", "points")]
    assert "tuple of parts" in problems["problem"].iloc[0]


def test_an_unlabelled_keypoint_may_lie_anywhere() -> None:
    assert validate(_frame({"id": "kp", "points": [[0.2, 0.2, 0.3, 0.3, 5.0, 5.0]]})).empty


def test_a_grounding_whose_caption_is_not_in_the_frame_is_not_checked_against_it() -> None:
    anns = _frame({"id": "gr", "parent": "elsewhere", "span_start": 40, "span_end": 50})
    assert validate(anns).empty
    assert validate(_frame(rows=[r for r in _valid_rows() if r["id"] != "cap"])).empty


def test_a_grounding_names_a_caption_of_its_own_dataset() -> None:
    anns = _frame().assign(dataset="d")
    anns.loc[anns.id == "cap", "dataset"] = "other"
    problems = validate(anns)
    assert _found(problems) == [(None, "dataset")]  # the caption is not in "d": nothing to check the span against


def test_unknown_assets_only_when_the_assets_table_is_given() -> None:
    anns = _frame({"id": "box", "asset": "gone"})
    assert validate(anns).empty
    problems = validate(anns, _assets())
    assert _found(problems) == [("box", "asset")]
    assert problems["problem"].iloc[0] == "asset d/gone is not in the assets table"


def test_a_missing_or_duplicate_id_is_named() -> None:
    anns = _frame({"id": "box2", "kind": "box", "label": "cat", "x0": 0.0, "y0": 0.0, "x1": 0.1, "y1": 0.1})
    anns = anns.assign(rotation=anns["rotation"].fillna(0.0)).set_axis(pd.Index([f"r{i}" for i in range(len(anns))]))
    anns.loc["r0", "id"] = np.nan
    anns.loc["r9", "id"] = "poly"
    problems = validate(anns)
    assert _found(problems) == [(None, "id"), ("poly", "id")]
    assert "index label 'r0'" in problems["problem"].iloc[0]
    assert "used by 2 rows of dataset 'd'" in problems["problem"].iloc[1]


def test_the_same_id_in_two_datasets_is_not_a_duplicate_but_two_datasets_are_named() -> None:
    anns = pd.concat([_frame(), _frame().assign(dataset="e")], ignore_index=True)
    problems = validate(anns)
    assert _found(problems) == [(None, "dataset")]
    assert "2 datasets" in problems["problem"].iloc[0]


def test_deleted_rows_are_checked_for_identity_but_not_content() -> None:
    anns = _frame({"id": "box", "x0": 3.0, "label": None, "deleted": True}, {"id": "rot", "kind": "nonsense"})
    anns.loc[anns.id == "rot", ["id", "deleted"]] = ["box", True]
    assert _found(validate(anns)) == [("box", "id")]


def test_missing_contract_columns_are_named_one_by_one() -> None:
    problems = validate(_frame().drop(columns=["score", "load"]))
    assert _found(problems) == [(None, "score"), (None, "load")]
    assert problems["problem"].tolist() == ["column 'score' is missing", "column 'load' is missing"]


def test_merge_suffixes_standing_in_for_a_column_are_named_with_the_fix() -> None:
    assets = _assets().assign(status="Completed")
    merged = _frame().merge(assets, on=["dataset", "asset"])
    problems = validate(merged)
    assert _found(problems) == [(None, "status"), (None, "load")]
    assert "'status_x', 'status_y'" in problems["problem"].iloc[0]
    assert 'suffixes=("", "_asset")' in problems["problem"].iloc[0]
    assert "anns.annot.merge_assets(assets)" in problems["problem"].iloc[0]
    assert validate(_frame().merge(assets, on=["dataset", "asset"], suffixes=("", "_asset"))).empty


def test_every_problem_is_reported_at_once_in_row_order() -> None:
    anns = _frame(
        {"id": "box", "x0": NAN, "y1": 2.0, "label": None},
        {"id": "poly", "points": [[0.1, 0.1, 0.2, 0.2], [NAN, 0.1, 0.2, 0.2, 0.3, 0.3]]},
        {"id": "kp", "visibility": [2, 7]},
        {"id": "qa", "score": 3.0},
    )
    problems = validate(anns.drop(columns="split"))
    assert _found(problems) == [
        (None, "split"),
        ("box", "label"),
        ("box", "x0"),
        ("box", "y1"),
        ("poly", "points"),
        ("poly", "points"),
        ("kp", "visibility"),
        ("kp", "visibility"),
        ("qa", "score"),
    ]


def test_any_index_works() -> None:
    anns = _frame({"id": "box", "x0": 0.9})
    shuffled = anns.set_axis(pd.Index([7, 3, 3, 1, 0, 2, 5, 6, 4])).iloc[::-1]
    assert _found(validate(shuffled)) == [("box", "x0")]


def test_check_raises_with_the_problems() -> None:
    with pytest.raises(ValidationError, match="2 problems in the frame") as err:
        check(_frame({"id": "box", "x0": 0.9}, {"id": "qa", "score": 2.0}))
    problems = err.value.problems
    assert problems is not None
    assert _found(problems) == [("box", "x0"), ("qa", "score")]


def test_a_200000_row_box_frame_validates() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    x0, y0 = rng.random(n) * 0.5, rng.random(n) * 0.5
    anns = annotations_frame(
        pd.DataFrame(
            {
                "dataset": "d",
                "asset": [f"a{i % 100}" for i in range(n)],
                "id": [str(i) for i in range(n)],
                "label": "cat",
                "kind": "box",
                "x0": x0,
                "y0": y0,
                "x1": x0 + 0.1,
                "y1": y0 + 0.1,
                "rotation": 0.0,
            }
        )
    )
    assets = assets_frame([{"dataset": "d", "asset": f"a{i}", "width": 64, "height": 48} for i in range(100)])
    assert validate(anns, assets).empty
    anns.loc[anns.index[::1000], "x1"] = 1.5
    assert len(validate(anns, assets)) == 200
