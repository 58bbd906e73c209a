"""The canonical tables a write starts from (`annotebook.formats._tables`): a frame already in normal form is used
as it is, with no copy; any other frame gives exactly what `schema.annotations_frame` makes of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annotebook import schema
from annotebook.formats import load
from annotebook.formats._tables import annotations_table

DATA = Path(__file__).parent / "data"
RING = ((0.0, 0.0, 1.0, 0.0, 1.0, 1.0),)
KEYPOINTS = ((0.1, 0.2, np.nan, np.nan),)

NORMAL = schema.annotations_frame(
    [
        {"dataset": "d", "asset": "a.jpg", "id": "1", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.5},
        {
            "dataset": "d",
            "asset": "a.jpg",
            "id": "2",
            "label": "dog",
            "kind": "polygon",
            "points": [[0, 0, 1, 0, 1, 1]],
        },
        {
            "dataset": "d",
            "asset": "b.jpg",
            "id": "3",
            "label": "person",
            "kind": "keypoints",
            "points": KEYPOINTS,
            "visibility": [2, 0],
            "attributes": {"a": 1, "b": [1, 2.5], "c": {"x": None}},
        },
    ]
).assign(y1=[0.5, 1.0, 0.2])


#: pandas 3 selects columns lazily (copy-on-write) so a frame in normal form is used as it is; pandas 2.3 copies on
#: selection, which costs memory but is as safe: either way a writer's change never reaches the frame it was given
COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def shares_columns(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return all(np.shares_memory(a[c].to_numpy(), b[c].to_numpy()) for c in ("x0", "rotation", "score"))


def same_as_schema(frame: pd.DataFrame) -> pd.DataFrame:
    """``annotations_table(frame)``, checked equal to `schema.annotations_frame` (ids aside where it mints them)."""
    out, expected = annotations_table(frame), schema.annotations_frame(frame)
    minted = frame["id"].isna().to_numpy() if "id" in frame.columns else np.ones(len(frame), dtype=bool)
    pd.testing.assert_frame_equal(out.drop(columns="id"), expected.drop(columns="id"), check_exact=True)
    assert out["id"][~minted].tolist() == expected["id"][~minted].tolist()
    return out


@pytest.mark.parametrize(
    "path",
    [
        "coco/instances.json",
        "coco/person_keypoints.json",
        "voc/cvat",
        "yolo/ultralytics",
        "labelstudio/task_format.json",
        "superannotate/project",
        "vi_jsonl/export",
        "csv_boxes/export",
        "yolo_keras/train",
    ],
)
def test_a_frame_a_reader_made_is_used_without_a_copy(path: str) -> None:
    anns = load(DATA / path).annotations
    assert shares_columns(same_as_schema(anns), anns) is COPY_ON_WRITE


def test_a_normal_frame_with_extra_columns_in_another_order_is_not_copied() -> None:
    frame = NORMAL.assign(extra=[1, 2, 3])[["extra", *reversed(NORMAL.columns)]]
    out = same_as_schema(frame)
    assert list(out.columns) == [*schema.ANNOTATION_COLUMNS, "extra"] and shares_columns(out, frame) is COPY_ON_WRITE
    out.loc[0, "x0"] = 0.9  # a writer's change never reaches the frame it was given
    assert frame.loc[0, "x0"] == 0.1


def _set(column: str, *values: object) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df[column] = pd.Series(list(values), index=df.index, dtype=object)

    return change


def _cell(column: str, row: int, value: object) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df.loc[row, column] = value

    return change


def _retype(column: str, dtype: object) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df[column] = df[column].astype(dtype)  # type: ignore[call-overload]

    return change


def _drop(column: str) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        del df[column]

    return change


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_set("points", None, [[0, 0, 1, 0, 1, 1]], KEYPOINTS), id="points-as-lists"),
        pytest.param(_set("points", np.nan, RING, KEYPOINTS), id="points-nan-not-none"),
        pytest.param(_set("points", None, ((-0.0, 0, 1, 0, 1, 1),), KEYPOINTS), id="extent-would-be-minus-zero"),
        pytest.param(_cell("x1", 1, 0.75), id="stale-extent"),
        pytest.param(_cell("rotation", 0, np.nan), id="box-without-rotation"),
        pytest.param(_cell("id", 0, None), id="id-missing"),
        pytest.param(_set("visibility", None, None, [2, 0]), id="visibility-list"),
        pytest.param(_set("visibility", None, None, (2.0, 0)), id="visibility-float"),
        pytest.param(_set("attributes", {"a": np.int64(1)}, None, None), id="attribute-numpy-int"),
        pytest.param(_set("attributes", {"a": np.True_}, None, None), id="attribute-numpy-bool"),
        pytest.param(_set("attributes", {"a": (1, 2)}, None, None), id="attribute-tuple"),
        pytest.param(_set("attributes", {"a": None, "b": 1}, None, None), id="attribute-none"),
        pytest.param(_set("attributes", {}, None, None), id="attributes-empty"),
        pytest.param(_set("attributes", {1: "x"}, None, None), id="attribute-key-not-text"),
        pytest.param(_set("attributes", np.nan, None, None), id="attributes-nan"),
        pytest.param(_set("attributes", pd.NaT, None, None), id="attributes-nat"),
        pytest.param(_retype("label", pd.StringDtype("python", na_value=np.nan)), id="text-in-python-storage"),
        pytest.param(_retype("x0", "float32"), id="float32"),
        pytest.param(_retype("frame", "float64"), id="float-frame-numbers"),
        pytest.param(_drop("score"), id="column-missing"),
    ],
)
def test_a_frame_not_in_normal_form_is_made_so(change: Callable[[pd.DataFrame], None]) -> None:
    frame = NORMAL.copy()
    change(frame)
    assert not shares_columns(same_as_schema(frame), frame)


@pytest.mark.parametrize("attributes", ["kept as it is", {"a": [float("nan")], "b": {"c": None}}])
def test_cells_the_contract_keeps_as_they_are_need_no_copy(attributes: object) -> None:
    frame = NORMAL.copy()
    frame["attributes"] = pd.Series([attributes, None, None], dtype=object)
    assert shares_columns(same_as_schema(frame), frame) is COPY_ON_WRITE
