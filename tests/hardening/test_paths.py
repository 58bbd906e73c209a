"""Issue 16: an annotation file cannot make an export copy a file from outside its dataset."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from PIL import Image

import annotebook as ab
from annotebook.formats._paths import PathOutsideWarning


def _coco(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "images": [{"id": i + 1, "file_name": n, "width": 10, "height": 10} for i, n in enumerate(names)],
        "annotations": [
            {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}
            for i in range(len(names))
        ],
        "categories": [{"id": 1, "name": "cat"}],
    }
    path = folder / "instances.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside" / "secret.png"
    outside.parent.mkdir()
    Image.new("RGB", (10, 10), "red").save(outside)
    return outside


def _exported(out: Path) -> set[bytes]:
    return {p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_coco_file_name_outside_the_dataset_is_not_exported(tmp_path: Path, secret_file: Path, how: str) -> None:
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    Image.new("RGB", (10, 10), "blue").save(data / "ok.png")
    if how == "dotdot":
        name = os.path.relpath(secret_file, data)  # ../../outside/secret.png
    elif how == "absolute":
        name = str(secret_file)
    else:
        (data / "link.png").symlink_to(secret_file)
        name = "link.png"
    path = _coco(data, ["ok.png", name])
    with pytest.warns(PathOutsideWarning, match="outside the dataset"):
        anns = ab.read(path)
    assets = anns.annot.assets.set_index("asset")
    assert assets.loc["ok.png", "uri"] == str(data / "ok.png")
    assert assets["uri"].isna().sum() == 1  # the escaping one: an asset without pixels
    out = tmp_path / "out"
    anns.annot.save(out, format="yolo", images=True)
    assert secret_file.read_bytes() not in _exported(out)
    assert (data / "ok.png").read_bytes() in _exported(out)


def test_etc_paths_are_never_uris(tmp_path: Path) -> None:
    path = _coco(tmp_path / "d", ["../" * 40 + "etc/hostname", "/etc/passwd"])
    with pytest.warns(PathOutsideWarning):
        anns = ab.read(path)
    assert anns.annot.assets["uri"].isna().all()


def test_images_root_is_allowed_and_searched(tmp_path: Path, secret_file: Path) -> None:
    """With images= the user names where pixels may come from: files there are found, nothing else is."""
    path = _coco(tmp_path / "ann", ["secret.png", "../" * 40 + "etc/hostname"])
    with pytest.warns(PathOutsideWarning):
        anns = ab.read(path, images=secret_file.parent)
    uris = anns.annot.assets.set_index("asset")["uri"]
    assert uris["secret.png"] == str(secret_file)
    assert uris.isna().sum() == 1


def test_coco_layout_annotations_folder_reads_images_beside_it(tmp_path: Path) -> None:
    """annotations/instances.json with images/ beside the folder: inside the dataset, no warning."""
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(root / "images" / "a.png")
    path = _coco(root / "annotations", ["a.png"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anns = ab.read(path)
    assert anns.annot.assets["uri"].notna().all()


def test_an_export_never_copies_an_image_outside_its_images_folder(tmp_path: Path) -> None:
    """Asset names come from the platform: a name with ``..`` or an absolute one is refused before any copy."""
    from annotebook.backends._transfer import _copy_images

    picture = tmp_path / "a.png"
    picture.write_bytes(b"png")
    for name in ("../../escaped.png", str(tmp_path / "abs.png")):
        assets = ab.assets_frame([{"asset": "a", "name": "ok.png", "uri": str(picture)},
                                  {"asset": "b", "name": name, "uri": str(picture)}])  # fmt: skip
        with pytest.raises(ab.ValidationError, match="outside"):
            _copy_images(assets, tmp_path / "out")
        assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.png").exists()
    copied = _copy_images(ab.assets_frame([{"asset": "a", "name": "sub/ok.png", "uri": str(picture)}]), tmp_path / "o")
    assert copied == [tmp_path / "o" / "images" / "sub" / "ok.png"] and copied[0].read_bytes() == b"png"
