"""YOLO Darknet: golden folders in the Ultralytics, Roboflow, CVAT and LabelImg layouts, round trips within the
format's 6 decimals, edge cases, hostile files, and cross-validation with supervision and globox."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables, _export, find_format
from annotebook.formats import yolo as yolo_module
from annotebook.formats._data_yaml import dump_data_yaml, parse_data_yaml
from annotebook.formats._kept import FieldNotKept
from annotebook.formats.yolo import load_yolo, save_yolo, tables_to_yolo, yolo_files

DATA = Path(__file__).parent / "data" / "yolo"
BOX = ["x0", "y0", "x1", "y1"]
#: a corner is a centre minus half a size, each written with 6 decimals: 5e-7 + 2.5e-7, plus float rounding
QUANTUM = 7.5e-7 + 1e-12


def tables(rows: list[dict], sizes: dict[str, tuple[int, int]], labels: list[tuple[str, int]] | None = None) -> Tables:
    anns = schema.annotations_frame(
        [{"dataset": "d", "id": f"{r['asset']}#{i}", "kind": "box", **r} for i, r in enumerate(rows)]
    )
    assets = schema.assets_frame(
        [
            {"dataset": "d", "asset": a, "name": a.rsplit("/", 1)[-1], "width": w, "height": h}
            for a, (w, h) in sizes.items()
        ]
    )
    labels_ = schema.labels_frame([{"dataset": "d", "name": n, "index": i} for n, i in labels or []])
    return Tables(anns, assets, labels_)


def box(asset: str, label: str, x0: float, y0: float, x1: float, y1: float, **more: object) -> dict:
    return {"asset": asset, "label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1, **more}


def polygon(asset: str, label: str, *ring: float, **more: object) -> dict:
    return {"asset": asset, "label": label, "kind": "polygon", "points": [list(ring)], **more}


EDGE = tables(
    [
        box("a.jpg", "whole", 0.0, 0.0, 1.0, 1.0, split="train"),  # touches every border, x1 == width
        box("a.jpg", "one pixel", 639 / 640, 479 / 480, 1.0, 1.0, split="train"),
        box("a.jpg", "one pixel", 0.0, 0.0, 1 / 640, 1 / 480, split="train"),
        box("a.jpg", "猫 chaté", 0.123456789, 0.2, 0.987654321, 0.75, split="train"),
        polygon("a.jpg", "tri", 0.1, 0.1, 0.9, 0.1, 0.5, 0.95, split="train"),
        box("dir/b.png", "whole", 0.25, 0.5, 0.75, 1.0, split="validate"),
    ],
    {"a.jpg": (640, 480), "dir/b.png": (33, 17), "empty.png": (10, 10)},
)


def read(path: Path, **options: object) -> Tables:
    return load_yolo(path, **options)


def by_id(t: Tables) -> pd.DataFrame:
    return t.annotations.set_index("id").sort_index()


# ---------------------------------------------------------------------------------------------------------------
# Golden folders written from the formats' documentation


def test_ultralytics_layout_golden() -> None:
    """Ultralytics docs layout: data.yaml with `path`, `train`/`val` folders, `names` as an index map (one name
    quoted for its colon), comments and a `download: |` script the small YAML reader skips."""
    t = read(DATA / "ultralytics")
    a = by_id(t)
    assert a.loc["images/train/a.jpg#0", BOX].tolist() == [0.0, 0.0, 1.0, 1.0]  # the whole image
    assert a.loc["images/train/a.jpg#1", BOX].tolist() == pytest.approx([0.0, 0.0, 0.1, 0.2])  # touches 2 borders
    assert a.loc["images/train/a.jpg#2", BOX].tolist() == pytest.approx([0.9, 0.8, 1.0, 1.0])  # x1 == width
    one = a.loc["images/train/a.jpg#3", BOX].to_numpy(dtype=float) * [640, 480, 640, 480]
    assert one == pytest.approx([0, 0, 1, 1], abs=1e-5)  # a 1-pixel box
    assert a.loc["images/train/a.jpg#4", "kind"] == "polygon"
    assert a.loc["images/train/a.jpg#4", "points"] == ((0.1, 0.1, 0.5, 0.1, 0.5, 0.6, 0.1, 0.6),)
    assert a.loc["images/train/a.jpg#3", "label"] == "stop: sign"
    assert dict(zip(a.index, a["split"], strict=True)) == {
        "images/train/a.jpg#0": "train",
        "images/train/a.jpg#1": "train",
        "images/train/a.jpg#2": "train",
        "images/train/a.jpg#3": "train",
        "images/train/a.jpg#4": "train",
        "images/train/orphan#0": "train",
        "images/val/b.png#0": "validate",
    }
    assets = t.assets.set_index("asset")
    # a.jpg is stored 480x640 with EXIF orientation 6: its displayed size is 640x480
    assert (assets.loc["images/train/a.jpg", "width"], assets.loc["images/train/a.jpg", "height"]) == (640, 480)
    assert assets.loc["images/val/c.jpg", "width"] == 100  # an image without a label file is an asset
    assert not (t.annotations["asset"] == "images/val/c.jpg").any()
    orphan = assets.loc["images/train/orphan"]  # a label file without its image: no suffix, no size, no uri
    assert pd.isna(orphan["width"]) and pd.isna(orphan["uri"])
    assert assets.loc["images/val/b.png", "uri"] == str(DATA / "ultralytics" / "images" / "val" / "b.png")
    assert t.labels[["name", "index"]].values.tolist() == [
        ["person", 0],
        ["bicycle", 1],
        ["traffic light", 2],
        ["stop: sign", 3],
    ]


def test_read_from_data_yaml_path_is_the_same_as_the_folder() -> None:
    a, b = read(DATA / "ultralytics"), read(DATA / "ultralytics" / "data.yaml")
    pd.testing.assert_frame_equal(a.annotations.drop(columns="dataset"), b.annotations.drop(columns="dataset"))


def test_roboflow_layout_golden() -> None:
    """Roboflow YOLOv8 export: `<split>/images` + `<split>/labels`, `../train/images` paths, names as a flow list."""
    a = by_id(read(DATA / "roboflow"))
    assert a.loc["train/images/r1.jpg#0", "label"] == "helmet"
    assert a.loc["train/images/r1.jpg#0", BOX].tolist() == pytest.approx([0.56, 0.2725321888, 0.674, 0.4463519313])
    assert a.loc["valid/images/r2.jpg#0", "split"] == "validate"
    assert a.loc["train/images/r1.jpg#1", "split"] == "train"


def test_cvat_obj_data_and_list_files_without_images() -> None:
    """CVAT YOLO 1.1: obj.data names obj.names and train.txt; list entries carry Darknet's `data/` prefix; no images.
    The list gives the image names (suffix included) and the split; an empty label file is an image without rows."""
    t = read(DATA / "cvat")
    assert t.assets["asset"].tolist() == ["obj_train_data/frame_000000.jpg", "obj_train_data/frame_000001.jpg"]
    a = by_id(t)
    assert a["label"].tolist() == ["dog", "airplane"]
    assert a.loc["obj_train_data/frame_000000.jpg#0", BOX].tolist() == pytest.approx([0.25, 0.65, 0.35, 0.95])
    assert set(a["split"]) == {"train"}


def test_flat_layout_classes_txt_bom_crlf_unicode() -> None:
    """LabelImg-style classes.txt with unicode names; a label file with a BOM and CRLF line ends."""
    t = read(DATA / "flat")
    a = by_id(t)
    assert a["label"].tolist() == ["chaté", "猫"]
    assert a.loc["images/c.png#1", BOX].tolist() == [0.0, 0.5, 0.5, 1.0]
    assert a["split"].isna().all()
    assert sorted(t.assets["asset"]) == ["images/c.png", "images/d.png"]


@pytest.mark.parametrize("name", ["ultralytics", "roboflow", "cvat", "flat", "ultralytics/data.yaml"])
def test_sniffing_picks_yolo(name: str) -> None:
    assert find_format(DATA / name).name == "yolo"
    anns = ab.read(DATA / name)
    assert len(anns) and set(anns["kind"]) <= {"box", "polygon"}


def test_aliases() -> None:
    for alias in ("yolo", "yolo_darknet", "YoloDarknet", "yolo-darknet"):
        assert find_format(Path("x"), alias).name == "yolo"


# ---------------------------------------------------------------------------------------------------------------
# Round trips


def _copy_images(src: Tables, out: Path) -> None:
    for asset, uri in zip(src.assets["asset"], src.assets["uri"], strict=True):
        if isinstance(uri, str):
            (out / asset).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(uri, out / asset)


def test_read_write_read_golden_is_stable(tmp_path: Path) -> None:
    """Golden -> write -> read gives the same tables (images copied beside, so assets keep their names); a second
    write gives byte-identical files."""
    src = read(DATA / "ultralytics")
    first = save_yolo(src, tmp_path / "one")
    _copy_images(src, tmp_path / "one")
    back = read(tmp_path / "one")
    a, b = by_id(src), by_id(back)
    assert a.index.tolist() == b.index.tolist()
    np.testing.assert_allclose(a[BOX].to_numpy(float), b[BOX].to_numpy(float), atol=QUANTUM)
    assert a[["label", "kind", "split"]].equals(b[["label", "kind", "split"]])
    pd.testing.assert_frame_equal(
        src.assets.drop(columns=["uri", "dataset"]), back.assets.drop(columns=["uri", "dataset"])
    )
    pd.testing.assert_frame_equal(src.labels.drop(columns="dataset"), back.labels.drop(columns="dataset"))
    second = save_yolo(back, tmp_path / "two")
    assert [p.relative_to(tmp_path / "one") for p in first] == [p.relative_to(tmp_path / "two") for p in second]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, second, strict=True))


def test_images_true_copies_the_images_into_the_layout(tmp_path: Path) -> None:
    """With images=True the images land where their label files expect them, so the assets read back whole."""
    src = read(DATA / "roboflow")
    written = save_yolo(src, tmp_path, images=True)
    assert tmp_path / "train" / "images" / "r1.jpg" in written
    back = read(tmp_path)
    pd.testing.assert_frame_equal(
        src.assets.drop(columns=["uri", "dataset"]), back.assets.drop(columns=["uri", "dataset"])
    )
    assert back.annotations["split"].tolist() == src.annotations["split"].tolist()


def test_write_read_round_trip_is_exact_within_6_decimals(tmp_path: Path) -> None:
    """YOLO stores `%.6f` of centre and size: each corner comes back within 7.5e-7 of the image (QUANTUM), never
    further. Labels, kinds, splits and the empty image survive; asset names gain the images/<split>/ folder."""
    save_yolo(EDGE, tmp_path)
    back = read(tmp_path)
    moved = {"a.jpg": "images/train/a", "dir/b.png": "images/val/dir/b", "empty.png": "images/empty"}
    assert sorted(back.assets["asset"]) == sorted(moved.values())
    a = EDGE.annotations.assign(asset=EDGE.annotations["asset"].map(moved)).reset_index(drop=True)
    b = back.annotations.reset_index(drop=True)
    assert (a[["asset", "label", "kind", "split"]] == b[["asset", "label", "kind", "split"]]).all().all()
    np.testing.assert_allclose(a[BOX].to_numpy(float), b[BOX].to_numpy(float), atol=QUANTUM, rtol=0)
    np.testing.assert_allclose(a["points"][4][0], b["points"][4][0], atol=5e-7 + 1e-12, rtol=0)
    assert (tmp_path / "labels" / "empty.txt").read_text() == ""


def test_file_contents(tmp_path: Path) -> None:
    files = tables_to_yolo(EDGE)
    assert files["labels/train/a.txt"].splitlines()[:2] == [
        "0 0.500000 0.500000 1.000000 1.000000",
        "1 0.999219 0.998958 0.001563 0.002083",
    ]
    assert files["labels/train/a.txt"].splitlines()[4] == "3 0.100000 0.100000 0.900000 0.100000 0.500000 0.950000"
    assert files["classes.txt"] == "whole\none pixel\n猫 chaté\ntri\n"
    yaml = parse_data_yaml(files["data.yaml"], "data.yaml")
    names = {0: "whole", 1: "one pixel", 2: "猫 chaté", 3: "tri"}
    assert yaml == {"train": "images/train", "val": "images/val", "nc": 4, "names": names}


def test_precision_option(tmp_path: Path) -> None:
    files = tables_to_yolo(EDGE, precision=3)
    assert files["labels/train/a.txt"].splitlines()[3] == "2 0.556 0.475 0.864 0.550"
    with pytest.raises(ValueError, match="precision"):
        tables_to_yolo(EDGE, precision=-1)


def test_class_numbers_are_labels_index_with_gaps_written_blank(tmp_path: Path) -> None:
    """A COCO-numbered labels table (ids from 1, with a gap) keeps its numbers: classes.txt has a blank line for
    each unused index, data.yaml an empty name; reading back gives the same labels and indices."""
    t = tables(
        [box("a.jpg", "cat", 0, 0, 1, 1), box("a.jpg", "dog", 0, 0, 0.5, 0.5)],
        {"a.jpg": (4, 4)},
        labels=[("cat", 1), ("dog", 3)],
    )
    save_yolo(t, tmp_path)
    assert (tmp_path / "classes.txt").read_text() == "\ncat\n\ndog\n"
    assert (tmp_path / "labels" / "a.txt").read_text().split("\n")[:2] == [
        "1 0.500000 0.500000 1.000000 1.000000",
        "3 0.250000 0.250000 0.500000 0.500000",
    ]
    back = read(tmp_path)
    assert back.labels[["name", "index"]].values.tolist() == [["cat", 1], ["dog", 3]]
    assert back.annotations["label"].tolist() == ["cat", "dog"]


def test_reindex_numbers_classes_densely() -> None:
    """reindex=True numbers labels 0, 1, ... in index order; a platform's huge ids are renumbered by default."""
    rows = [box("a.jpg", "cat", 0, 0, 1, 1), box("a.jpg", "dog", 0, 0, 1, 1)]
    t = tables(rows, {"a.jpg": (4, 4)}, labels=[("cat", 7), ("dog", 3)])
    assert tables_to_yolo(t, reindex=True)["classes.txt"] == "dog\ncat\n"
    t = tables(rows, {"a.jpg": (4, 4)}, labels=[("cat", 3_348_212), ("dog", 3_348_100)])
    assert tables_to_yolo(t)["classes.txt"] == "dog\ncat\n"
    t = tables(rows, {"a.jpg": (4, 4)}, labels=[("cat", 120_000), ("dog", 100_000)])
    assert tables_to_yolo(t, reindex=False)["data.yaml"].count("\n") > 120_000  # every number, up to the highest


def test_labels_without_index_get_the_next_free_ones() -> None:
    t = tables(
        [box("a.jpg", "new", 0, 0, 1, 1), box("a.jpg", "old", 0, 0, 1, 1)], {"a.jpg": (4, 4)}, labels=[("old", 5)]
    )
    files = tables_to_yolo(t)
    assert files["labels/a.txt"].split("\n")[:2] == [
        "6 0.500000 0.500000 1.000000 1.000000",
        "5 0.500000 0.500000 1.000000 1.000000",
    ]


def test_two_labels_with_one_index_is_an_error() -> None:
    t = tables([box("a.jpg", "a", 0, 0, 1, 1)], {"a.jpg": (4, 4)}, labels=[("a", 0), ("b", 0)])
    with pytest.raises(FormatError, match="taken by 'a'"):
        tables_to_yolo(t)


def test_split_moves_an_image_between_split_folders(tmp_path: Path) -> None:
    """A YOLO-read asset keeps its path, unless its rows' split says another split: then it moves there."""
    src = read(DATA / "ultralytics")
    anns = src.annotations.copy()
    anns.loc[anns["asset"] == "images/val/b.png", "split"] = "test"
    files = tables_to_yolo(Tables(anns, src.assets, src.labels))
    assert "labels/test/b.txt" in files and "labels/val/b.txt" not in files
    assert "labels/train/a.txt" in files and "labels/val/c.txt" in files  # c.jpg has no rows: it stays
    yaml = parse_data_yaml(files["data.yaml"], "data.yaml")
    assert (yaml["train"], yaml["val"], yaml["test"]) == ("images/train", "images/val", "images/test")


def test_no_splits_names_the_images_folder_as_train_and_val(tmp_path: Path) -> None:
    """Ultralytics needs both keys; a folder named by two keys reads back without a split."""
    t = tables([box("a.jpg", "cat", 0, 0, 1, 1)], {"a.jpg": (4, 4)})
    save_yolo(t, tmp_path)
    assert parse_data_yaml((tmp_path / "data.yaml").read_text(), "") == {
        "train": "images",
        "val": "images",
        "nc": 1,
        "names": {0: "cat"},
    }
    (tmp_path / "images").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.jpg")  # the layout is images/a.jpg
    back = read(tmp_path)
    assert back.annotations["asset"].tolist() == ["images/a.jpg"] and back.annotations["split"].isna().all()


def test_two_assets_sharing_a_label_file_is_an_error() -> None:
    t = tables([box("a.jpg", "x", 0, 0, 1, 1), box("a.png", "x", 0, 0, 1, 1)], {"a.jpg": (4, 4), "a.png": (4, 4)})
    with pytest.raises(FormatError, match=r"share the label file labels/a\.txt"):
        tables_to_yolo(t)


def test_opaque_asset_ids_write_under_their_file_name() -> None:
    """Local-store / platform assets have an id like "17" and the file name in `name`."""
    t = tables([box("17", "x", 0, 0, 1, 1)], {"17": (4, 4)})
    t.assets.loc[0, "name"] = "cat photo.jpg"
    assert "labels/cat photo.txt" in tables_to_yolo(t)


def test_scores_read_and_written_when_asked(tmp_path: Path) -> None:
    """Ultralytics `save_conf` lines end in a confidence: read with scores=True, refused (with a hint) without."""
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "p.txt").write_text("0 0.5 0.5 0.2 0.2 0.87\n0 0.1 0.1 0.3 0.1 0.2 0.3 0.25\n")
    with pytest.raises(FormatError, match=r"line 1.*needs scores=True"):
        read(tmp_path)
    t = read(tmp_path, scores=True)
    assert t.annotations["score"].tolist() == [0.87, 0.25]
    assert t.annotations["kind"].tolist() == ["box", "polygon"]
    files = tables_to_yolo(t, scores=True)
    assert files["labels/p.txt"].split("\n") == [
        "0 0.500000 0.500000 0.200000 0.200000 0.870000",
        "0 0.100000 0.100000 0.300000 0.100000 0.200000 0.300000 0.250000",
        "",
    ]
    assert tables_to_yolo(t)["labels/p.txt"].split("\n")[0] == "0 0.500000 0.500000 0.200000 0.200000"


def test_closed_polygon_ring_is_opened(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "p.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.1\n")
    assert read(tmp_path).annotations["points"][0] == ((0.1, 0.1, 0.5, 0.1, 0.5, 0.5),)


def test_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """A VOC file read with ab.read saves as YOLO through the accessor and reads back with the same boxes."""
    anns = ab.read(Path(__file__).parent / "data" / "voc" / "devkit")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path / "y", format="yolo")
    back = ab.read(tmp_path / "y")
    np.testing.assert_allclose(back[BOX].to_numpy(float), anns[BOX].to_numpy(float), atol=QUANTUM)
    assert back["label"].tolist() == anns["label"].tolist()
    assert back["split"].tolist() == ["train", "validate", "validate"]


# ---------------------------------------------------------------------------------------------------------------
# Rows YOLO cannot carry


def test_unsupported_rows_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    rows = [
        box("a.jpg", "ok", 0, 0, 1, 1),
        box("a.jpg", "turned", 0.1, 0.1, 0.5, 0.5, rotation=30.0),
        {
            "asset": "a.jpg",
            "label": "body",
            "kind": "keypoints",
            "points": [[0.1, 0.1, 0.2, 0.2]],
            "visibility": [2, 2],
        },
        polygon("a.jpg", "holed", 0.1, 0.1, 0.9, 0.1, 0.5, 0.9)
        | {"points": [[0.1, 0.1, 0.9, 0.1, 0.5, 0.9], [0.4, 0.3, 0.6, 0.3, 0.5, 0.5]]},
        {"asset": "a.jpg", "label": "day", "kind": "tag", "value": True},
    ]
    t = tables(rows, {"a.jpg": (4, 4)})
    out = tmp_path / "out"
    with pytest.raises(FormatError) as err:
        save_yolo(t, out)
    message = str(err.value)
    for expected in (
        f"file {out}",
        "field 'kind'",
        "4 rows",
        "'a.jpg#1' (rotated box)",
        "'a.jpg#2' (keypoints)",
        "'a.jpg#3' (polygon of 2 parts)",
        "'a.jpg#4' (tag)",
        "skip_unsupported=True",
    ):
        assert expected in message
    assert not out.exists()
    save_yolo(t, out, skip_unsupported=True)
    assert (out / "labels" / "a.txt").read_text() == "0 0.500000 0.500000 1.000000 1.000000\n"


def test_rows_without_finite_geometry_are_an_error(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "x", math.nan, 0, 1, 1)], {"a.jpg": (4, 4)})
    with pytest.raises(FormatError, match=r"'a\.jpg#0' has no finite, ordered extent"):
        save_yolo(t, tmp_path / "o")
    t = tables([polygon("a.jpg", "x", 0.1, 0.1, 0.2, 0.2)], {"a.jpg": (4, 4)})
    with pytest.raises(FormatError, match="3 or more finite points"):
        save_yolo(t, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_names_a_class_name_file_cannot_hold() -> None:
    t = tables([box("a.jpg", "two\nlines", 0, 0, 1, 1)], {"a.jpg": (4, 4)})
    with pytest.raises(FormatError, match="cannot be a YOLO class name"):
        tables_to_yolo(t)


@pytest.mark.parametrize("chunk", [1, 2, 3, 8192])
def test_label_files_built_a_few_rows_at_a_time_are_the_same(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write builds its label files a chunk of rows at a time (whole assets each); the chunk size changes nothing,
    for rows grouped by asset or not, listed in the assets table's order or not."""
    files = tables_to_yolo(EDGE, scores=True)
    monkeypatch.setattr(_export, "CHUNK_ROWS", chunk)
    interleaved = EDGE.annotations.iloc[[0, 5, 1, 2, 3, 4]]  # each asset's rows in their order
    again = tables_to_yolo(Tables(interleaved, EDGE.assets.iloc[::-1], EDGE.labels), scores=True)
    assert again == files and list(again) == [*reversed(list(files)[:3]), "classes.txt", "data.yaml"]
    assert list(yolo_files(EDGE, scores=True)) == list(files.items())


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_a_failure_while_building_the_files_leaves_the_destination_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """Every check a YOLO table can fail comes before the first label file is built; should building fail all the
    same, after other files were staged, the write leaves nothing behind, in a new folder or in an existing one."""
    t = tables([box(f"{i}.jpg", "cat", 0, 0, 1, 1) for i in range(4)], {f"{i}.jpg": (4, 4) for i in range(4)})
    out = tmp_path / "out"
    if existing:
        save_yolo(tables([box("0.jpg", "dog", 0, 0, 1, 1)], {"0.jpg": (4, 4)}), out)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.setattr(_export, "CHUNK_ROWS", 1)
    calls: list[int] = []
    row_lines = yolo_module._row_lines

    def fail_on_the_fourth(*args: object, **kwargs: object) -> list[str]:
        calls.append(1)
        if len(calls) == 4:
            raise FormatError("row '3.jpg#0' broke", file=str(out), field="x0")
        return row_lines(*args, **kwargs)

    monkeypatch.setattr(yolo_module, "_row_lines", fail_on_the_fourth)
    with pytest.raises(FormatError, match="broke"):
        save_yolo(t, out)
    assert len(calls) == 4  # three label files were staged first
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.rglob(".annotebook-*")) and out.exists() == existing


def test_a_row_without_an_asset_is_named(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "cat", 0, 0, 1, 1), box("b.jpg", "cat", 0, 0, 1, 1)], {"a.jpg": (4, 4)})
    t.annotations.loc[1, "asset"] = None
    with pytest.raises(FormatError, match=r"row 'b\.jpg#1' has no asset") as err:
        save_yolo(t, tmp_path / "o")
    assert err.value.field == "asset" and not (tmp_path / "o").exists()


def test_writing_over_an_existing_export_replaces_its_files(tmp_path: Path) -> None:
    save_yolo(EDGE, tmp_path)
    t = tables([box("a.jpg", "whole", 0.5, 0.5, 1, 1, split="train")], {"a.jpg": (640, 480)})
    save_yolo(t, tmp_path)
    assert (tmp_path / "labels" / "train" / "a.txt").read_text() == "0 0.750000 0.750000 0.500000 0.500000\n"
    assert not list(tmp_path.glob(".annotebook-*"))


# ---------------------------------------------------------------------------------------------------------------
# Hostile files: each error names the file, the line and the field


def _dataset(tmp_path: Path, label_text: str | bytes, names: str = "cat\ndog\n") -> Path:
    (tmp_path / "labels").mkdir(exist_ok=True)
    (tmp_path / "classes.txt").write_text(names)
    path = tmp_path / "labels" / "x.txt"
    path.write_bytes(label_text if isinstance(label_text, bytes) else label_text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("0 0.5 0.5 0.1\n", 1, "fields", "expected 5 fields"),
        ("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1 0.3\n", 2, "fields", "got 6"),
        ("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4\n", 1, "fields", "got 8"),
        ("\n\n0 0.5 nan 0.1 0.1\n", 3, "cy", "finite"),
        ("0 0.5 0.5 inf 0.1\n", 1, "w", "finite"),
        ("0 0.5 0.5 0.1 -0.1\n", 1, "h", "negative"),
        ("0 0.5 0.5 0.1 abc\n", 1, "h", "'abc'"),
        ("cat 0.5 0.5 0.1 0.1\n", 1, "class", "whole number"),
        ("1.5 0.5 0.5 0.1 0.1\n", 1, "class", "whole number"),
        ("-1 0.5 0.5 0.1 0.1\n", 1, "class", ">= 0"),
        ("7 0.5 0.5 0.1 0.1\n", 1, "class", "class 7 has no name"),
        ("0 0.1 0.1 0.5 0.1 0.1 0.1\n", 1, "x1", "3 or more distinct points"),  # a closed 2-point "ring"
        ("0 0.1 0.1 0.5 0.1 0.5 x\n", 1, "y3", "'x'"),
    ],
)
def test_bad_label_lines(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path = _dataset(tmp_path, text)
    with pytest.raises(FormatError) as err:
        read(tmp_path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
    assert words in str(err.value) and str(path) in str(err.value)


def test_class_one_point_zero_is_class_one(tmp_path: Path) -> None:
    """np.savetxt writes every column as a float; Ultralytics and supervision read such class numbers."""
    _dataset(tmp_path, "1.0 0.5 0.5 0.1 0.1\n")
    assert read(tmp_path).annotations["label"].tolist() == ["dog"]


def test_label_file_not_utf8(tmp_path: Path) -> None:
    path = _dataset(tmp_path, b"0 0.5 0.5 0.1 0.1 \xff\n")
    with pytest.raises(FormatError, match="not UTF-8") as err:
        read(tmp_path)
    assert err.value.file == str(path)


def test_file_name_not_utf8(tmp_path: Path) -> None:
    _dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n")
    try:
        (tmp_path / "labels" / b"\xff.txt".decode("utf-8", "surrogateescape")).write_text("0 0.5 0.5 0.1 0.1\n")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    with pytest.raises(FormatError, match="file name is not UTF-8") as err:
        read(tmp_path)
    assert err.value.field == "name" and "labels" in str(err.value.file)


@pytest.mark.parametrize(
    ("yaml", "field", "words"),
    [
        ("names: cat\n", "names", "list or a map"),
        ("names:\n  0: cat\n  1: cat\n", "names", "repeats the name"),
        ("names:\n  a: cat\n", "names", "class numbers"),
        ("names: [cat, dog\n", "names", "while parsing a flow sequence"),
        ("names: [cat]\nkpt_shape: [17, 3]\n", "kpt_shape", "pose"),
        ("names:\n  0: cat\n  - dog\n", "names", "while parsing a block mapping"),
        ("just a line\n", "just a line", "expected 'key: value'"),
        ("train: images\n\tval: x\n", "train", "not valid YAML"),
    ],
)
def test_bad_data_yaml(tmp_path: Path, yaml: str, field: str, words: str) -> None:
    _dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text(yaml)
    with pytest.raises(FormatError, match=words) as err:
        read(tmp_path)
    assert (err.value.file, err.value.field) == (str(tmp_path / "data.yaml"), field)


def test_classes_txt_with_a_repeated_name(tmp_path: Path) -> None:
    _dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n", names="cat\ncat\n")
    with pytest.raises(FormatError, match="repeats the name 'cat'"):
        read(tmp_path)


def test_not_a_yolo_path(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(FormatError, match="YOLO dataset folder"):
        read(tmp_path / "x.txt")


def test_no_names_file_names_classes_by_number(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("3 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n")
    t = read(tmp_path)
    assert t.annotations["label"].tolist() == ["3", "0"]
    assert t.labels[["name", "index"]].values.tolist() == [["0", 0], ["3", 3]]


# ---------------------------------------------------------------------------------------------------------------
# data.yaml reader


def test_data_yaml_subset() -> None:
    text = """# comment
path: ../datasets/x  # trailing comment
train: [images/a, 'images/b c']
val: "images/v"
test:
names:
- person
- "traffic light"
- 'it''s'
nc: 3
flip_idx: {0: 1, 1: 0}
download: |
  names: not this
  train: nor this
"""
    assert parse_data_yaml(text, "d.yaml") == {
        "path": "../datasets/x",
        "train": ["images/a", "images/b c"],
        "val": "images/v",
        "test": None,
        "names": ["person", "traffic light", "it's"],
        "nc": 3,
    }


def test_data_yaml_classes_named_like_yaml_11_booleans() -> None:
    """``no`` / ``yes`` / ``on`` / ``off`` stay class names (YAML 1.2 booleans); what we write, plain
    ``yaml.safe_load`` (as Ultralytics reads it) reads back with the same names and folders."""
    import yaml

    text = "names: [no, yes, 'on', off]\ntrain: images\nnc: 4\n"
    assert parse_data_yaml(text, "d.yaml")["names"] == ["no", "yes", "on", "off"]
    names = {0: "no", 1: "yes", 2: "it's", 3: "ünïcode", 4: "1.5", 5: "null"}
    written = dump_data_yaml({"train": ["images/train"], "val": ["a b", "c"]}, names)
    assert yaml.safe_load(written) == {"train": "images/train", "val": ["a b", "c"], "nc": 6, "names": names}
    assert parse_data_yaml(written, "d.yaml")["names"] == names


# ---------------------------------------------------------------------------------------------------------------
# Cross-validation with supervision and globox (their own venv)


def _peer_dataset(tmp_path: Path) -> tuple[Tables, Path]:
    """Our YOLO export of boxes and a polygon over three real JPEG images of different sizes, all in `train`."""
    sizes = {"a.jpg": (640, 480), "b.jpg": (333, 217), "c.jpg": (50, 40)}
    rows = [
        box("a.jpg", "cat", 0.0, 0.0, 1.0, 1.0),
        box("a.jpg", "dog", 0.1234567, 0.25, 0.5, 0.75),
        box("b.jpg", "dog", 1 / 333, 2 / 217, 300.5 / 333, 1.0),
        box("c.jpg", "bird", 0.5, 0.5, 0.52, 0.525),
    ]
    t = tables([r | {"split": "train"} for r in rows], sizes, labels=[("cat", 0), ("dog", 1), ("bird", 2)])
    out = tmp_path / "ours"
    save_yolo(t, out)
    (out / "images" / "train").mkdir(parents=True)
    for name, size in sizes.items():
        Image.new("RGB", size, (120, 120, 120)).save(out / "images" / "train" / name)
    return t, out


def _pixels(t: Tables) -> dict[str, list[list[float]]]:
    sizes = {a: (w, h) for a, w, h in zip(t.assets["asset"], t.assets["width"], t.assets["height"], strict=True)}
    out: dict[str, list[list[float]]] = {}
    for asset, x0, y0, x1, y1 in t.annotations[["asset", *BOX]].itertuples(index=False):
        w, h = sizes[asset]
        out.setdefault(asset.rsplit("/", 1)[-1], []).append([x0 * w, y0 * h, x1 * w, y1 * h])
    return out


SV_YOLO = """
import json, sys
import supervision as sv
root = sys.argv[1]
ds = sv.DetectionDataset.from_yolo(
    images_directory_path=f"{root}/images/train",
    annotations_directory_path=f"{root}/labels/train",
    data_yaml_path=f"{root}/data.yaml",
)
out = {"classes": list(ds.classes), "boxes": {}}
for path, _, det in ds:
    name = path.rsplit("/", 1)[-1]
    out["boxes"][name] = [[float(v) for v in b] + [ds.classes[c]] for b, c in zip(det.xyxy, det.class_id)]
ds.as_yolo(images_directory_path=f"{sys.argv[2]}/images", annotations_directory_path=f"{sys.argv[2]}/labels",
           data_yaml_path=f"{sys.argv[2]}/data.yaml")
print(json.dumps(out))
"""


@pytest.mark.slow
def test_supervision_reads_our_yolo_and_we_read_its(tmp_path: Path) -> None:
    """supervision.DetectionDataset.from_yolo gives our pixel boxes (float32, so within 1e-3 px); its as_yolo
    output (5 decimals, its own data.yaml) reads back in annotebook as the same boxes within 5e-6 of the image.
    Both sides agree on the convention: normalised values times the image size, no pixel offset."""
    from tests.peers import run_peer

    t, ours = _peer_dataset(tmp_path)
    peer = run_peer(SV_YOLO, str(ours), str(tmp_path / "theirs"))
    assert peer["classes"] == ["cat", "dog", "bird"]
    expected = _pixels(t)
    labels = t.annotations.groupby("asset", sort=False)["label"].apply(list).to_dict()
    for name, boxes in peer["boxes"].items():
        assert [b[4] for b in boxes] == labels[name]
        np.testing.assert_allclose([b[:4] for b in boxes], expected[name], atol=1e-3)
    back = read(tmp_path / "theirs")
    assert sorted(back.assets["asset"]) == ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    got = _pixels(back)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=5e-6 * 640 + 1e-3)
    assert back.annotations["label"].tolist() == t.annotations["label"].tolist()


GLOBOX_YOLO = """
import json, sys
from globox import AnnotationSet
root = sys.argv[1]
s = AnnotationSet.from_yolo_darknet(f"{root}/labels/train", image_folder=f"{root}/images/train", image_extension=".jpg")
out = {a.image_id: [[b.xmin, b.ymin, b.xmax, b.ymax, b.label] for b in a.boxes] for a in s}
s.save_yolo_darknet(sys.argv[2])
s.save_pascal_voc(sys.argv[3])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_globox_reads_our_yolo_and_we_read_its(tmp_path: Path) -> None:
    """globox AnnotationSet.from_yolo_darknet gives our pixel boxes (class numbers as labels); its
    save_yolo_darknet output (full float repr, flat folder) reads back in annotebook as the boxes globox holds.

    globox's VOC writer (save_pascal_voc of the same set) writes the 0-based pixel edges it holds as VOC's
    xmin/ymin: VOC is 1-based, so annotebook reads those boxes shifted by exactly one pixel left and up
    (xmax/ymax agree). The offset is asserted, not hidden."""
    from annotebook.formats.voc import load_voc
    from tests.peers import run_peer

    t, ours = _peer_dataset(tmp_path)
    peer = run_peer(GLOBOX_YOLO, str(ours), str(tmp_path / "gy"), str(tmp_path / "gv"))
    expected = _pixels(t)
    for name, boxes in peer.items():
        np.testing.assert_allclose([b[:4] for b in boxes], expected[name], atol=1e-3)
        assert {b[4] for b in boxes} <= {"0", "1", "2"}
    # their YOLO: a flat folder of .txt files; give it our layout's images and the class names
    theirs = tmp_path / "theirs"
    shutil.copytree(tmp_path / "gy", theirs / "labels")
    shutil.copytree(ours / "images" / "train", theirs / "images")
    back = read(theirs, names=["cat", "dog", "bird"])
    got = _pixels(back)
    for name, boxes in peer.items():  # equal to the boxes globox holds, to float precision
        np.testing.assert_allclose(got[name], [b[:4] for b in boxes], atol=1e-9)
    voc = load_voc(tmp_path / "gv")
    got = _pixels(voc)
    for name in expected:
        shift = np.array(got[name]) - np.array(expected[name])
        np.testing.assert_allclose(shift[:, :2], -1.0, atol=1e-3)  # globox writes 0-based xmin/ymin into VOC
        np.testing.assert_allclose(shift[:, 2:], 0.0, atol=1e-3)
