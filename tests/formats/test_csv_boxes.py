"""CSV four-corner and width-height (Datature): golden files from the docs, round trips, edge cases, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables
from annotebook.formats._kept import FieldNotKept
from annotebook.formats.csv_boxes import (
    csv_boxes_to_tables,
    load_csv_boxes,
    load_csv_four_corner,
    load_csv_width_height,
    save_csv_four_corner,
    save_csv_width_height,
    tables_to_csv_boxes,
)

DATA = Path(__file__).parent / "data" / "csv_boxes"
BOX = ["x0", "y0", "x1", "y1"]


def _tables(boxes: list[tuple], sizes: dict[str, tuple[int, int]]) -> Tables:
    rows = [
        {
            "dataset": "d",
            "asset": a,
            "id": f"{a}#{i}",
            "label": lab,
            "kind": "box",
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
        }
        for i, (a, lab, x0, y0, x1, y1) in enumerate(boxes)
    ]
    assets = [{"dataset": "d", "asset": a, "name": a, "width": w, "height": h} for a, (w, h) in sizes.items()]
    return Tables(schema.annotations_frame(rows), schema.assets_frame(assets), schema.labels_frame([]))


EDGE = _tables(
    [
        ("a.png", "whole", 0.0, 0.0, 1.0, 1.0),  # touches every border, x1 == width
        ("a.png", "one pixel", 3 / 640, 7 / 480, 4 / 640, 8 / 480),
        ("a.png", 'comma, "quote"', 0.1, 0.2, 0.3, 0.4),
        ("dir/b.png", "猫 ünï", 0.123456789, 0.5, 0.987654321, 0.75),
    ],
    {"a.png": (640, 480), "dir/b.png": (33, 17), "empty.png": (10, 10)},
)


def _assert_boxes(a: pd.DataFrame, b: pd.DataFrame, tol: float = 1e-9) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records"), strict=True):
        assert (ra["asset"], ra["label"]) == (rb["asset"], rb["label"])
        for c in BOX:
            assert math.isclose(ra[c], rb[c], abs_tol=tol), (c, ra[c], rb[c])


def test_golden_export_folder_reads_with_splits_and_sniffs() -> None:
    """A Datature csv_fourcorner export (normalised, split into train.csv / validate.csv), as the SDK docs show."""
    anns = ab.read(DATA / "export")
    assert anns.annot.assets["asset"].tolist() == ["boat1.png", "image.png", "boat2.png"]
    first = anns.iloc[0]
    assert (first["asset"], first["label"], first["split"]) == ("boat1.png", "boat", "train")
    assert [first[c] for c in BOX] == [0.2772511848341232, 0.34635416666666663, 0.54739336492891, 0.46875]
    assert anns["split"].tolist() == ["train", "train", "train", "validate"]
    assert anns["id"].tolist() == ["boat1.png#0", "image.png#0", "image.png#1", "boat2.png#0"]
    assert anns.iloc[3]["label"] == 'boat, large "hull"'
    assert anns.annot.labels["name"].tolist() == ["boat", "dog", 'boat, large "hull"']


def test_golden_pixels_need_sizes_from_assets() -> None:
    """boat1.png is 400 x 243 (the import log in Datature's docs); its box is the docs' create example."""
    path = DATA / "width_height_pixels.csv"
    with pytest.raises(FormatError, match=r"width_height_pixels.csv, line 2, field 'filename'.*size"):
        load_csv_width_height(path)
    sizes = pd.DataFrame({"asset": ["boat1.png", "benign (1).png"], "width": [400, 500], "height": [243, 300]})
    t = load_csv_width_height(path, assets=sizes)
    got = t.annotations.iloc[0]
    want = [0.425, 0.49382716049382713, 0.6, 0.6419753086419753]
    assert all(math.isclose(got[c], w, abs_tol=1e-12) for c, w in zip(BOX, want, strict=True))
    assert t.assets["width"].tolist() == [400, 500]


def test_sniff_picks_the_layout_from_the_header() -> None:
    from annotebook.formats import find_format

    assert find_format(DATA / "width_height_pixels.csv").name == "csv_width_height"
    assert find_format(DATA / "four_corner_pixels_bom_crlf.csv").name == "csv_four_corner"
    assert find_format(DATA / "export").name == "csv_four_corner"
    with pytest.raises(FormatError, match="field 'width'"):
        load_csv_four_corner(DATA / "width_height_pixels.csv")


def test_bom_crlf_unicode_and_sizes_from_images_beside_the_csv(tmp_path: Path) -> None:
    csv = tmp_path / "boxes.csv"
    csv.write_bytes((DATA / "four_corner_pixels_bom_crlf.csv").read_bytes())
    Image.new("RGB", (400, 243)).save(tmp_path / "boat1.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "empty.png")
    t = load_csv_four_corner(csv)
    row = t.annotations.iloc[0]
    assert row["label"] == "船"
    assert [row[c] for c in BOX] == [170 / 400, 120 / 243, 240 / 400, 156 / 243]
    assert t.assets[["asset", "width", "height"]].values.tolist() == [["boat1.png", 400, 243], ["empty.png", 8, 8]]
    assert t.assets["uri"].tolist() == [str(tmp_path / "boat1.png"), str(tmp_path / "empty.png")]
    assert len(t.annotations) == 1  # empty.png: an image without boxes


def test_exif_rotated_image_reports_its_displayed_size(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20))
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: displayed 20 x 40
    img.save(tmp_path / "r.jpg", exif=exif)
    (tmp_path / "b.csv").write_text("filename,xmin,ymin,xmax,ymax,label\nr.jpg,0,0,20,40,x\n")
    t = load_csv_four_corner(tmp_path / "b.csv")
    assert t.assets[["width", "height"]].values.tolist() == [[20, 40]]
    assert t.annotations[BOX].values.tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_normalisation_rule_and_override() -> None:
    text = "filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1,1,x\n"
    assert csv_boxes_to_tables(text).annotations[BOX].values.tolist() == [[0, 0, 1, 1]]  # all in [0, 1]: normalised
    pixels = csv_boxes_to_tables(text, normalized=False, sizes={"a.png": (4, 2)})
    assert pixels.annotations[BOX].values.tolist() == [[0, 0, 0.25, 0.5]]
    # one value > 1: the whole file is pixels
    mixed = csv_boxes_to_tables(text + "a.png,0,0,2,2,y\n", sizes={"a.png": (4, 2)})
    assert mixed.annotations[BOX].values.tolist() == [[0, 0, 0.25, 0.5], [0, 0, 0.5, 1.0]]


@pytest.mark.parametrize("layout", ["four_corner", "width_height"])
@pytest.mark.parametrize("normalized", [True, False])
def test_round_trip_edge_cases(tmp_path: Path, layout: str, normalized: bool) -> None:
    save = save_csv_four_corner if layout == "four_corner" else save_csv_width_height
    read = load_csv_four_corner if layout == "four_corner" else load_csv_width_height
    out = tmp_path / "out.csv"
    assert save(EDGE, out, normalized=normalized) == [out]
    back = read(out, normalized=normalized, assets=EDGE.assets)
    _assert_boxes(EDGE.annotations, back.annotations)


def test_pixel_output_is_whole_numbers_where_exact(tmp_path: Path) -> None:
    text = tables_to_csv_boxes(EDGE, normalized=False, by_split=False)[None]
    lines = text.splitlines()
    assert lines[0] == "filename,xmin,ymin,xmax,ymax,label"
    assert lines[1] == "a.png,0,0,640,480,whole"
    assert lines[2] == "a.png,3,7,4,8,one pixel"
    assert lines[3].endswith(',"comma, ""quote"""')


def test_write_by_split_into_a_folder_and_read_back(tmp_path: Path) -> None:
    t = load_csv_four_corner(DATA / "export")
    written = save_csv_four_corner(t, tmp_path / "out")
    assert sorted(p.name for p in written) == ["train.csv", "validate.csv"]
    back = load_csv_four_corner(tmp_path / "out")
    _assert_boxes(t.annotations, back.annotations, tol=0)
    assert back.annotations["split"].tolist() == t.annotations["split"].tolist()
    again = tmp_path / "again"
    save_csv_four_corner(back, again)
    assert (again / "train.csv").read_text() == (tmp_path / "out" / "train.csv").read_text()


def test_rows_without_split_and_empty_images(tmp_path: Path) -> None:
    files = save_csv_width_height(EDGE, tmp_path / "o", empty_images=True)
    assert [p.name for p in files] == ["annotations.csv"]
    back = load_csv_width_height(tmp_path / "o")
    assert "empty.png" in set(back.assets["asset"])
    assert len(back.annotations) == len(EDGE.annotations)


def test_unsupported_rows_raise_unless_skipped(tmp_path: Path) -> None:
    anns = pd.concat(
        [
            EDGE.annotations,
            schema.annotations_frame(
                [
                    {
                        "dataset": "d",
                        "asset": "a.png",
                        "id": "poly",
                        "kind": "polygon",
                        "points": [[0.1, 0.1, 0.2, 0.1, 0.2, 0.2]],
                    },
                    {
                        "dataset": "d",
                        "asset": "a.png",
                        "id": "rot",
                        "kind": "box",
                        "x0": 0.1,
                        "y0": 0.1,
                        "x1": 0.2,
                        "y1": 0.2,
                        "rotation": 30.0,
                    },
                ]
            ),
        ],
        ignore_index=True,
    )
    t = Tables(anns, EDGE.assets, EDGE.labels)
    with pytest.raises(FormatError, match=r"field 'kind'.*'poly' \(polygon\), 'rot' \(rotated box\)"):
        save_csv_four_corner(t, tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written
    save_csv_four_corner(t, tmp_path / "x", skip_unsupported=True)
    assert len(load_csv_four_corner(tmp_path / "x").annotations) == len(EDGE.annotations)


def test_a_split_that_is_not_a_plain_name_is_refused(tmp_path: Path) -> None:
    t = Tables(EDGE.annotations.assign(split="../escape"), EDGE.assets, EDGE.labels)
    with pytest.raises(FormatError, match="field 'split'"):
        save_csv_four_corner(t, tmp_path / "x")
    assert not (tmp_path / "x").exists() and not (tmp_path / "escape.csv").exists()


def test_pixel_output_without_sizes_is_an_error(tmp_path: Path) -> None:
    t = Tables(EDGE.annotations, schema.assets_frame([]), EDGE.labels)
    with pytest.raises(FormatError, match="field 'width'"):
        save_csv_four_corner(t, tmp_path / "x.csv", normalized=False)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1,1,x\na.png,0,0,1\n", 3, "field count"),
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1,1,x,extra\n", 2, "field count"),
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0,nan,1,1,x\n", 2, "ymin"),
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,inf,1,x\n", 2, "xmax"),
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,zero,1,x\n", 2, "xmax"),
        ("filename,xmin,ymin,xmax,ymax,label\na.png,0.5,0,0.2,1,x\n", 2, "xmax"),
        ("filename,xmin,ymin,width,height,label\na.png,0,0,-0.2,1,x\n", 2, "width"),
        ("filename,xmin,ymin,xmax,ymax,label\n,0,0,1,1,x\n", 2, "filename"),
        ("image,label\na.png,x\n", 1, "header"),
        ('filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1,1,"x\n', None, "csv"),
    ],
)
def test_hostile_rows_name_file_line_and_field(tmp_path: Path, text: str, line: int | None, field: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    where = f"line {line}, " if line is not None else ""
    with pytest.raises(FormatError, match=rf"bad.csv, {where}field '{field}'"):
        load_csv_boxes(path)


def test_non_utf8_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("filename,xmin,ymin,xmax,ymax,label\nä.png,0,0,1,1,x\n".encode("latin-1"))
    with pytest.raises(FormatError, match=r"latin1.csv.*UTF-8"):
        load_csv_four_corner(path)


def test_annot_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """SuperAnnotate -> CSV: the boxes survive, the other kinds are refused unless skipped."""
    anns = ab.read(Path(__file__).parent / "data" / "superannotate" / "project")
    with pytest.raises(FormatError, match="skip_unsupported"):
        anns.annot.save(tmp_path / "csv", format="csv")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path / "csv", format="csv_four_corner", skip_unsupported=True)
    back = ab.read(tmp_path / "csv", format="csv_four_corner", dataset="x")
    boxes = anns[anns["kind"] == "box"]
    assert back[BOX].values.tolist() == boxes[BOX].values.tolist()
    assert back["label"].tolist() == ["Human pose"]


def test_a_csv_whose_name_is_not_utf8_reads_and_is_named_in_errors(tmp_path: Path) -> None:
    import os

    good = os.path.join(os.fsencode(tmp_path), b"\xffgood.csv")
    with open(good, "w") as f:
        f.write("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1,1,x\n")
    assert load_csv_boxes(Path(os.fsdecode(good))).annotations["label"].tolist() == ["x"]
    bad = os.path.join(os.fsencode(tmp_path), b"\xffbad.csv")
    with open(bad, "w") as f:
        f.write("filename,xmin,ymin,xmax,ymax,label\na.png,0,0,1\n")
    with pytest.raises(FormatError, match=r"bad.csv, line 2, field 'field count'"):
        load_csv_boxes(Path(os.fsdecode(bad)))
