"""Label Studio JSON: the docs' task example, rotation about the top-left corner, round trips, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables, find_format
from annotebook.formats._kept import FieldNotKept
from annotebook.formats.labelstudio import (
    box_from_ls,
    box_to_ls,
    label_config,
    labelstudio_to_tables,
    load_labelstudio,
    save_labelstudio,
    tables_to_labelstudio,
)

DATA = Path(__file__).parent / "data" / "labelstudio"
GEOM = ["x0", "y0", "x1", "y1", "rotation"]

#: label-studio-converter 0.0.59, tests/test_export_yolo.py: LS rectangles on a 597 x 768 image and the normalised
#: corners (top-left, top-right, bottom-right, bottom-left) its convert_annotation_to_yolo_obb must give
CONVERTER_CASES = [
    (
        (11.552474514692952, 80.83731446979957, 19.0454700246567, 6.629026203797071, 328.33240366032836),
        [
            (0.11552474514692952, 0.8083731446979957),
            (0.27762229351938456, 0.7306489626734597),
            (0.3223923846720476, 0.7870691452334665),
            (0.16029483629959254, 0.8647933272580025),
        ],
    ),
    (
        (32.94000909818857, 77.3890916826675, 8.108689897439085, 7.490685233798283, 345.3894551068102),
        [
            (0.32940009098188566, 0.7738909168266751),
            (0.4078648636432219, 0.7579911558782483),
            (0.43217208011269465, 0.830475727539231),
            (0.35370730745135837, 0.8463754884876579),
        ],
    ),
    (
        (16.814074232397514, 57.43596079245723, 18.218991060518677, 6.298347014251024, 43.67748910099408),
        [
            (0.16814074232397513, 0.5743596079245723),
            (0.29990750552628187, 0.6721650332758418),
            (0.24395249444460837, 0.7177171056620688),
            (0.11218573124230163, 0.6199116803107994),
        ],
    ),
]


def _corners(x0: float, y0: float, x1: float, y1: float, rotation: float, size: tuple[int, int]) -> list[tuple]:
    """The contract's box, turned clockwise about its centre in pixels: normalised TL, TR, BR, BL."""
    w, h = size
    cx, cy, hw, hh = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h, (x1 - x0) * w / 2, (y1 - y0) * h / 2
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    out = []
    for dx, dy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)):
        out.append(((cx + dx * c - dy * s) / w, (cy + dx * s + dy * c) / h))
    return out


@pytest.mark.parametrize(("ls", "corners"), CONVERTER_CASES)
def test_rotation_about_the_top_left_matches_label_studio_converter(ls: tuple, corners: list[tuple]) -> None:
    """LS rotates about the top-left corner; the contract about the centre: the same four corners either way."""
    size = (597, 768)
    box = box_from_ls(*ls, size)
    got = _corners(*box, ls[4], size)
    for (gx, gy), (wx, wy) in zip(got, corners, strict=True):
        assert math.isclose(gx, wx, abs_tol=1e-12) and math.isclose(gy, wy, abs_tol=1e-12)
    back = box_to_ls(*box, ls[4], size)
    assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(back, ls[:4], strict=True))


def test_docs_task_example_golden() -> None:
    """The "Label Studio JSON format of annotated tasks" example: one annotation, two predictions sharing an id."""
    anns = ab.read(DATA / "task_format.json")
    assert find_format(DATA / "task_format.json").name == "labelstudio"
    assert anns["id"].tolist() == ["Dx_aB91ISN", "t5sp3TyXPo", "t5sp3TyXPo#1"]
    assert anns["author"].tolist() == ["10", "model:model 1", "model:model 2"]
    first = anns.iloc[0]
    assert first["asset"] == "https://example.com/opensource/label-studio/1.jpg"
    assert first["label"] == "Moonwalker"
    want = [0.508, 0.05869797225186766, 0.508 + 0.124, 0.05869797225186766 + 0.10458911419423693]
    assert all(math.isclose(first[c], w, abs_tol=1e-12) for c, w in zip(GEOM, want, strict=False))
    assert first["attributes"] == {"ls_from_name": "tag", "ls_to_name": "img"}
    assets = anns.annot.assets
    assert assets[["name", "uri"]].values.tolist() == [["1.jpg", "https://example.com/opensource/label-studio/1.jpg"]]


def test_regions_golden() -> None:
    t = load_labelstudio(DATA / "regions.json")
    anns = t.annotations.set_index("id")
    assert anns["kind"].to_dict() == {
        "rot1": "box",
        "rot2": "box",
        "rot3": "box",
        "g1": "polygon",
        "k1": "keypoints",
        "c1": "tag",
        "c1#1": "tag",
        "t1": "caption",
        "p1": "box",
    }
    assert anns.loc["rot3", "attributes"] == {"colour": "red"}
    assert anns.loc["g1", "points"] == ((0.1, 0.1, 0.4, 0.1, 0.4, 0.35, 0.1, 0.35),)
    assert anns.loc["k1", "points"] == ((0.5, 0.6),) and anns.loc["k1", "visibility"] == (2,)
    assert anns.loc[["c1", "c1#1"], "label"].tolist() == ["daytime", "urban"]
    assert anns.loc["t1", "text"] == "Cars parked in a street ☀"
    assert (anns.loc["p1", "author"], anns.loc["p1", "score"]) == ("model:yolo-v8", 0.87)
    assert anns.loc["rot1", "author"] == "3" and pd.isna(anns.loc["rot1", "score"])
    assert t.assets[["asset", "width", "height"]].values.tolist() == [
        ["/data/upload/1/8c2f1e0a-street.png", 597, 768],
        ["/data/upload/1/0b7d3c11-empty.png", pd.NA, pd.NA],
    ]


def _content(df: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "asset",
        "id",
        "label",
        "kind",
        *GEOM,
        "points",
        "visibility",
        "value",
        "text",
        "attributes",
        "author",
        "score",
    ]
    return df[cols].sort_values("id").reset_index(drop=True)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = _content(a), _content(b)
    assert a["id"].tolist() == b["id"].tolist()
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records"), strict=True):
        for c in ra:
            x, y = schema.normal_value(c, ra[c]), schema.normal_value(c, rb[c])
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, abs_tol=1e-9), (ra["id"], c, x, y)
            elif c == "points" and x is not None:
                assert all(
                    math.isclose(p, q, abs_tol=1e-9)
                    for u, v in zip(x, y, strict=True)
                    for p, q in zip(u, v, strict=True)
                )
            else:
                assert x == y, (ra["id"], c, x, y)


@pytest.mark.parametrize("name", ["regions.json", "task_format.json"])
def test_read_write_read_is_stable(tmp_path: Path, name: str) -> None:
    t = load_labelstudio(DATA / name)
    out = save_labelstudio(t, tmp_path / "out.json")[0]
    back = load_labelstudio(out)
    _assert_same(t.annotations, back.annotations)
    third = labelstudio_to_tables(tables_to_labelstudio(back))
    _assert_same(back.annotations, third.annotations)


def test_written_results_carry_sizes_names_and_per_region_controls(tmp_path: Path) -> None:
    tasks = tables_to_labelstudio(load_labelstudio(DATA / "regions.json"))
    assert [t["data"]["image"] for t in tasks] == [
        "/data/upload/1/8c2f1e0a-street.png",
        "/data/upload/1/0b7d3c11-empty.png",
    ]
    ann = tasks[0]["annotations"][0]
    assert ann["completed_by"] == 3
    by_id = {(r["id"], r["type"]): r for r in ann["result"]}
    rot1 = by_id[("rot1", "rectanglelabels")]
    assert (rot1["original_width"], rot1["original_height"], rot1["from_name"], rot1["to_name"]) == (
        597,
        768,
        "label",
        "image",
    )
    assert by_id[("rot3", "choices")]["value"] == {"choices": ["red"]}
    assert by_id[("c1", "choices")]["value"] == {"choices": ["daytime", "urban"]}
    assert tasks[0]["predictions"][0]["model_version"] == "yolo-v8"
    config = label_config(tasks)
    assert '<RectangleLabels name="label" toName="image">' in config
    assert '<Choices name="colour" toName="image" perRegion="true">' in config
    assert '<TextArea name="caption" toName="image"/>' in config


def test_round_trip_from_a_built_frame_edge_cases(tmp_path: Path) -> None:
    rows = [
        {"asset": "a.png", "id": "whole", "label": "all", "kind": "box", "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0},
        {
            "asset": "a.png",
            "id": "px",
            "label": '猫, "q"',
            "kind": "box",
            "x0": 3 / 640,
            "y0": 7 / 480,
            "x1": 4 / 640,
            "y1": 8 / 480,
            "rotation": 90.0,
            "attributes": {"truncated": 1, "difficult": "yes"},
        },
        {"asset": "a.png", "id": "line", "label": "lane", "kind": "polyline", "points": [[0.0, 0.5, 1.0, 0.5]]},
        {"asset": "a.png", "id": "tag", "label": "night", "kind": "tag", "value": True},
        {
            "asset": "a.png",
            "id": "p",
            "label": "car",
            "kind": "box",
            "x0": 0.1,
            "y0": 0.1,
            "x1": 0.2,
            "y1": 0.3,
            "author": "model:m",
            "score": 0.25,
        },
    ]
    anns = schema.annotations_frame([{"dataset": "d", **r} for r in rows])
    assets = schema.assets_frame(
        [
            {"dataset": "d", "asset": "a.png", "name": "a.png", "width": 640, "height": 480},
            {"dataset": "d", "asset": "b.png", "name": "b.png", "width": 1, "height": 1},
        ]
    )
    t = Tables(anns, assets, schema.labels_frame([]))
    back = load_labelstudio(save_labelstudio(t, tmp_path)[0])
    _assert_same(anns, back.annotations)
    assert back.assets["asset"].tolist() == ["a.png", "b.png"]  # the empty image is a task too


def test_unsupported_rows_raise_unless_skipped(tmp_path: Path) -> None:
    rows = [
        {
            "asset": "a",
            "id": "kp",
            "kind": "keypoints",
            "label": "p",
            "points": [[0.1, 0.1, 0.2, 0.2]],
            "visibility": [2, 2],
        },
        {"asset": "a", "id": "hole", "kind": "polygon", "points": [[0, 0, 1, 0, 1, 1], [0.2, 0.2, 0.3, 0.2, 0.3, 0.3]]},
        {"asset": "a", "id": "rot", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1, "rotation": 5.0},
        {"asset": "a", "id": "qa", "kind": "qa", "text": "?", "answer": "!"},
        {"asset": "a", "id": "ok", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1},
    ]
    t = Tables(
        schema.annotations_frame([{"dataset": "d", **r} for r in rows]),
        schema.assets_frame([]),
        schema.labels_frame([]),
    )
    with pytest.raises(
        FormatError,
        match=r"4 rows: 'kp' \(keypoints\), 'hole' \(polygon of 2 parts\), 'rot' \(rotated box\), 'qa' \(qa\)",
    ):
        save_labelstudio(t, tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()
    save_labelstudio(t, tmp_path / "o.json", skip_unsupported=True)
    assert load_labelstudio(tmp_path / "o.json").annotations["id"].tolist() == ["ok"]


def _task(result: dict) -> list:
    return [{"data": {"image": "a.png"}, "annotations": [{"result": [result]}]}]


RECT = {
    "id": "r",
    "type": "rectanglelabels",
    "from_name": "label",
    "to_name": "image",
    "value": {"x": 1, "y": 2, "width": 3, "height": 4, "rectanglelabels": ["cat"]},
}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"data": {}}, "[0].data.image"),
        ([{"data": "a.png"}], "[0].data"),
        ([{"data": {"image": "a.png"}, "annotations": {}}], "[0].annotations"),
        (_task({**RECT, "value": {**RECT["value"], "x": "1"}}), "[0].annotations[0].result[0].value.x"),
        (_task({**RECT, "value": {**RECT["value"], "width": -3}}), "[0].annotations[0].result[0].value.width"),
        (
            _task({**RECT, "value": {**RECT["value"], "height": float("nan")}}),
            "[0].annotations[0].result[0].value.height",
        ),
        (_task({**RECT, "value": {**RECT["value"], "rotation": 30}}), "[0].annotations[0].result[0].original_width"),
        (_task({**RECT, "original_width": -5, "original_height": 10}), "[0].annotations[0].result[0].width"),
        (
            _task({**RECT, "value": {**RECT["value"], "rectanglelabels": "cat"}}),
            "[0].annotations[0].result[0].value.rectanglelabels",
        ),
        (_task({k: v for k, v in RECT.items() if k != "type"}), "[0].annotations[0].result[0].type"),
        (
            _task({"id": "p", "type": "polygonlabels", "value": {"points": [[0, 0], [1, 1]], "polygonlabels": []}}),
            "[0].annotations[0].result[0].value.points",
        ),
        (
            _task({"id": "b", "type": "ellipselabels", "value": {"x": 1, "y": 2, "ellipselabels": ["x"]}}),
            "[0].annotations[0].result[0].type",
        ),
        (_task({**RECT, "image_rotation": 90}), "[0].annotations[0].result[0].image_rotation"),
    ],
)
def test_hostile_tasks_name_file_and_json_path(tmp_path: Path, obj: object, field: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(FormatError, match=rf"bad.json, field '{__import__('re').escape(field)}'"):
        load_labelstudio(path)


def test_truncated_json_and_bom_crlf(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(_task(RECT))[:-7])
    with pytest.raises(FormatError, match=r"cut.json, line 1, field 'json'"):
        load_labelstudio(path)
    crlf = tmp_path / "crlf.json"
    crlf.write_bytes(b"\xef\xbb\xbf" + json.dumps(_task(RECT), indent=1).replace("\n", "\r\n").encode())
    assert find_format(crlf).name == "labelstudio"
    assert load_labelstudio(crlf).annotations["label"].tolist() == ["cat"]


def test_skip_unsupported_on_read(tmp_path: Path) -> None:
    ellipse = {"id": "e", "type": "ellipselabels", "value": {"x": 1, "y": 2, "ellipselabels": ["x"]}}
    t = labelstudio_to_tables(
        [{"data": {"image": "a.png"}, "annotations": [{"result": [ellipse, RECT]}]}], skip_unsupported=True
    )
    assert t.annotations["id"].tolist() == ["r"]


def test_a_brush_reads_as_a_tag_with_its_mask_and_writes_back_unchanged(tmp_path: Path) -> None:
    brush = {
        "id": "b",
        "type": "brushlabels",
        "from_name": "brush",
        "to_name": "image",
        "original_width": 64,
        "original_height": 48,
        "value": {"format": "rle", "rle": [0, 1, 2, 3], "brushlabels": ["cat"]},
    }
    t = labelstudio_to_tables([{"data": {"image": "a.png"}, "annotations": [{"id": 7, "result": [brush, RECT]}]}])
    row = t.annotations.set_index("id").loc["b"]
    assert (row["kind"], row["label"], row["value"], row["annotation"]) == ("tag", "cat", True, "7")
    assert row["attributes"] == {
        "mask": {"format": "rle", "rle": [0, 1, 2, 3], "original_width": 64, "original_height": 48}
    }
    (task,) = tables_to_labelstudio(t)
    (written,) = [r for r in task["annotations"][0]["result"] if r["id"] == "b"]
    assert written == brush
    assert '<BrushLabels name="brush" toName="image">' in label_config([task])


def test_annot_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """CSV (Datature export) -> Label Studio: boxes and splits' assets, no sizes needed for unrotated boxes."""
    anns = ab.read(Path(__file__).parent / "data" / "csv_boxes" / "export")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path / "ls.json", format="label_studio")
    back = ab.read(tmp_path / "ls.json")
    assert back[["asset", "label"]].values.tolist() == anns[["asset", "label"]].values.tolist()
    for c in GEOM[:4]:
        assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(back[c], anns[c], strict=True))


def test_a_server_export_lists_predictions_by_id_and_they_are_passed_over() -> None:
    """Label Studio's JSON export gives a task's predictions as ids: nothing to read there, and no error."""
    t = labelstudio_to_tables([{"data": {"image": "a.png"}, "annotations": [{"id": 1, "result": [RECT]}],
                                "predictions": [7, 8], "drafts": []}])  # fmt: skip
    assert t.annotations["id"].tolist() == ["r"] and t.annotations["annotation"].tolist() == ["1"]
