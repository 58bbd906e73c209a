"""The connection: one import and export signature on every backend, named refusals, default datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import annotebook as ab
from annotebook.connection import Connection


def _coco(path: Path) -> Path:
    doc = {"images": [{"id": 1, "file_name": "x.png", "width": 10, "height": 10}],
           "categories": [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_a_file_cannot_be_exported_or_imported_into_by_name(tmp_path: Path) -> None:
    anns = ab.read(_coco(tmp_path / "a.json"))
    conn, _ = anns.annot._traced()
    assert conn.dataset == "a"  # a file's connection defaults to the file's dataset
    with pytest.raises(ab.NotSupported, match=r"annot\.save"):
        conn.export("yolo", tmp_path / "out")
    with pytest.raises(ab.NotSupported, match="read-only"):
        conn.import_files(tmp_path / "a.json")


def test_a_backend_without_transfers_is_not_supported(conn: ab.Connection) -> None:
    class Bare:
        name = "bare"

        def spec(self) -> dict[str, str]:
            return {}

    bare = Connection(Bare(), dataset="d")  # type: ignore[arg-type]
    with pytest.raises(ab.NotSupported, match="bare backend takes no exports"):
        bare.export("coco", "out.json")
    with pytest.raises(ab.NotSupported, match="bare backend takes no imports"):
        bare.import_files(["a.json"])


def test_import_and_export_return_typed_values(conn: ab.Connection, tmp_path: Path) -> None:
    report = conn.import_files(_coco(tmp_path / "a.json"), "t2", progress=False)
    assert isinstance(report, ab.ImportReport) and report.ok and report.dataset == "t2"
    result = conn.export("coco", tmp_path / "out.json", "t2", progress=False)
    assert isinstance(result, ab.ExportResult) and result.paths == [tmp_path / "out.json"]
    with pytest.raises(TypeError, match="wait"):
        conn.import_files(tmp_path / "a.json", "t2", wait=False)
