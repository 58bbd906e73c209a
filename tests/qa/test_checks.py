"""Each QA check alone, on small hand-built frames: what it finds, what it leaves alone, its threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotebook import schema
from annotebook.qa import CHECKS, FINDING_COLUMNS, qa
from annotebook.qa.label_checks import edit_distance
from annotebook.qa.pairs import overlapping_pairs


def box(id: str, label: str, x0: float, y0: float, x1: float, y1: float, asset: str = "a", **kw: Any) -> dict:
    return {"dataset": "d", "asset": asset, "id": id, "label": label, "kind": "box", "x0": x0, "y0": y0,
            "x1": x1, "y1": y1, "rotation": 0.0, **kw}  # fmt: skip


def frame(*rows: dict) -> pd.DataFrame:
    return schema.annotations_frame(list(rows))


ASSETS = schema.assets_frame([{"dataset": "d", "asset": a, "width": 100, "height": 100} for a in ("a", "b", "empty")])


def found(anns: pd.DataFrame, check: str, **kw: Any) -> list[tuple]:
    f = qa(anns, ASSETS if "assets" not in kw else kw.pop("assets"), kw.pop("labels", None), [check], {check: kw})
    return list(zip(f["id"], f["severity"], f["other"].fillna(""), strict=True))


def test_findings_frame_has_the_documented_columns_and_dtypes() -> None:
    f = qa(frame(box("1", "cat", 0.1, 0.1, 0.2, 0.2)))
    assert list(f.columns) == list(FINDING_COLUMNS)
    assert [str(t) for t in f.dtypes] == ["str", "str", "str", "category", "str", "float64", "str"]
    assert list(f["severity"].cat.categories) == ["info", "warning", "error"] and f["severity"].cat.ordered


def test_unknown_check_is_named() -> None:
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        qa(frame(), checks=["nope"])


def test_duplicate_exact_near_and_threshold() -> None:
    anns = frame(
        box("1", "cat", 0.1, 0.1, 0.5, 0.5),
        box("2", "cat", 0.1, 0.1, 0.5, 0.5),  # exact
        box("3", "cat", 0.6, 0.6, 0.9, 0.9),
        box("4", "cat", 0.61, 0.6, 0.9, 0.91),  # near
        box("5", "dog", 0.1, 0.1, 0.5, 0.5),  # another label: not a duplicate
        box("6", "cat", 0.1, 0.1, 0.5, 0.5, asset="b"),  # another asset
    )
    got = found(anns, "duplicate")
    assert sorted((i, o) for i, _, o in got) == [("2", "1"), ("4", "3")]
    assert found(anns, "duplicate", iou=0.99) == [("2", "warning", "1")]
    f = qa(anns, checks=["duplicate"])
    assert f.loc[f["id"] == "2", "detail"].item().startswith("exact duplicate")


def test_ambiguous_overlap_reports_both_rows() -> None:
    anns = frame(
        box("1", "cat", 0.1, 0.1, 0.5, 0.5), box("2", "dog", 0.1, 0.1, 0.5, 0.52), box("3", "cow", 0.5, 0.5, 0.9, 0.9)
    )
    assert sorted((i, o) for i, _, o in found(anns, "ambiguous_overlap")) == [("1", "2"), ("2", "1")]


def test_outline_mismatch_box_off_its_polygon() -> None:
    ring = ((0.2, 0.2, 0.6, 0.2, 0.4, 0.6),)
    anns = frame(
        {"dataset": "d", "asset": "a", "id": "p", "label": "tri", "kind": "polygon", "points": ring},
        box("ok", "tri", 0.2, 0.2, 0.6, 0.6, asset="b"),
        {"dataset": "d", "asset": "b", "id": "q", "label": "tri", "kind": "polygon", "points": ring},
        box("off", "tri", 0.26, 0.2, 0.66, 0.6),
    )
    assert found(anns, "outline_mismatch") == [("off", "warning", "p")]


def test_out_of_bounds_and_degenerate() -> None:
    anns = frame(
        box("out", "cat", 0.5, 0.5, 1.2, 0.9),
        box("flat", "cat", 0.1, 0.1, 0.1, 0.3),
        box("thin", "cat", 0.1, 0.5, 0.4, 0.505),  # half a pixel of 100
        box("fine", "cat", 0.1, 0.6, 0.4, 0.9),
        {
            "dataset": "d",
            "asset": "a",
            "id": "line",
            "label": "cat",
            "kind": "polygon",
            "points": ((0.1, 0.1, 0.2, 0.2, 0.3, 0.3),),
        },
    )
    assert found(anns, "out_of_bounds") == [("out", "error", "")]
    got = {i: s for i, s, _ in found(anns, "degenerate")}
    assert got == {"flat": "error", "line": "error", "thin": "warning"}
    # the contract problem of "out" is reported once, by out_of_bounds, not again by invalid
    assert "out" not in [i for i, _, _ in found(anns, "invalid")]


def test_invalid_reuses_validation() -> None:
    anns = frame(box("bad", "cat", 0.5, 0.1, 0.2, 0.4), box("ok", "cat", 0.1, 0.1, 0.2, 0.2))
    assert found(anns, "invalid") == [("bad", "error", "")]


def test_unknown_and_rare_labels_name_the_nearest() -> None:
    rows = [box(str(k), "square", 0.01 * k, 0.1, 0.01 * k + 0.2, 0.3, asset=f"x{k}") for k in range(10)]
    rows += [box("t", "sqare", 0.1, 0.1, 0.3, 0.3), box("n", "speck", 0.5, 0.5, 0.51, 0.51)]
    rows += [box("w", "widget", 0.1, 0.5, 0.3, 0.7)]
    anns = frame(*rows)
    labels = schema.labels_frame(
        [{"dataset": "d", "name": "square"}, {"dataset": "d", "name": "speck"}, {"dataset": "d", "name": "widget"}]
    )
    f = qa(anns, None, labels, ["unknown_label", "rare_label"])
    unknown = f[f["check"] == "unknown_label"]
    assert unknown["id"].tolist() == ["t"] and "nearest is 'square'" in unknown["detail"].item()
    rare = f[f["check"] == "rare_label"].set_index("id")
    assert rare.loc["t", "severity"] == "warning" and "typo of 'square'" in rare.loc["t", "detail"]
    assert rare.loc["n", "severity"] == "warning" and "tiny" in rare.loc["n", "detail"]  # a speck with its own label
    assert rare.loc["w", "severity"] == "info"  # rare, but neither a typo nor tiny


def test_edit_distance() -> None:
    assert [edit_distance(a, b) for a, b in [("", "ab"), ("kitten", "sitting"), ("same", "same")]] == [2, 3, 0]


def test_empty_assets_from_the_assets_table() -> None:
    f = qa(
        frame(box("1", "cat", 0.1, 0.1, 0.2, 0.2), box("2", "cat", 0.1, 0.1, 0.2, 0.2, asset="b")),
        ASSETS,
        checks=["empty_asset"],
    )
    assert f[["asset", "severity"]].values.tolist() == [["empty", "info"]] and pd.isna(f["id"].item())


def test_size_and_aspect_outliers_per_label() -> None:
    rng = np.random.default_rng(0)
    side = rng.uniform(0.18, 0.22, 20)
    rows = [box(f"c{k}", "cell", 0.1, 0.1, 0.1 + s, 0.1 + s, asset=f"x{k}") for k, s in enumerate(side)]
    rows += [box("small", "cell", 0.1, 0.1, 0.13, 0.13), box("wide", "cell", 0.1, 0.1, 0.9, 0.15)]
    # another label of long thin boxes: its own distribution, so none of them is an outlier
    rows += [box(f"r{k}", "rod", 0.1, 0.1, 0.9, 0.14, asset=f"x{k}") for k in range(10)]
    anns = frame(*rows)
    assert {i for i, _, _ in found(anns, "size_outlier", assets=None)} == {"small"}
    assert {i for i, _, _ in found(anns, "aspect_outlier", assets=None)} == {"wide"}


def test_keypoints_outside_their_instance_box() -> None:
    pts_in = ((0.2, 0.2, 0.3, 0.3, 0.25, 0.35),)
    pts_out = ((0.2, 0.2, 0.3, 0.3, 0.7, 0.35),)
    anns = frame(
        box("inst", "person", 0.15, 0.15, 0.4, 0.4),
        {
            "dataset": "d",
            "asset": "a",
            "id": "k1",
            "label": "pose",
            "kind": "keypoints",
            "points": pts_in,
            "visibility": (2, 2, 2),
        },
        {
            "dataset": "d",
            "asset": "a",
            "id": "k2",
            "label": "pose",
            "kind": "keypoints",
            "points": pts_out,
            "visibility": (2, 2, 2),
        },
        {
            "dataset": "d",
            "asset": "a",
            "id": "k3",
            "label": "pose",
            "kind": "keypoints",
            "points": pts_out,
            "visibility": (2, 2, 0),
        },
    )
    assert found(anns, "keypoints_outside") == [("k2", "warning", "inst")]


def test_grounding_spans_that_disagree() -> None:
    caption = {"dataset": "d", "asset": "a", "id": "cap", "kind": "caption", "text": "a red car"}
    good = {"dataset": "d", "asset": "a", "id": "g1", "kind": "grounding", "text": "red car", "parent": "cap",
            "span_start": 2, "span_end": 9, "x0": 0.1, "y0": 0.1, "x1": 0.2, "y1": 0.2}  # fmt: skip
    bad = {**good, "id": "g2", "span_start": 0, "span_end": 5}
    elsewhere = {**good, "id": "g3", "asset": "b"}
    got = {i for i, _, _ in found(frame(caption, good, bad, elsewhere), "grounding")}
    assert got == {"g2", "g3"}


def test_deleted_rows_are_left_out() -> None:
    anns = frame(box("1", "cat", 0.1, 0.1, 0.5, 0.5), box("2", "cat", 0.1, 0.1, 0.5, 0.5, deleted=True))
    assert qa(anns, checks=["duplicate"]).empty


def test_every_check_runs_alone_on_an_empty_frame() -> None:
    for name in CHECKS:
        assert qa(frame(), ASSETS, checks=[name]).shape[1] == len(FINDING_COLUMNS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 0.9), st.floats(0, 0.9), st.floats(0.01, 0.3), st.floats(0.01, 0.3)),
        max_size=40,
    )
)
def test_sweep_finds_exactly_the_overlapping_pairs(boxes: list[tuple]) -> None:
    """The sort-and-sweep gives the same pairs as comparing all pairs of each asset."""
    g = np.array([b[0] for b in boxes], dtype=int)
    xyxy = np.array([[b[1], b[2], b[1] + b[3], b[2] + b[4]] for b in boxes], dtype=float).reshape(-1, 4)
    i, j, _ = overlapping_pairs(g, xyxy)
    brute = {
        (a, b)
        for a in range(len(boxes))
        for b in range(a + 1, len(boxes))
        if g[a] == g[b]
        and min(xyxy[a, 2], xyxy[b, 2]) > max(xyxy[a, 0], xyxy[b, 0])
        and min(xyxy[a, 3], xyxy[b, 3]) > max(xyxy[a, 1], xyxy[b, 1])
    }
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == brute
