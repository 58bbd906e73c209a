"""ImportReport and ExportResult: the values every backend's import and export return."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.transfer_report import ImportReport, log_counts, logs_frame, reader_of, take_options


def test_import_report_counts_lists_and_prints_in_one_line():
    logs = logs_frame([{"file": "b.json", "line": 3, "level": "Error", "message": "no such asset"},
                       {"file": "a.json", "line": 1, "level": "Warning", "message": "overwritten"}])  # fmt: skip
    counts = log_counts(logs, ["a.json", "b.json"])
    rows = [
        {"file": f, "status": s, **counts[f], "bytes": 10} for f, s in (("a.json", "imported"), ("b.json", "rejected"))
    ]
    report = ImportReport.of("vi", "shapes", rows, logs, ["sess1"])
    assert report.imported == ["a.json"] and report.rejected == ["b.json"] and not report.ok
    assert report.counts == {"imported": 1, "rejected": 1, "pending": 0, "skipped": 0}
    assert list(report.files.columns) == ["file", "status", "errors", "warnings", "first_error", "bytes"]
    assert report.files["first_error"].tolist()[1] == "no such asset" and report.files["warnings"].tolist() == [1, 0]
    assert repr(report) == "<ImportReport vi shapes: 2 files, 1 imported, 1 rejected; 2 log lines>"
    assert "\n" not in repr(report)
    html = report._repr_html_()
    assert "<table" in html and "no such asset" in html and "1 rejected" in html
    frame = report.to_frame()
    frame.loc[0, "status"] = "rejected"
    assert report.imported == ["a.json"]  # a copy


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown file status"):
        ImportReport.of("local", "d", [{"file": "a", "status": "done"}])


def test_export_result_carries_what_the_attrs_did(tmp_path: Path):
    (tmp_path / "a.json").write_text("{}")
    result = ab.ExportResult.of("vi", "shapes", "Coco", tmp_path, [tmp_path / "a.json"], reader="coco", export_id="e1")
    assert result.paths == [tmp_path / "a.json"] and result.files["bytes"].tolist() == [2]
    assert (result.format, result.reader, result.dest, result.export_id) == ("Coco", "coco", tmp_path, "e1")
    assert repr(result) == f"<ExportResult vi shapes: 1 file (2 bytes) of Coco in {tmp_path}>"
    assert "<table" in result._repr_html_()
    assert isinstance(result.to_frame(), pd.DataFrame) and result.to_frame() is not result.files


def test_readers_of_platform_formats():
    assert reader_of("yolo_darknet") == "yolo" and reader_of("PascalVoc".lower()) == "voc"
    assert reader_of("tfrecord") is None


def test_options_are_taken_by_name():
    assert take_options({"seed": 3}, {"seed": None, "shuffle": None}, "x") == {"seed": 3, "shuffle": None}
    with pytest.raises(TypeError, match="x got unexpected option"):
        take_options({"sed": 3}, {"seed": None}, "x")
