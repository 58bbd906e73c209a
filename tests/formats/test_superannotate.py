"""SuperAnnotate vector JSON: the docs' examples, the SDK's item, round trips, bad input."""

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
from annotebook.formats.superannotate import (
    load_superannotate,
    save_superannotate,
    superannotate_to_tables,
    tables_to_superannotate,
)

DATA = Path(__file__).parent / "data" / "superannotate"
COLS = [
    "asset",
    "id",
    "label",
    "kind",
    "x0",
    "y0",
    "x1",
    "y1",
    "rotation",
    "points",
    "visibility",
    "value",
    "attributes",
    "author",
    "score",
]


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a[COLS].reset_index(drop=True), b[COLS].reset_index(drop=True)
    assert a["id"].tolist() == b["id"].tolist()
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records"), strict=True):
        for c in COLS:
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


def test_project_folder_golden_from_the_docs() -> None:
    anns = ab.read(DATA / "project")
    assert find_format(DATA / "project").name == "superannotate"
    assert anns["kind"].tolist() == ["polygon", "box", "polyline", "keypoints", "tag", "tag"]
    poly, box, line, point, *_ = (anns.iloc[i] for i in range(6))
    assert poly["points"] == (
        (
            322.18 / 1920,
            249.03 / 1080,
            585.14 / 1920,
            261.22 / 1080,
            377.9 / 1920,
            449.31 / 1080,
            243.81 / 1920,
            410.99 / 1080,
        ),
    )
    assert (poly["label"], poly["attributes"]) == ("pentagon", {"Color": "Green"})
    assert [box[c] for c in ("x0", "y0", "x1", "y1")] == [0.0, 0.0, 1.0, 1.0]
    assert (box["label"], box["score"], box["author"]) == ("Human pose", 0.87, "annotator@example.com")
    assert line["points"] == ((0.0, 5 / 1080, 9 / 1920, 5 / 1080),)
    assert (point["points"], point["visibility"]) == (((50.5 / 1920, 60.5 / 1080),), (2,))
    assert point["attributes"] == {"side": "left", "state": ["open", "wet"]}
    assert anns.loc[anns["kind"] == "tag", "label"].tolist() == ["Shapes", "Vector"]
    assets = anns.annot.assets
    assert assets[["asset", "width", "height", "status"]].values.tolist() == [
        ["94573794", 1920, 1080, "Returned"],
        ["empty.jpg", 640, 480, "NotStarted"],
    ]
    labels = anns.annot.labels.set_index("name")
    assert (labels.loc["Human pose", "index"], labels.loc["Human pose", "color"]) == (54399, "#4b35f4")


def test_sdk_item_with_unsupported_types() -> None:
    """The item the SDK returns (research notes, part B.4): the ellipse is read (a box with sa.shape), the cuboid
    and the template are named, and skipped when asked."""
    path = DATA / "sdk_item" / "a.jpg.json"
    with pytest.raises(FormatError, match=r"a.jpg.json, field 'instances\[5\].type'.*cuboid"):
        load_superannotate(path)
    t = load_superannotate(path, skip_unsupported=True)
    assert t.annotations["kind"].tolist() == ["box", "polygon", "polyline", "keypoints", "box"]
    ellipse = t.annotations.iloc[4]
    assert [ellipse[c] * s for c, s in zip(("x0", "y0", "x1", "y1"), (640, 480, 640, 480), strict=True)] == [
        3, 4, 7, 6]  # fmt: skip
    assert ellipse["attributes"] == {"sa.shape": "ellipse"}
    assert t.annotations.iloc[0]["author"] == "Manual"  # creationType, where there is no createdBy
    assert t.annotations["asset"].unique().tolist() == ["a.jpg"]
    assert t.annotations.iloc[0]["attributes"] == {"color": "black"}
    assert pd.isna(t.annotations.iloc[0]["score"])  # probability 100 is SuperAnnotate's default, not a score


def test_read_write_read_is_stable(tmp_path: Path) -> None:
    t = load_superannotate(DATA / "project")
    files = save_superannotate(t, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == [
        "94573794___objects.json",
        "classes/classes.json",
        "empty.jpg___objects.json",
    ]
    back = load_superannotate(tmp_path / "out")
    _assert_same(t.annotations, back.annotations)
    assert (
        back.assets[["asset", "width", "height", "status"]].values.tolist()
        == t.assets[["asset", "width", "height", "status"]].values.tolist()
    )
    item = json.loads((tmp_path / "out" / "94573794___objects.json").read_text())
    assert item["metadata"] == {"name": "94573794", "width": 1920, "height": 1080, "status": "Returned"}
    want = [322.18, 249.03, 585.14, 261.22, 377.9, 449.31, 243.81, 410.99]
    assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(item["instances"][0]["points"], want, strict=True))
    classes = {c["name"]: c for c in json.loads((tmp_path / "out" / "classes" / "classes.json").read_text())}
    assert classes["Human pose"]["id"] == 54399 and classes["pentagon"]["color"] == "#00ff00"
    assert classes["Human pose"]["attribute_groups"] == [{"name": "Pose", "attributes": [{"name": "Standing"}]}]
    assert tables_to_superannotate(back) == tables_to_superannotate(load_superannotate(tmp_path / "out"))


def test_round_trip_edge_cases(tmp_path: Path) -> None:
    rows = [
        {
            "asset": "imgs/a.png",
            "id": "whole",
            "label": "all",
            "kind": "box",
            "x0": 0.0,
            "y0": 0.0,
            "x1": 1.0,
            "y1": 1.0,
        },
        {
            "asset": "imgs/a.png",
            "id": "px",
            "label": '猫 "q", ü',
            "kind": "box",
            "x0": 3 / 640,
            "y0": 7 / 480,
            "x1": 4 / 640,
            "y1": 8 / 480,
            "score": 0.5,
            "author": "bot@example.com",
        },
        {
            "asset": "imgs/a.png",
            "id": "holes",
            "label": "ring",
            "kind": "polygon",
            "points": [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0], [0.25, 0.25, 0.75, 0.25, 0.5, 0.75]],
        },
        {"asset": "imgs/a.png", "id": "t", "label": "night", "kind": "tag", "value": True},
    ]
    anns = schema.annotations_frame([{"dataset": "d", **r} for r in rows])
    assets = schema.assets_frame(
        [
            {"dataset": "d", "asset": "imgs/a.png", "name": "a.png", "width": 640, "height": 480},
            {"dataset": "d", "asset": "b.png", "name": "b.png", "width": 5, "height": 5},
        ]
    )
    save_superannotate(Tables(anns, assets, schema.labels_frame([])), tmp_path)
    assert (tmp_path / "imgs" / "a.png___objects.json").is_file()
    back = load_superannotate(tmp_path)
    expected = anns.assign(id=["whole", "px", "holes", "imgs/a.png#3"])  # tags have no instance id in the format
    _assert_same(expected, back.annotations)
    assert back.assets["asset"].tolist() == ["b.png", "imgs/a.png"]


def test_newer_json_naming_and_single_file(tmp_path: Path) -> None:
    t = load_superannotate(DATA / "project")
    save_superannotate(t, tmp_path, naming="json")
    assert (tmp_path / "94573794.json").is_file()
    one = load_superannotate(tmp_path / "94573794.json")  # classes/classes.json beside it gives the class ids
    assert one.annotations["label"].tolist()[:2] == ["pentagon", "Human pose"]


def test_unsupported_rows_raise_unless_skipped(tmp_path: Path) -> None:
    rows = [
        {"asset": "a", "id": "cap", "kind": "caption", "text": "x"},
        {"asset": "a", "id": "rot", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1, "rotation": 3.0},
        {"asset": "nosize", "id": "b", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1},
        {"asset": "a", "id": "ok", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1},
    ]
    assets = schema.assets_frame([{"dataset": "d", "asset": "a", "name": "a", "width": 2, "height": 2}])
    t = Tables(schema.annotations_frame([{"dataset": "d", **r} for r in rows]), assets, schema.labels_frame([]))
    with pytest.raises(FormatError, match=r"2 rows: 'cap' \(caption\), 'b' \(box\)"):
        save_superannotate(t, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    save_superannotate(t, tmp_path / "o", skip_unsupported=True)
    back = load_superannotate(tmp_path / "o").annotations
    assert back["id"].tolist() == ["rot", "ok"]  # a rotated box is written as an rbbox and read back
    assert back["rotation"].tolist() == pytest.approx([3.0, 0.0]) and back["x1"].tolist() == pytest.approx([1, 1])


def test_rbbox_ellipse_locked_group_and_video(tmp_path: Path) -> None:
    """The instance types and fields the SDK's items carry beyond the basic shapes, read and written back."""
    item = {"metadata": {"name": "r.jpg", "width": 100, "height": 50}, "instances": [
        {"type": "rbbox", "className": "car", "points": {"x1": 40, "y1": 20, "x2": 60, "y2": 20, "x3": 60, "y3": 30,
                                                           "x4": 40, "y4": 30}, "locked": True, "groupId": 7},
        {"type": "rbbox", "className": "car", "points": {"x1": 50, "y1": 15, "x2": 60, "y2": 25, "x3": 50, "y3": 35,
                                                           "x4": 40, "y4": 25}, "creationType": "Predicted",
         "probability": 40},
        {"type": "ellipse", "className": "ball", "cx": 20, "cy": 10, "rx": 5, "ry": 2, "angle": 30}]}  # fmt: skip
    t = superannotate_to_tables({"r.jpg": item})
    a = t.annotations
    assert [a.iloc[0][c] for c in ("x0", "y0", "x1", "y1", "rotation")] == pytest.approx([0.4, 0.4, 0.6, 0.6, 0])
    assert a.iloc[0]["attributes"] == {"sa.locked": True, "sa.group": 7}
    turned = a.iloc[1]
    assert turned["rotation"] == pytest.approx(45) and (turned["author"], turned["score"]) == ("Predicted", 0.4)
    assert (turned["x1"] - turned["x0"]) * 100 == pytest.approx(200**0.5)
    assert a.iloc[2]["attributes"] == {"sa.shape": "ellipse"} and a.iloc[2]["rotation"] == 30
    files = tables_to_superannotate(t)
    written = json.loads(files["r.jpg___objects.json"])["instances"]
    assert [i["type"] for i in written] == ["bbox", "rbbox", "ellipse"]
    assert (written[0]["locked"], written[0]["groupId"], written[0]["attributes"]) == (True, 7, [])
    assert written[1]["creationType"] == "Predicted" and written[2]["rx"] == pytest.approx(5)
    back = superannotate_to_tables({"r.jpg": json.loads(files["r.jpg___objects.json"])}).annotations
    _assert_same(a, back)
    video = {"metadata": {"name": "v.mp4", "width": 100, "height": 50, "duration": 3_000_000}, "instances": [
        {"meta": {"type": "bbox", "className": "car", "start": 0, "end": 2_000_000}, "parameters": [
            {"start": 0, "end": 2_000_000, "timestamps": [
                {"timestamp": 0, "points": {"x1": 0, "y1": 0, "x2": 10, "y2": 10}, "attributes": []},
                {"timestamp": 2_000_000, "points": {"x1": 5, "y1": 5, "x2": 15, "y2": 15},
                 "attributes": [{"name": "red", "groupName": "color"}]}]}]}]}  # fmt: skip
    v = superannotate_to_tables({"v.mp4": video})
    assert v.annotations["frame"].tolist() == [0, 2] and v.assets["frames"].tolist() == [3]
    assert v.annotations.iloc[1]["attributes"] == {"color": "red", "sa.instance": 0, "sa.timestamp": 2_000_000}


def _item(**instance: object) -> dict:
    return {"metadata": {"name": "x.jpg", "width": 10, "height": 10}, "instances": [instance]}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "metadata"),
        ({"instances": []}, "metadata"),
        ({"metadata": {"name": "x.jpg", "width": -10, "height": 10}, "instances": []}, "metadata.width"),
        ({"metadata": {"name": "x.jpg", "width": float("nan"), "height": 10}, "instances": []}, "metadata.width"),
        (
            {
                "metadata": {"name": "x.jpg"},
                "instances": [{"type": "bbox", "points": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}],
            },
            "metadata.width",
        ),
        ({"metadata": {"name": "x.jpg", "width": 10, "height": 10}, "instances": {}}, "instances"),
        (_item(type="bbox", points=[0, 0, 1, 1]), "instances[0].points"),
        (_item(type="bbox", points={"x1": 0, "y1": 0, "x2": "1", "y2": 1}), "instances[0].points.x2"),
        (_item(type="bbox", points={"x1": 5, "y1": 0, "x2": 1, "y2": 1}), "instances[0].points"),
        (_item(type="polygon", points=[0, 0, 1, 1]), "instances[0].points"),
        (_item(type="polygon", points=[0, 0, 1, 1, 2]), "instances[0].points"),
        (_item(type="polyline", points=[0, 0]), "instances[0].points"),
        (_item(type="point", x=1), "instances[0].y"),
        (_item(type="bbox", classId=999, points={"x1": 0, "y1": 0, "x2": 1, "y2": 1}), "instances[0].classId"),
        (
            _item(type="bbox", points={"x1": 0, "y1": 0, "x2": 1, "y2": 1}, attributes={"a": 1}),
            "instances[0].attributes",
        ),
        ({"metadata": {"name": "x.jpg"}, "instances": [], "tags": [5]}, "tags[0]"),
    ],
)
def test_hostile_items_name_file_and_field(tmp_path: Path, obj: object, field: str) -> None:
    path = tmp_path / "x.jpg___objects.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(FormatError, match=rf"x.jpg___objects.json, field '{__import__('re').escape(field)}'"):
        load_superannotate(path)


def test_bad_classes_json_and_truncated_json(tmp_path: Path) -> None:
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes" / "classes.json").write_text('[{"id": "one", "name": "x"}]')
    (tmp_path / "a.jpg___objects.json").write_text(json.dumps(_item(type="point", x=1, y=1)))
    with pytest.raises(FormatError, match=r"classes/classes.json, field '\[0\].id'"):
        load_superannotate(tmp_path)
    (tmp_path / "classes" / "classes.json").write_text("[]")
    (tmp_path / "b.jpg___objects.json").write_text('{"metadata": {"name": "b.jpg", "wid')
    with pytest.raises(FormatError, match=r"b.jpg___objects.json, line 1, field 'json'"):
        load_superannotate(tmp_path)


def test_bom_crlf_and_sniff_of_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(_item(type="point", x=1, y=2), indent=1).replace("\n", "\r\n").encode()
    )
    assert find_format(path).name == "superannotate"
    t = superannotate_to_tables({"x.jpg": json.loads(path.read_text(encoding="utf-8-sig"))})
    assert (
        load_superannotate(path).annotations["points"].tolist() == t.annotations["points"].tolist() == [((0.1, 0.2),)]
    )


def test_annot_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """Label Studio -> SuperAnnotate: regions keep pixels through the task's original size; tags stay tags."""
    anns = ab.read(Path(__file__).parent / "data" / "labelstudio" / "regions.json")
    written = anns.annot.save(tmp_path / "sa", format="sa_json", skip_unsupported=True)  # the caption is refused
    assert all(p.is_relative_to(tmp_path / "sa") for p in written)  # URL-like assets never escape the folder
    back = ab.read(tmp_path / "sa")
    kept = anns[anns["kind"].isin(["polygon", "keypoints", "tag"])]
    assert back.loc[back["kind"].isin(["polygon", "keypoints", "tag"]), "label"].tolist() == kept["label"].tolist()
    boxes, sent = back[back["kind"] == "box"], anns[anns["kind"] == "box"]
    assert len(boxes) == 4  # the three rotated rectangles go as rbbox, the prediction as a bbox
    assert sorted(boxes["rotation"].round(6)) == sorted(sent["rotation"].fillna(0).round(6))


def test_a_file_name_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "sa"
    folder.mkdir()
    bad = os.path.join(os.fsencode(folder), b"\xff.jpg___objects.json")
    with open(bad, "w") as f:
        json.dump(_item(type="point", x=1, y=1), f)
    with pytest.raises(FormatError, match=r"file \\xff.jpg___objects.json: the file name is not UTF-8"):
        load_superannotate(folder)


def test_the_plain_path_reads_as_the_checked_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Common instances take a fast path (`_plain_instance`); it gives exactly the rows of the checked one."""
    from annotebook.formats import superannotate as sa

    item = json.loads((DATA / "project" / "94573794___objects.json").read_text())
    item["instances"][1]["className"] = "Human pose"  # classes.json is not read here
    item["instances"] += [
        {"type": "bbox", "className": "c", "points": {"x1": 1, "y1": 2.5, "x2": 30, "y2": 40}, "probability": 40,
         "creationType": "Predicted", "attributes": [{"name": "a", "groupName": "g"}], "id": "own-1"},
        {"type": "polygon", "className": "c", "points": [1, 2, 30, 2, 30, 40], "attributes": [],
         "createdBy": {"email": "x@example.com"}},
        {"type": "bbox", "className": "c", "points": {"x1": True, "y1": 2, "x2": 30, "y2": 40}},
    ]  # fmt: skip
    with pytest.raises(FormatError, match=r"instances\[6\]\.points\.x1"):  # a bool is not a number, on both paths
        sa.parse_item(item, file="f", asset="a")
    item["instances"].pop()
    fast = sa.parse_item(item, file="f", asset="a")
    monkeypatch.setattr(sa, "_plain_instance", lambda doc, inst: None)
    checked = sa.parse_item(item, file="f", asset="a")
    assert fast == checked
    assert [r["author"] for r in fast[1][4:6]] == ["Predicted", "x@example.com"]


def test_a_sample_project_in_the_sdks_shape_with_a_template() -> None:
    """A vector project as the SDK's sample projects are laid out (null createdBy / creationType, trackingId,
    visible, instance groups, a template): read unchanged; the template is named, and skipped when asked."""
    path = DATA / "sample_project_vector"
    with pytest.raises(FormatError, match=r"instances\[1\]\.type.*'template'"):
        load_superannotate(path)
    t = load_superannotate(path, skip_unsupported=True)
    a = t.annotations
    assert a["kind"].tolist() == ["box", "polygon", "polygon"]
    assert a["label"].tolist() == ["Personal vehicle"] * 3
    assert a.iloc[0]["attributes"] == {"Num doors": "2"} and pd.isna(a.iloc[0]["author"])
    assert pd.isna(a.iloc[0]["score"]) and [a.iloc[0]["x0"] * 1024, a.iloc[0]["y1"] * 683] == pytest.approx(
        [437.25, 357]
    )
    assert [r["attributes"] for r in a.iloc[1:].to_dict("records")] == [{"sa.group": 1}] * 2  # one instance group
    assert t.assets["status"].tolist() == ["Completed"]
    assert t.labels.set_index("name").loc["Human", "index"] == 7002
