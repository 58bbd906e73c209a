"""COCO JSON: golden files written from cocodataset.org/#format-data, round trips, a hostile corpus, peers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables, coco, load, save

DATA = Path(__file__).parent / "data" / "coco"
INSTANCES = DATA / "instances.json"
KEYPOINTS = DATA / "person_keypoints.json"


def doc_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def rows(tables: Tables) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in tables.annotations.to_dict("records")}


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame, tol: float = 1e-9) -> None:
    """Same ids, and every content column equal in normal form (coordinates within ``tol``)."""
    assert sorted(a["id"]) == sorted(b["id"])
    a, b = a.set_index("id").loc[sorted(a["id"])], b.set_index("id").loc[sorted(b["id"])]
    for col in ("x0", "y0", "x1", "y1"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=tol, rtol=0, equal_nan=True)
    for p, q in zip(a["points"], b["points"], strict=True):
        assert (p is None) == (q is None)
        if p is not None:
            assert [len(r) for r in p] == [len(r) for r in q]
            np.testing.assert_allclose(np.concatenate(p), np.concatenate(q), atol=tol, rtol=0, equal_nan=True)
    for col in ("label", "kind", "visibility", "attributes", "score", "asset"):
        assert [schema.normal_value(col, v) for v in a[col]] == [schema.normal_value(col, v) for v in b[col]], col


# ---------------------------------------------------------------------------------------------------------------
# golden files


def test_instances_golden_tables() -> None:
    t = coco.load_coco(INSTANCES)
    r = rows(t)
    assert list(t.annotations["id"]) == ["101", "102", "103", "104", "105", "106"]
    assert set(t.annotations["dataset"]) == {"instances"}
    # a box touching every border is (0, 0, 1, 1)
    assert [r["101"][c] for c in ("kind", "label", "x0", "y0", "x1", "y1", "rotation")] == ["box", "car", 0, 0, 1, 1, 0]
    # a 1-pixel box at the bottom-right corner: x1 == width
    assert [r["104"][c] for c in ("x0", "y0", "x1", "y1")] == [319 / 320, 239 / 240, 1.0, 1.0]
    assert r["104"]["label"] == "ciervo été 🦌"
    assert r["102"]["kind"] == "polygon"
    assert r["102"]["points"] == ((10 / 640, 10 / 480, 50 / 640, 10 / 480, 50 / 640, 100 / 480, 10 / 640, 100 / 480),)
    assert len(r["103"]["points"]) == 2  # a multi-part polygon: one row, two rings
    assert r["103"]["x1"] == 120.5 / 320 and r["103"]["y1"] == 130.75 / 240
    # areas equal to the geometry's are not kept; the others (and RLE masks) are, with iscrowd and the file's attributes
    assert r["101"]["attributes"] is None and r["102"]["attributes"] is None and r["103"]["attributes"] is None
    assert r["106"]["attributes"] == {"occluded": True, "color": "red", "area": 1234.5}
    rle = r["105"]["attributes"]
    assert rle["mask"] == "rle" and rle["iscrowd"] == 1 and rle["rle_size"] == [30, 40] and rle["area"] == 100.0
    assert [r["105"][c] for c in ("kind", "x0", "y0", "x1", "y1")] == ["box", 5 / 40, 5 / 30, 15 / 40, 15 / 30]


def test_instances_golden_assets_and_labels() -> None:
    t = coco.load_coco(INSTANCES)
    a = t.assets.set_index("asset")
    assert list(a.index) == ["street.jpg", "park/dog.png", "empty.jpg", "crowd.jpg"]  # the empty image is an asset
    assert a.loc["park/dog.png", "name"] == "dog.png"
    assert a.loc["crowd.jpg", ["width", "height", "image_id"]].tolist() == [40, 30, 7]
    assert a.loc["street.jpg", "coco_url"] == "http://example.com/street.jpg"
    assert a["uri"].isna().all()  # no image files beside the golden file
    labels = t.labels.set_index("name")
    assert labels["index"].to_dict() == {"person": 1, "car": 3, "dog": 18, "ciervo été 🦌": 90}
    assert labels.loc["car", "supercategory"] == "vehicle"
    assert t.assets.attrs["coco"]["licenses"][0]["name"] == "CC BY 4.0"


def test_keypoints_golden() -> None:
    t = coco.load_coco(KEYPOINTS)
    r = rows(t)
    assert list(t.annotations["id"]) == ["1", "2", "3", "1#keypoints"]
    # an outlined person with keypoints: a polygon row plus a companion keypoints row
    assert r["1"]["kind"] == "polygon" and r["1#keypoints"]["kind"] == "keypoints"
    kp = r["1#keypoints"]
    assert kp["visibility"] == (2, 1, 0)
    assert kp["points"][0][:4] == (50 / 200, 20 / 100, 45 / 200, 15 / 100)
    assert all(math.isnan(v) for v in kp["points"][0][4:])  # v=0: not labelled
    assert [kp[c] for c in ("x0", "y0", "x1", "y1")] == [45 / 200, 15 / 100, 50 / 200, 20 / 100]
    # no labelled keypoint: just the box; keypoints whose bbox is their extent: one keypoints row
    assert r["2"]["kind"] == "box"
    assert r["3"]["kind"] == "keypoints" and r["3"]["visibility"] == (2, 2, 0)
    labels = t.labels.set_index("name")
    assert labels.loc["person", "keypoints"] == ("nose", "left_eye", "right_eye")
    assert labels.loc["person", "skeleton"] == ((0, 1), (0, 2))  # COCO's [[1, 2], [1, 3]], 0-based


def _rich_document() -> dict[str, Any]:
    """Both golden files in one document, plus a closed ring, a score and attributes on single annotations."""
    doc, people = doc_of(INSTANCES), doc_of(KEYPOINTS)
    offset = 1000
    doc["images"] += [{**im, "id": im["id"] + offset, "file_name": "p/" + im["file_name"]} for im in people["images"]]
    doc["categories"] += [{**c, "id": c["id"] + offset, "name": "kp " + c["name"]} for c in people["categories"]]
    doc["annotations"] += [
        {**a, "id": a["id"] + offset, "image_id": a["image_id"] + offset, "category_id": a["category_id"] + offset}
        for a in people["annotations"]
    ]
    doc["annotations"][1]["segmentation"] = [[10, 10, 50, 10, 50, 100, 10, 100, 10, 10]]  # closed: the repeat goes
    doc["annotations"][2]["score"] = 0.5
    doc["annotations"][3]["attributes"] = {"color": "blue", "unset": None}
    del doc["annotations"][0]["id"]  # ids made from the asset where missing
    return doc


@pytest.mark.parametrize("doc", [INSTANCES, KEYPOINTS, "rich"], ids=["instances", "keypoints", "rich"])
def test_loaded_frame_is_already_in_normal_form(doc: Any) -> None:
    """The reader builds the frame in its final form (dtypes, extents, normal attributes) without going through
    `schema.annotations_frame`: running it through that gives the same frame."""
    t = coco.coco_to_tables(_rich_document() if doc == "rich" else doc_of(doc))
    pd.testing.assert_frame_equal(t.annotations, schema.annotations_frame(t.annotations), check_exact=True)
    if doc == "rich":
        r = rows(t)
        assert r["102"]["points"] == (
            (10 / 640, 10 / 480, 50 / 640, 10 / 480, 50 / 640, 100 / 480, 10 / 640, 100 / 480),
        )
        assert r["103"]["score"] == 0.5 and r["104"]["attributes"] == {"color": "blue"}
        assert t.annotations["id"].iloc[0] == "street.jpg#0"


def test_fields_beyond_the_standard_ones_are_found_on_any_annotation() -> None:
    """Score, attributes and keypoints are looked for only on annotations with more than the standard keys; an
    annotation missing a standard key makes the reader look at every annotation, with the same result."""
    doc = _rich_document()
    full = coco.coco_to_tables(doc).annotations
    del doc["annotations"][4]["area"]  # an RLE mask's area: no longer kept as an attribute
    gappy = coco.coco_to_tables(doc).annotations
    assert gappy["attributes"].iloc[4] == {k: v for k, v in full["attributes"].iloc[4].items() if k != "area"}
    pd.testing.assert_frame_equal(full.drop(columns="attributes"), gappy.drop(columns="attributes"))
    assert full["attributes"].drop(index=4).tolist() == gappy["attributes"].drop(index=4).tolist()


def test_load_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    """The reader pauses the cyclic collector while it builds (no cycles, many containers) and restores it."""
    import gc

    assert gc.isenabled()
    coco.load_coco(INSTANCES)
    assert gc.isenabled()
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [], "categories": [], "annotations": [{"id": 1}]}', encoding="utf-8")
    with pytest.raises(FormatError):
        coco.load_coco(broken)
    assert gc.isenabled()
    gc.disable()
    try:
        coco.load_coco(INSTANCES)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("golden", [INSTANCES, KEYPOINTS], ids=["instances", "keypoints"])
def test_golden_write_gives_back_the_file(golden: Path) -> None:
    """Read then write: every annotation, image and category field of the golden file comes back."""
    original = doc_of(golden)
    written = coco.tables_to_coco(coco.load_coco(golden))
    assert written["info"] == original["info"] and written["licenses"] == original["licenses"]
    assert written["categories"] == original["categories"]
    assert written["images"] == original["images"]
    assert written["annotations"] == original["annotations"]


@pytest.mark.parametrize("golden", [INSTANCES, KEYPOINTS], ids=["instances", "keypoints"])
def test_golden_read_write_read_is_stable(golden: Path, tmp_path: Path) -> None:
    first = coco.load_coco(golden)
    [out] = coco.save_coco(first, tmp_path / "again.json")
    second = coco.load_coco(out)
    assert_same_rows(first.annotations, second.annotations, tol=0)
    pd.testing.assert_frame_equal(
        first.labels.drop(columns="dataset"), second.labels.drop(columns="dataset"), check_dtype=True
    )
    pd.testing.assert_frame_equal(first.assets.drop(columns="dataset"), second.assets.drop(columns="dataset"))


def test_read_finds_coco_by_sniffing(tmp_path: Path) -> None:
    anns = ab.read(INSTANCES)
    assert len(anns) == 6 and set(anns["kind"]) == {"box", "polygon"}
    assert anns.annot.labels.set_index("name")["index"]["dog"] == 18
    assert load(KEYPOINTS).annotations["kind"].tolist().count("keypoints") == 2
    [out] = anns.annot.save(tmp_path / "out", format="coco")
    assert out == tmp_path / "out" / "instances.json"
    assert coco.tables_to_coco(coco.load_coco(out))["annotations"] == doc_of(INSTANCES)["annotations"]


def test_bom_and_crlf_file_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + INSTANCES.read_bytes().replace(b"\n", b"\r\n"))
    assert_same_rows(coco.load_coco(path).annotations, coco.load_coco(INSTANCES).annotations, tol=0)
    assert coco.sniff_coco(path)


def test_uri_points_at_images_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "street.jpg").write_bytes(b"")
    path = tmp_path / "annotations.json"
    path.write_bytes(INSTANCES.read_bytes())
    uri = coco.load_coco(path).assets.set_index("asset")["uri"]
    assert uri["street.jpg"] == str(tmp_path / "images" / "street.jpg")
    assert uri.drop("street.jpg").isna().all()


def test_uri_is_a_file_a_folder_named_like_an_image_is_not(tmp_path: Path) -> None:
    (tmp_path / "street.jpg").mkdir()  # beside the file, but a folder: the one in images/ is the image
    (tmp_path / "images" / "park").mkdir(parents=True)
    (tmp_path / "images" / "street.jpg").write_bytes(b"")
    (tmp_path / "elsewhere.png").write_bytes(b"")
    (tmp_path / "images" / "park" / "dog.png").symlink_to(tmp_path / "elsewhere.png")  # a link to a file counts
    path = tmp_path / "annotations.json"
    path.write_bytes(INSTANCES.read_bytes())
    uri = coco.load_coco(path).assets.set_index("asset")["uri"]
    assert uri["street.jpg"] == str(tmp_path / "images" / "street.jpg")
    assert uri["park/dog.png"] == str(tmp_path / "images" / "park" / "dog.png")
    assert uri[["empty.jpg", "crowd.jpg"]].isna().all()


# ---------------------------------------------------------------------------------------------------------------
# writing tables from elsewhere


def tables_of(anns: pd.DataFrame, assets: pd.DataFrame, labels: pd.DataFrame | None = None) -> Tables:
    from annotebook.formats._tables import complete_labels

    return Tables(schema.annotations_frame(anns), schema.assets_frame(assets), complete_labels(labels, anns))


def test_write_from_the_local_store(anns: pd.DataFrame, tmp_path: Path) -> None:
    """A frame of the local store (tags and a caption among its rows) writes what COCO carries when asked to."""
    with pytest.raises(FormatError, match=r"cannot carry rows .*daytime|cannot carry rows .*tag"):
        anns.annot.save(tmp_path / "x", format="coco")
    assert not (tmp_path / "x").exists()  # nothing written on failure
    [out] = anns.annot.save(tmp_path / "x", format="coco", skip_unsupported=True)
    back = coco.load_coco(out)
    carried = anns[anns["kind"].isin(["box", "polygon", "keypoints"])]
    assert len(back.annotations) == len(carried)
    doc = doc_of(out)
    assert {c["name"] for c in doc["categories"]} >= set(carried["label"])  # every label of the labels table
    key = {(r["asset"], r["kind"], r["label"]): r for r in back.annotations.to_dict("records") if r["kind"] != "box"}
    name = anns.annot.assets.set_index("asset")["name"]  # a store's asset ids are written as their file names
    poly = carried[carried["kind"] == "polygon"].iloc[0]
    np.testing.assert_allclose(
        np.concatenate(key[(name[poly["asset"]], "polygon", poly["label"])]["points"]),
        np.concatenate(poly["points"]),
        atol=1e-9,
    )
    kp = carried[carried["kind"] == "keypoints"].iloc[0]
    assert key[(name[kp["asset"]], "keypoints", kp["label"])]["visibility"] == (2, 1, 0)


def test_round_trip_keeps_ids_and_gives_fresh_ones() -> None:
    assets = schema.assets_frame([{"dataset": "d", "asset": "a.jpg", "width": 100, "height": 50, "image_id": 12}])
    box = {"dataset": "d", "asset": "a.jpg", "kind": "box", "x0": 0.1, "y0": 0.2, "x1": 0.3, "y1": 0.4}
    anns = schema.annotations_frame(
        [
            {**box, "id": "17", "label": "cat"},
            {**box, "id": "new-abc", "label": "dog"},
            {**box, "id": "a.jpg#2", "label": "cat"},
        ]
    )
    labels = schema.labels_frame([{"dataset": "d", "name": "cat", "index": 0}])
    doc = coco.tables_to_coco(tables_of(anns, assets, labels))
    assert [a["id"] for a in doc["annotations"]] == [17, 18, 19]
    assert doc["images"] == [{"id": 12, "file_name": "a.jpg", "width": 100, "height": 50}]
    assert doc["categories"] == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]  # a new label: next free id
    assert doc["annotations"][0]["bbox"] == pytest.approx([10, 10, 20, 10], abs=1e-12)


def test_rotated_box_is_refused_unless_skipped() -> None:
    assets = schema.assets_frame([{"dataset": "d", "asset": "a", "width": 10, "height": 10}])
    anns = schema.annotations_frame(
        [
            {
                "dataset": "d",
                "asset": "a",
                "id": "1",
                "label": "x",
                "kind": "box",
                "x0": 0,
                "y0": 0,
                "x1": 0.5,
                "y1": 0.5,
                "rotation": 30.0,
            },
            {"dataset": "d", "asset": "a", "id": "2", "label": "x", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1},
        ]
    )
    with pytest.raises(FormatError, match=r"'1' \(box\).*rotated") as err:
        coco.tables_to_coco(tables_of(anns, assets))
    assert err.value.field == "kind"
    doc = coco.tables_to_coco(tables_of(anns, assets), skip_unsupported=True)
    assert [a["id"] for a in doc["annotations"]] == [2]


def test_write_needs_image_sizes(tmp_path: Path) -> None:
    anns = schema.annotations_frame(
        [{"dataset": "d", "asset": "a", "label": "x", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1}]
    )
    with pytest.raises(FormatError, match="'a' has no pixel size") as err:
        save(anns, tmp_path / "o.json", format="coco")
    assert err.value.field == "width"
    assert not (tmp_path / "o.json").exists()


def test_area_attribute_and_recompute() -> None:
    t = coco.load_coco(INSTANCES)
    assert coco.tables_to_coco(t)["annotations"][5]["area"] == 1234.5
    assert coco.tables_to_coco(t, recompute_area=True)["annotations"][5]["area"] == pytest.approx(50.5 * 25.25)


def test_info_and_licenses_passthrough_and_override() -> None:
    t = coco.load_coco(INSTANCES)
    assert coco.tables_to_coco(t)["info"]["contributor"] == "annotebook"
    assert coco.tables_to_coco(t, info={"year": 2025}, licenses=[])["info"] == {"year": 2025}


finite = st.floats(0, 1, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    boxes=st.lists(st.tuples(finite, finite, finite, finite), min_size=0, max_size=5),
    rings=st.lists(st.lists(st.tuples(finite, finite), min_size=3, max_size=6), min_size=1, max_size=3),
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
)
def test_write_read_round_trip_within_1e9(
    boxes: list[tuple[float, ...]], rings: list[list[tuple[float, float]]], size: tuple[int, int]
) -> None:
    assume(all(ring[0] != ring[-1] for ring in rings))  # the contract's rings are not closed
    records = [
        {
            "dataset": "d",
            "asset": "img.jpg",
            "id": str(i + 1),
            "label": "b",
            "kind": "box",
            "x0": min(a, c),
            "y0": min(b, d),
            "x1": max(a, c),
            "y1": max(b, d),
        }
        for i, (a, b, c, d) in enumerate(boxes)
    ]
    records.append(
        {
            "dataset": "d",
            "asset": "img.jpg",
            "id": "99",
            "label": "p",
            "kind": "polygon",
            "points": [[v for xy in ring for v in xy] for ring in rings],
        }
    )
    assets = schema.assets_frame([{"dataset": "d", "asset": "img.jpg", "width": size[0], "height": size[1]}])
    t = tables_of(schema.annotations_frame(records), assets)
    back = coco.coco_to_tables(coco.dumps(coco.tables_to_coco(t)), dataset="d")
    assert_same_rows(t.annotations, back.annotations, tol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# hostile corpus: each bad file is a FormatError naming the file and the field


def _set(path: list[Any], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()

HOSTILE = {
    "images not a list": (_set(["images"], {"id": 1}), "images"),
    "image without width": (_set(["images", 0, "width"], _DELETE), "images[0].width"),
    "negative width": (_set(["images", 1, "width"], -320), "images[1].width"),
    "zero height": (_set(["images", 1, "height"], 0), "images[1].height"),
    "width as text": (_set(["images", 0, "width"], "640"), "images[0].width"),
    "fractional width": (_set(["images", 0, "width"], 640.5), "images[0].width"),
    "duplicate image id": (_set(["images", 1, "id"], 1), "images[1].id"),
    "duplicate file_name": (_set(["images", 1, "file_name"], "street.jpg"), "images[1].file_name"),
    "category without name": (_set(["categories", 0, "name"], _DELETE), "categories[0].name"),
    "duplicate category name": (_set(["categories", 1, "name"], "person"), "categories[1].name"),
    "category id as text": (_set(["categories", 0, "id"], "1"), "categories[0].id"),
    "unknown category id": (_set(["annotations", 2, "category_id"], 5), "annotations[2].category_id"),
    "unknown image id": (_set(["annotations", 0, "image_id"], 99), "annotations[0].image_id"),
    "missing image_id": (_set(["annotations", 1, "image_id"], _DELETE), "annotations[1].image_id"),
    "duplicate annotation id": (_set(["annotations", 3, "id"], 101), "annotations[3].id"),
    "bbox as text": (_set(["annotations", 0, "bbox"], "0,0,640,480"), "annotations[0].bbox"),
    "bbox of three": (_set(["annotations", 3, "bbox"], [1, 2, 3]), "annotations[3].bbox"),
    "bbox negative width": (_set(["annotations", 3, "bbox"], [1, 2, -3, 4]), "annotations[3].bbox"),
    "bbox with text": (_set(["annotations", 0, "bbox"], [0, "0", 640, 480]), "annotations[0].bbox"),
    "missing bbox": (_set(["annotations", 0, "bbox"], _DELETE), "annotations[0].bbox"),
    "polygon of two points": (
        _set(["annotations", 1, "segmentation"], [[1, 2, 3, 4]]),
        "annotations[1].segmentation[0]",
    ),
    "polygon odd count": (
        _set(["annotations", 2, "segmentation", 1], [1, 2, 3, 4, 5, 6, 7]),
        "annotations[2].segmentation[1]",
    ),
    "polygon with text": (
        _set(["annotations", 1, "segmentation"], [[1, 2, "3", 4, 5, 6]]),
        "annotations[1].segmentation[0]",
    ),
    "polygon with null": (
        _set(["annotations", 1, "segmentation"], [[1, 2, None, 4, 5, 6]]),
        "annotations[1].segmentation[0]",
    ),
    "segmentation as text": (_set(["annotations", 1, "segmentation"], "poly"), "annotations[1].segmentation"),
    "rle of the wrong size": (
        _set(["annotations", 4, "segmentation", "size"], [40, 30]),
        "annotations[4].segmentation.size",
    ),
    "rle without counts": (
        _set(["annotations", 4, "segmentation", "counts"], _DELETE),
        "annotations[4].segmentation.counts",
    ),
    "rle without bbox": (_set(["annotations", 4, "bbox"], _DELETE), "annotations[4].bbox"),
    "negative area": (_set(["annotations", 0, "area"], -1), "annotations[0].area"),
    "iscrowd 2": (_set(["annotations", 0, "iscrowd"], 2), "annotations[0].iscrowd"),
    "annotation not an object": (_set(["annotations", 2], [1, 2]), "annotations[2]"),
    "attributes not an object": (_set(["annotations", 0, "attributes"], [1]), "annotations[0].attributes"),
    "score on one annotation, as text": (_set(["annotations", 3, "score"], "high"), "annotations[3].score"),
    "attributes on the last annotation, a list": (
        _set(["annotations", 5, "attributes"], ["red"]),
        "annotations[5].attributes",
    ),
    "score and no area": (
        lambda doc: [_set(["annotations", 1, "area"], _DELETE)(doc), _set(["annotations", 4, "score"], [1])(doc)],
        "annotations[4].score",
    ),
}

HOSTILE_KEYPOINTS = {
    "keypoints not triples": (_set(["annotations", 0, "keypoints"], [1, 2, 2, 4]), "annotations[0].keypoints"),
    "keypoints count differs from names": (
        _set(["annotations", 0, "keypoints"], [1, 2, 2]),
        "annotations[0].keypoints",
    ),
    "visibility 3": (_set(["annotations", 2, "keypoints"], [1, 2, 3, 0, 0, 0, 0, 0, 0]), "annotations[2].keypoints"),
    "skeleton out of range": (_set(["categories", 0, "skeleton"], [[0, 1]]), "categories[0].skeleton[0]"),
    "skeleton not pairs": (_set(["categories", 0, "skeleton"], [[1, 2, 3]]), "categories[0].skeleton"),
}


def _write_broken(tmp_path: Path, golden: Path, change: Any) -> Path:
    doc = doc_of(golden)
    change(doc)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "field"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_instances(tmp_path: Path, change: Any, field: str) -> None:
    path = _write_broken(tmp_path, INSTANCES, change)
    with pytest.raises(FormatError) as err:
        coco.load_coco(path)
    assert err.value.file == str(path) and err.value.field == field
    assert str(path) in str(err.value) and field in str(err.value)


@pytest.mark.parametrize(("change", "field"), list(HOSTILE_KEYPOINTS.values()), ids=list(HOSTILE_KEYPOINTS))
def test_hostile_keypoints(tmp_path: Path, change: Any, field: str) -> None:
    path = _write_broken(tmp_path, KEYPOINTS, change)
    with pytest.raises(FormatError) as err:
        coco.load_coco(path)
    assert err.value.file == str(path) and err.value.field == field


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (INSTANCES.read_bytes()[:700], "line"),
        (b"[]", "results file"),
        (b'{"images": [], "annotations": []}', "categories"),
        (b'{"images": [{"id": 1, "file_name": "caf\xe9.jpg", "width": 1, "height": 1}]}', "UTF-8"),
        (b"", "line 1"),
    ],
    ids=["truncated", "results list", "no categories", "not utf-8", "empty"],
)
def test_hostile_documents(tmp_path: Path, data: bytes, where: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=where) as err:
        coco.load_coco(path)
    assert err.value.file == str(path)


def test_infinite_width_is_refused(tmp_path: Path) -> None:
    """JSON has no infinity; a file spelling one (as Python's json writes it) is refused, by the parser or the check."""
    path = tmp_path / "inf.json"
    path.write_text(
        INSTANCES.read_text(encoding="utf-8").replace('"width": 640', '"width": Infinity'), encoding="utf-8"
    )
    with pytest.raises(FormatError) as err:
        coco.load_coco(path)
    assert err.value.file == str(path) and (err.value.line == 20 or err.value.field == "images[0].width")


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="cannot read"):
        coco.load_coco(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------------------------
# peers (pycocotools, supervision, globox) in their own venv


PYCOCOTOOLS_READ = """
import contextlib, json, sys
from pycocotools.coco import COCO
from pycocotools import mask
with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints its progress
    c = COCO(sys.argv[1])
anns = c.loadAnns(c.getAnnIds())
out = []
for a in anns:
    rle = c.annToRLE(a) if a.get("segmentation") else None
    out.append({"id": a["id"], "bbox": a["bbox"], "area": a["area"],
                "mask_area": float(mask.area(rle)) if rle is not None else None,
                "mask_bbox": mask.toBbox(rle).tolist() if rle is not None else None})
print(json.dumps({"anns": out, "cats": c.loadCats(c.getCatIds()), "imgs": c.loadImgs(c.getImgIds())}))
"""


@pytest.mark.slow
def test_pycocotools_reads_our_output(tmp_path: Path) -> None:
    """pycocotools loads our file with the same boxes and areas; its RLE decoding of our crowd mask agrees too.

    Its mask area of a polygon is a pixel count of the rasterised polygon, not the shoelace area we write: compared
    loosely, as COCO itself does.
    """
    from tests.peers import run_peer

    [out] = coco.save_coco(coco.load_coco(INSTANCES), tmp_path / "ours.json")
    got = run_peer(PYCOCOTOOLS_READ, str(out))
    ours = {a["id"]: a for a in doc_of(out)["annotations"]}
    assert {a["id"] for a in got["anns"]} == set(ours)
    for a in got["anns"]:
        assert a["bbox"] == ours[a["id"]]["bbox"] and a["area"] == ours[a["id"]]["area"]
    rle = next(a for a in got["anns"] if a["id"] == 105)
    assert rle["mask_area"] == 100 and rle["mask_bbox"] == [5, 5, 10, 10]
    poly = next(a for a in got["anns"] if a["id"] == 102)
    assert poly["mask_area"] == pytest.approx(3600, rel=0.1)
    assert {c["id"]: c["name"] for c in got["cats"]} == {1: "person", 3: "car", 18: "dog", 90: "ciervo été 🦌"}


PYCOCOTOOLS_RESULTS = """
import contextlib, json, sys
from pycocotools.coco import COCO
dets = [{"image_id": 1, "category_id": 3, "bbox": [12.5, 20.25, 100, 50.5], "score": 0.9},
        {"image_id": 2, "category_id": 18, "bbox": [0, 0, 320, 240], "score": 0.25}]
with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints its progress
    res = COCO(sys.argv[1]).loadRes(dets)
json.dump(res.dataset, open(sys.argv[2], "w"))
print(json.dumps({"anns": res.loadAnns(res.getAnnIds())}))
"""


@pytest.mark.slow
def test_pycocotools_written_file_reads_back(tmp_path: Path) -> None:
    """A file pycocotools wrote (``loadRes`` of detections, dumped) reads back with its boxes and scores.

    pycocotools gives box results a rectangle ``segmentation``, so ours reads them as 4-vertex polygon rows whose
    extent is the box (documented convention difference).
    """
    from tests.peers import run_peer

    res = tmp_path / "res.json"
    got = run_peer(PYCOCOTOOLS_RESULTS, str(INSTANCES), str(res))
    t = coco.load_coco(res)
    sizes = t.assets.set_index("image_id")[["width", "height"]]
    by_id = rows(t)
    for a in got["anns"]:
        r = by_id[str(a["id"])]
        w, h = sizes.loc[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        assert r["kind"] == "polygon" and r["score"] == a["score"]
        assert [r["x0"] * w, r["y0"] * h, r["x1"] * w, r["y1"] * h] == pytest.approx([x, y, x + bw, y + bh], abs=1e-9)


SUPERVISION_ROUND = """
import json, sys
import numpy as np
import supervision as sv
from PIL import Image
src, images, out = sys.argv[1:4]
ds = sv.DetectionDataset.from_coco(images_directory_path=images, annotations_path=src)
boxes = {}
for path, _, det in ds:
    boxes[path.rsplit("/", 1)[-1]] = [[*map(float, b), ds.classes[c]] for b, c in zip(det.xyxy, det.class_id)]
ds.as_coco(annotations_path=out)
print(json.dumps(boxes))
"""


def _images_for(doc: dict[str, Any], folder: Path) -> None:
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for img in doc["images"]:
        Image.new("RGB", (img["width"], img["height"])).save(folder / img["file_name"])


@pytest.mark.slow
def test_supervision_reads_ours_and_writes_what_we_read(tmp_path: Path) -> None:
    """supervision reads our boxes as ours (xyxy pixels) and its ``as_coco`` output reads back to the same boxes.

    supervision holds boxes as float32 (so they agree within 1e-6 of a pixel, not 1e-9), rasterises polygons to
    masks and writes them back as traced polygons (so only boxes are compared); its ``file_name`` is the image's
    base name and its ids start at 1.
    """
    from tests.peers import run_peer

    boxes = [
        {
            "dataset": "s",
            "asset": f"img{i}.png",
            "id": str(i * 10 + k),
            "label": lab,
            "kind": "box",
            "x0": 0.1 * k,
            "y0": 0.05 * k,
            "x1": 0.1 * k + 0.3,
            "y1": 0.05 * k + 0.5,
        }
        for i in range(3)
        for k, lab in enumerate(["cat", "dog"])
    ]
    assets = schema.assets_frame(
        [{"dataset": "s", "asset": f"img{i}.png", "width": 64 + i, "height": 48} for i in range(3)]
    )
    t = tables_of(schema.annotations_frame(boxes), assets)
    [ours] = coco.save_coco(t, tmp_path / "ours.json")
    _images_for(doc_of(ours), tmp_path / "images")
    got = run_peer(SUPERVISION_ROUND, str(ours), str(tmp_path / "images"), str(tmp_path / "sv.json"))
    sizes = assets.set_index("asset")
    for r in t.annotations.to_dict("records"):
        w, h = sizes.loc[r["asset"], ["width", "height"]]
        expect = [r["x0"] * w, r["y0"] * h, r["x1"] * w, r["y1"] * h, r["label"]]
        assert any(b[4] == expect[4] and b[:4] == pytest.approx(expect[:4], abs=1e-6) for b in got[r["asset"]])
    back = coco.load_coco(tmp_path / "sv.json")

    def key(df: pd.DataFrame) -> list[tuple[Any, ...]]:
        return sorted(df[["asset", "label", "x0", "y0", "x1", "y1"]].itertuples(index=False, name=None))

    for theirs, mine in zip(key(back.annotations), key(t.annotations), strict=True):
        assert theirs[:2] == mine[:2] and theirs[2:] == pytest.approx(mine[2:], abs=1e-6)


GLOBOX_ROUND = """
import json, sys
from globox import AnnotationSet
src, out = sys.argv[1:3]
s = AnnotationSet.from_coco(src)
boxes = {a.image_id: [[*b.ltrb, b.label] for b in a.boxes] for a in s}
s.save_coco(out, auto_ids=True)
print(json.dumps(boxes))
"""


@pytest.mark.slow
def test_globox_reads_ours_and_writes_what_we_read(tmp_path: Path) -> None:
    """globox reads our boxes (ltrb pixels) as ours, and its ``save_coco`` reads back to the same boxes.

    globox keeps boxes only (segmentation and keypoints are dropped) and renumbers image, annotation and category
    ids, so boxes are compared by image file name and label.
    """
    from tests.peers import run_peer

    t = coco.load_coco(INSTANCES)
    [ours] = coco.save_coco(t, tmp_path / "ours.json")
    got = run_peer(GLOBOX_ROUND, str(ours), str(tmp_path / "globox.json"))
    px = doc_of(ours)
    names = {c["id"]: c["name"] for c in px["categories"]}
    files = {i["id"]: i["file_name"] for i in px["images"]}
    for a in px["annotations"]:
        x, y, w, h = a["bbox"]
        assert [x, y, x + w, y + h, names[a["category_id"]]] in got[files[a["image_id"]]]
    back = coco.load_coco(tmp_path / "globox.json")
    sizes = t.assets.set_index("asset")[["width", "height"]]
    mine = sorted(
        (
            r["asset"],
            r["label"],
            *np.round(np.multiply([r["x0"], r["y0"], r["x1"], r["y1"]], [*sizes.loc[r["asset"]]] * 2), 9),
        )
        for r in t.annotations.to_dict("records")
    )
    theirs = sorted(
        (
            r["asset"],
            r["label"],
            *np.round(np.multiply([r["x0"], r["y0"], r["x1"], r["y1"]], [*sizes.loc[r["asset"]]] * 2), 9),
        )
        for r in back.annotations.to_dict("records")
    )
    assert theirs == mine
