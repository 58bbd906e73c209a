"""The embedded local store: datasets, samples on first use, imports and exports through files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.local import LocalBackend


def test_first_use_installs_the_samples(tmp_path: Path) -> None:
    """A new store holds the "shapes" dataset, with images on disk and a labels table."""
    conn = ab.connect("local", path=str(tmp_path / "s"))
    ds = conn.datasets()
    assert ds.dataset.tolist() == ["shapes"] and int(ds.annotations.iloc[0]) > 100
    assets = conn.assets("shapes")
    assert all(Path(u).is_file() for u in assets.uri)
    labels = conn.labels("shapes")
    assert {"circle", "square", "star-tips"} <= set(labels.name)
    tips = labels.set_index("name").loc["star-tips"]
    assert len(tips.keypoints) == 5 and tips.skeleton


def test_default_store_lives_under_annotebook_home(ab_home: Path) -> None:
    """connect() with no path uses ANNOTEBOOK_HOME/store."""
    conn = ab.connect()
    assert Path(conn.backend.spec()["path"]) == (ab_home / "store").resolve()


def test_unknown_dataset_is_named(conn: ab.Connection) -> None:
    """A dataset that does not exist is a NotFound naming what does."""
    with pytest.raises(ab.NotFound, match="'t'"):
        conn.assets("nope")


def _coco(path: Path, bad: bool = False) -> Path:
    doc = {
        "images": [{"id": 1, "file_name": "a0.png", "width": 100, "height": 80}],
        "categories": [{"id": 7, "name": "cat"}],
        "annotations": [
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [10, 8, 50, 40], "area": 2000, "iscrowd": 0}
        ],
    }
    if bad:
        doc["annotations"][0]["bbox"] = "oops"
    path.write_text(json.dumps(doc))
    return path


def test_import_files_adds_rows_and_reports(conn: ab.Connection, tmp_path: Path) -> None:
    """A COCO file imports into a new dataset: assets, labels (with the file's ids) and rows."""
    report = conn.import_files(_coco(tmp_path / "a.json"), dataset="imported", progress=False)
    assert report.files[["status", "format", "assets", "annotations"]].iloc[0].tolist() == ["imported", "coco", 1, 1]
    assert report.ok and report.added == {"assets": 1, "annotations": 1, "labels": 1}
    anns = conn.annotations("imported")
    row = anns.iloc[0]
    assert (row.label, row.x0, row.y0, row.x1, row.y1) == ("cat", 0.1, 0.1, 0.6, 0.6)
    assert conn.labels("imported").set_index("name").loc["cat", "index"] == 7


def test_a_bad_file_imports_nothing(conn: ab.Connection, tmp_path: Path) -> None:
    """One malformed file among good ones: ImportRejected naming it (its FormatError chained), nothing added."""
    good, bad = _coco(tmp_path / "good.json"), _coco(tmp_path / "bad.json", bad=True)
    with pytest.raises(ab.ImportRejected, match=r"bad\.json") as info:
        conn.import_files([good, bad], dataset="t", progress=False)
    assert isinstance(info.value.__cause__, ab.FormatError)
    report = info.value.report
    assert report.files.set_index("file")["status"].to_dict() == {str(good): "skipped", str(bad): "rejected"}
    assert report.rejected == [str(bad)] and "bad.json" in report.files["first_error"].iloc[1]
    assert report.logs["file"].tolist() == [str(bad)]
    assert len(conn.annotations("t")) == 10


def test_export_then_read_back(conn: ab.Connection, store: LocalBackend, tmp_path: Path) -> None:
    """Exporting the samples as COCO and reading the file back gives the same boxes."""
    conn = ab.connect("local", path=str(tmp_path / "samples"))
    result = conn.export("coco", tmp_path / "out" / "shapes.json", dataset="shapes", skip_unsupported=True)
    assert (result.backend, result.dataset, result.format, result.reader) == ("local", "shapes", "coco", "coco")
    assert result.paths == [tmp_path / "out" / "shapes.json"] and int(result.files["bytes"].iloc[0]) > 0
    back = ab.read(tmp_path / "out" / "shapes.json")
    ours = conn.annotations("shapes")
    boxes = ours[(ours.kind == "box") & (ours.rotation == 0)]
    theirs = back[back.kind == "box"]
    assert len(theirs) == len(boxes)
    key = ["asset", "label", "x0", "y0", "x1", "y1"]
    a = boxes[key].assign(asset=boxes.asset.map(conn.assets("shapes").set_index("asset")["name"]))
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True), theirs[key].sort_values(key).reset_index(drop=True), atol=1e-9
    )


def test_asset_statuses_push(conn: ab.Connection) -> None:
    """Statuses set in an assets frame (by pandas or the editor) are pushed by assets.annot.push()."""
    assets = conn.assets("t")
    assets.loc[assets.asset == "a1", "status"] = "Completed"
    planned = assets.annot.push(dry_run=True)
    assert planned[["asset", "new"]].values.tolist() == [["a1", "Completed"]]
    assert conn.assets("t").set_index("asset").loc["a1", "status"] != "Completed"
    assets.annot.push()
    assert conn.assets("t").set_index("asset").loc["a1", "status"] == "Completed"
    assert assets.annot.push().empty


def test_export_with_images_uses_the_formats_layout(tmp_path: Path) -> None:
    """YOLO places images under images/ beside labels/; COCO gets them in images/ beside the JSON."""
    conn = ab.connect("local", path=str(tmp_path / "samples"), dataset="shapes")
    conn.export("yolo", tmp_path / "yolo", images=True, skip_unsupported=True)
    labels = sorted(p.stem for p in (tmp_path / "yolo").rglob("labels/**/*.txt"))
    pictures = sorted(p.stem for p in (tmp_path / "yolo").rglob("images/**/*.*"))
    assert labels == pictures and len(pictures) == 36
    conn.export("coco", tmp_path / "coco" / "shapes.json", images=True, skip_unsupported=True)
    assert len(list((tmp_path / "coco" / "images").iterdir())) == 36
    assert len(ab.read(tmp_path / "yolo")) > 100
