"""Pascal VOC: golden files from the devkit documentation, LabelImg, CVAT and Roboflow; the 1-based inclusive
pixel convention; round trips within VOC's whole pixels; hostile files; cross-validation with supervision and
globox."""

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
from annotebook.formats import Tables, _export, _voc_write, find_format
from annotebook.formats._kept import FieldNotKept
from annotebook.formats._voc_write import voc_files
from annotebook.formats.voc import load_voc, parse_voc, save_voc, tables_to_voc, voc_to_tables

DATA = Path(__file__).parent / "data" / "voc"
BOX = ["x0", "y0", "x1", "y1"]


def tables(rows: list[dict], sizes: dict[str, tuple[int, int]]) -> Tables:
    """Tables of ``rows``, with ids as a file gives them: ``<asset>#<position among the asset's rows>``."""
    seen: dict[str, int] = {}
    records = []
    for r in rows:
        n = seen[r["asset"]] = seen.get(r["asset"], -1) + 1
        records.append({"dataset": "d", "id": f"{r['asset']}#{n}", "kind": "box", **r})
    anns = schema.annotations_frame(records)
    assets = schema.assets_frame(
        [
            {"dataset": "d", "asset": a, "name": a.rsplit("/", 1)[-1], "width": w, "height": h}
            for a, (w, h) in sizes.items()
        ]
    )
    return Tables(anns, assets, schema.labels_frame([]))


def box(asset: str, label: str, x0: float, y0: float, x1: float, y1: float, **more: object) -> dict:
    return {"asset": asset, "label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1, **more}


def by_id(t: Tables) -> pd.DataFrame:
    return t.annotations.set_index("id").sort_index()


def doc(objects: str, size: str = "<size><width>640</width><height>480</height></size>") -> str:
    return f"<annotation><filename>a.jpg</filename>{size}{objects}</annotation>"


def obj(
    name: str = "cat", xmin: str = "1", ymin: str = "1", xmax: str = "640", ymax: str = "480", more: str = ""
) -> str:
    return (
        f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


# ---------------------------------------------------------------------------------------------------------------
# The pixel convention


def test_whole_image_is_xmin_1_xmax_width() -> None:
    """VOC counts pixels from 1, both ends inclusive: a box over a whole 640x480 image is 1, 1, 640, 480, which is
    annotebook's (0, 0, 1, 1); x0 = (xmin - 1) / W, x1 = xmax / W."""
    t = load_voc_text(doc(obj()))
    assert t.annotations[BOX].values.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    assert _box_text(tables_to_voc(t)["a.xml"]) == ["1", "1", "640", "480"]


def test_one_pixel_box_is_xmin_equal_xmax() -> None:
    """The last pixel of a 640x480 image: xmin = xmax = 640, ymin = ymax = 480."""
    t = load_voc_text(doc(obj(xmin="640", ymin="480", xmax="640", ymax="480")))
    assert t.annotations[BOX].values.tolist() == [[639 / 640, 479 / 480, 1.0, 1.0]]
    assert _box_text(tables_to_voc(t)["a.xml"]) == ["640", "480", "640", "480"]


def load_voc_text(text: str) -> Tables:
    return voc_to_tables([parse_voc(text, "a.xml")])


def _box_text(xml: str) -> list[str]:
    return [line.strip().split(">")[1].split("<")[0] for line in xml.splitlines() if "min>" in line or "max>" in line]


# ---------------------------------------------------------------------------------------------------------------
# Golden files


def test_devkit_golden() -> None:
    """VOC2012 devkit layout: Annotations/, ImageSets/Main/{train,val}.txt; the documentation's 2007_000027 example
    (a person with a head <part>, which is not read) and an image with a truncated, difficult person at the border."""
    t = load_voc(DATA / "devkit")
    a = by_id(t)
    assert a.loc["2007_000027.jpg#0", BOX].tolist() == pytest.approx([173 / 486, 100 / 500, 349 / 486, 351 / 500])
    assert a.loc["2007_000032.jpg#1", BOX].tolist() == pytest.approx([0.0, 209 / 281, 26 / 500, 1.0])
    assert a["label"].tolist() == ["person", "aeroplane", "person"]
    assert a["split"].tolist() == ["train", "validate", "validate"]
    # defaults (Unspecified, 0, 0) are implied; what differs is kept
    assert a["attributes"].tolist() == [None, {"pose": "Frontal"}, {"pose": "Rear", "truncated": 1, "difficult": 1}]
    assert t.assets[["asset", "width", "height"]].values.tolist() == [
        ["2007_000027.jpg", 486, 500],
        ["2007_000032.jpg", 500, 281],
    ]
    assert t.labels[["name", "index"]].values.tolist() == [["aeroplane", 0], ["person", 1]]


def test_labelimg_golden() -> None:
    """LabelImg: decimal coordinates, an escaped unicode name, a box over the whole image and one on its last pixel,
    a file without <size> whose image is beside it, and an image without objects."""
    t = load_voc(DATA / "labelimg")
    a = by_id(t)
    assert a.loc["cat.jpg#0", BOX].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert a.loc["cat.jpg#1", BOX].tolist() == [639 / 640, 479 / 480, 1.0, 1.0]
    assert a.loc["cat.jpg#2", "label"] == "猫 & chaté"
    assert a.loc["cat.jpg#2", BOX].tolist() == pytest.approx([99.5 / 640, 19.25 / 480, 300.75 / 640, 0.5])
    assert a.loc["cat.jpg#2", "attributes"] == {"pose": "Left", "difficult": 1}
    assert a.loc["nosize.png#0", BOX].tolist() == [0.0, 0.0, 0.5, 0.5]  # 40 x 30, from the image
    assets = t.assets.set_index("asset")
    assert (assets.loc["nosize.png", "width"], assets.loc["nosize.png", "height"]) == (40, 30)
    assert assets.loc["nosize.png", "uri"] == str(DATA / "labelimg" / "nosize.png")
    assert assets.loc["empty.jpg", "width"] == 50 and not (t.annotations["asset"] == "empty.jpg").any()


def test_cvat_golden_attributes() -> None:
    """CVAT's VOC export: <occluded>, and <attributes> name/value pairs as the text the file holds (issue 16: "007"
    must not become 7, "nan" must not vanish)."""
    a = by_id(load_voc(DATA / "cvat"))
    assert a.loc["frame_000000.PNG#0", "attributes"] == {
        "occluded": 1,
        "color": "red",
        "parked": "true",
        "doors": "4",
    }
    assert a.loc["frame_000000.PNG#0", BOX].tolist() == pytest.approx(
        [9.52 / 1280, 19.19 / 720, 300.78 / 1280, 400.2 / 720]
    )


def test_roboflow_polygon_golden() -> None:
    """The <polygon><x1/><y1/>... extension (Roboflow, supervision): vertices 1-based like the box corners, the
    polygon wins over its <bndbox>."""
    t = load_voc(DATA / "roboflow" / "poly.xml")
    assert t.annotations["kind"].tolist() == ["polygon"]
    assert t.annotations["points"][0] == ((0.1, 0.125, 0.6, 0.125, 0.35, 0.875),)
    assert t.annotations[BOX].values.tolist() == [[0.1, 0.125, 0.6, 0.875]]


@pytest.mark.parametrize("name", ["devkit", "labelimg", "cvat", "roboflow", "labelimg/cat.xml", "devkit/Annotations"])
def test_sniffing_picks_voc(name: str) -> None:
    assert find_format(DATA / name).name == "voc"
    assert len(ab.read(DATA / name))


def test_aliases() -> None:
    for alias in ("voc", "pascal_voc", "PascalVoc", "pascal-voc"):
        assert find_format(Path("x"), alias).name == "voc"


# ---------------------------------------------------------------------------------------------------------------
# Round trips

EDGE = tables(
    [
        box("a.jpg", "whole", 0.0, 0.0, 1.0, 1.0),  # touches every border, x1 == width
        box("a.jpg", "one pixel", 639 / 640, 479 / 480, 1.0, 1.0),
        box("a.jpg", "one pixel", 0.0, 0.0, 1 / 640, 1 / 480),
        box("a.jpg", '猫 <&> "q"', 0.123456789, 0.2, 0.987654321, 0.75, attributes={"difficult": 1, "color": "red"}),
        {"asset": "a.jpg", "label": "tri", "kind": "polygon", "points": [[0.1, 0.1, 0.9, 0.1, 0.5, 0.95]]},
        box("dir/b.png", "whole", 0.25, 0.5, 0.75, 1.0, attributes={"occluded": True, "pose": "Left"}),
    ],
    {"a.jpg": (640, 480), "dir/b.png": (33, 17), "empty.png": (10, 10)},
)


def test_write_read_round_trip_within_half_a_pixel(tmp_path: Path) -> None:
    """VOC stores whole pixels: each box edge and polygon vertex comes back within half a pixel (exactly, when
    pixel-aligned). Labels, attributes, the empty image and the asset folders survive."""
    save_voc(EDGE, tmp_path)
    back = load_voc(tmp_path)
    assert sorted(back.assets["asset"]) == ["a.jpg", "dir/b.png", "empty.png"]
    a = EDGE.annotations.set_index("id").sort_index()
    b = by_id(back)
    assert a.index.tolist() == b.index.tolist()
    assert a[["label", "kind"]].equals(b[["label", "kind"]])
    w = np.array([640, 480, 640, 480] * 5 + [33, 17, 33, 17], dtype=float).reshape(-1, 4)
    boxes = (a["kind"] == "box").to_numpy()
    err = np.abs(a[BOX].to_numpy(float) - b[BOX].to_numpy(float)) * w
    assert (err[boxes] <= 0.5 + 1e-9).all()
    assert err[[0, 1, 2]].max() < 1e-9  # pixel-aligned boxes are exact
    np.testing.assert_allclose(a.loc["a.jpg#4", "points"][0], b.loc["a.jpg#4", "points"][0], atol=0.5 / 640, rtol=0)
    assert b.loc["a.jpg#3", "attributes"] == {"difficult": 1, "color": "red"}
    assert b.loc["dir/b.png#0", "attributes"] == {"occluded": 1, "pose": "Left"}  # booleans as VOC's 0/1
    assert b["attributes"].iloc[:3].isna().all()


def test_read_write_read_golden_is_stable(tmp_path: Path) -> None:
    """Each golden folder reads, writes and reads back to the same tables, boxes within half a pixel (the LabelImg
    and CVAT files have decimal corners, written as whole pixels; the others are exact); a second write is
    byte-identical."""
    for name in ("devkit", "labelimg", "cvat", "roboflow"):
        src = load_voc(DATA / name)
        first = save_voc(src, tmp_path / name / "one")
        back = load_voc(tmp_path / name / "one")
        a, b = by_id(src), by_id(back)
        sizes = src.assets.set_index("asset")[["width", "height"]]
        wh = sizes.loc[a["asset"]].to_numpy(dtype=float)[:, [0, 1, 0, 1]]
        err = np.abs(a[BOX].to_numpy(float) - b[BOX].to_numpy(float)) * wh
        assert (err <= 0.5 + 1e-9).all(), name
        assert name in ("labelimg", "cvat") or err.max() < 1e-9
        for col in ("label", "kind", "attributes"):
            assert a[col].tolist() == b[col].tolist(), (name, col)
        pd.testing.assert_frame_equal(
            src.assets.drop(columns=["uri", "dataset"]), back.assets.drop(columns=["uri", "dataset"])
        )
        second = save_voc(back, tmp_path / name / "two")
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_written_document(tmp_path: Path) -> None:
    """The writer always writes pose / truncated / difficult (the devkit's parsers need difficult), occluded only
    when set, other attributes as CVAT's name/value pairs, and escapes names."""
    text = tables_to_voc(EDGE)["a.xml"]
    assert text.startswith("<annotation>\n\t<filename>a.jpg</filename>\n\t<size>\n\t\t<width>640</width>")
    assert text.count("<difficult>0</difficult>") == 4 and text.count("<difficult>1</difficult>") == 1
    assert '<name>猫 &lt;&amp;&gt; "q"</name>' in text
    assert "<attribute>\n\t\t\t\t<name>color</name>\n\t\t\t\t<value>red</value>" in text
    assert "<occluded>" not in text
    assert "<polygon><x1>65</x1><y1>49</y1><x2>577</x2><y2>49</y2><x3>321</x3><y3>457</y3></polygon>" in text
    assert "<folder>dir</folder>" in tables_to_voc(EDGE)["dir/b.xml"]


def test_a_ring_whole_pixels_would_close_keeps_decimals() -> None:
    """A tiny triangle whose last vertex rounds onto its first is written with 6 decimals, so it reads back as a
    triangle rather than being refused as a 2-point ring."""
    t = tables(
        [{"asset": "a.jpg", "label": "t", "kind": "polygon", "points": [[0.1, 0.1, 0.2, 0.1, 0.1004, 0.1004]]}],
        {"a.jpg": (100, 100)},
    )
    text = tables_to_voc(t)["a.xml"]
    assert "<x1>11.000000</x1><y1>11.000000</y1><x2>21.000000</x2>" in text
    back = voc_to_tables([parse_voc(text, "a.xml")])
    np.testing.assert_allclose(back.annotations["points"][0][0], [0.1, 0.1, 0.2, 0.1, 0.1004, 0.1004], atol=1e-8)


def test_rows_of_interleaved_assets_keep_their_order_in_each_file() -> None:
    """Rows need not be grouped by asset: each file lists its objects in the frame's order all the same."""
    rows = [box(a, f"{a[0]}{k}", 0, 0, (k + 1) / 8, (k + 1) / 8) for k in range(4) for a in ("a.jpg", "b.jpg")]
    t = tables(rows, {"a.jpg": (8, 8), "b.jpg": (8, 8)})
    files = tables_to_voc(t)
    grouped = tables_to_voc(Tables(t.annotations.sort_values("asset", kind="stable"), t.assets, t.labels))
    assert files == grouped
    assert [line.strip() for line in files["b.xml"].splitlines() if "<name>" in line] == [
        f"<name>b{k}</name>" for k in range(4)
    ]
    assert "<xmax>4</xmax>" in files["a.xml"] and "<xmax>5</xmax>" not in files["a.xml"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 8192])
def test_files_built_a_few_rows_at_a_time_are_the_same(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write builds its documents a chunk of rows at a time (whole assets each); the chunk size changes nothing,
    for rows grouped by asset or not, listed in the assets table's order or not."""
    files = tables_to_voc(EDGE)
    monkeypatch.setattr(_export, "CHUNK_ROWS", chunk)
    interleaved = EDGE.annotations.iloc[[0, 5, 1, 2, 3, 4]]  # each asset's rows in their order
    assert tables_to_voc(Tables(interleaved, EDGE.assets.iloc[::-1], EDGE.labels)) == {
        k: files[k] for k in ("empty.xml", "dir/b.xml", "a.xml")
    }
    assert list(voc_files(EDGE)) == list(files.items())


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_a_failure_found_late_in_the_write_leaves_the_destination_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """An attribute XML cannot carry is found only as its document is built, after other documents were staged:
    the write stops with a FormatError and leaves nothing behind, in a new folder or in an existing one."""
    rows = [box(f"{i}.jpg", "cat", 0, 0, 1, 1) for i in range(4)]
    rows[-1]["attributes"] = {"note": "bell\x07"}
    t = tables(rows, {f"{i}.jpg": (4, 4) for i in range(4)})
    monkeypatch.setattr(_export, "CHUNK_ROWS", 1)
    out = tmp_path / "out"
    if existing:
        save_voc(tables([box("0.jpg", "dog", 0, 0, 1, 1)], {"0.jpg": (4, 4)}), out)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    files = voc_files(t)  # every check of the whole frame passes: the control character is not seen yet
    assert len(files) == 4
    built: list[str] = []
    document = _voc_write._document
    monkeypatch.setattr(_voc_write, "_document", lambda image, *rest: built.append(image) or document(image, *rest))
    with pytest.raises(FormatError, match="control character"):
        save_voc(t, out)
    assert built == ["0.jpg", "1.jpg", "2.jpg"]  # staged before the fourth document failed
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["0.xml", "out"] if existing else [])


def test_a_row_without_an_asset_is_named(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "cat", 0, 0, 1, 1), box("b.jpg", "cat", 0, 0, 1, 1)], {"a.jpg": (4, 4)})
    t.annotations.loc[1, "asset"] = None
    with pytest.raises(FormatError, match=r"row 'b\.jpg#0' has no asset") as err:
        save_voc(t, tmp_path / "o")
    assert err.value.field == "asset" and not (tmp_path / "o").exists()


def test_coordinates_of_a_huge_image_are_written_whole() -> None:
    """Whole pixels far apart (a 300,000-pixel-wide scan) are written as plainly as small ones."""
    t = tables(
        [
            box("a.jpg", "cat", 0, 0, 1, 1),
            {"asset": "a.jpg", "label": "t", "kind": "polygon", "points": [[0, 0, 1, 0, 0.5, 1]]},
        ],
        {"a.jpg": (300_000, 7)},
    )
    text = tables_to_voc(t)["a.xml"]
    assert "<xmin>1</xmin>" in text and "<xmax>300000</xmax>" in text and "<ymax>7</ymax>" in text
    assert "<x1>1</x1><y1>1</y1><x2>300001</x2><y2>1</y2><x3>150001</x3><y3>8</y3>" in text


def test_save_to_one_xml_file(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "cat", 0, 0, 1, 1)], {"a.jpg": (4, 4)})
    save_voc(t, tmp_path / "one.xml")
    assert load_voc(tmp_path / "one.xml").annotations[BOX].values.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(FormatError, match="holds one image"):
        save_voc(EDGE, tmp_path / "many.xml")


def test_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """A YOLO folder read with ab.read saves as VOC through the accessor (sizes from the YOLO images)."""
    anns = ab.read(Path(__file__).parent / "data" / "yolo" / "roboflow")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path / "v", format="voc")
    back = ab.read(tmp_path / "v")
    assert sorted(back["asset"]) == sorted(anns["asset"])
    err = np.abs(back.sort_values("id")[BOX].to_numpy(float) - anns.sort_values("id")[BOX].to_numpy(float)) * 416
    assert (err <= 0.5 + 1e-9).all()


def test_unsupported_rows_and_missing_sizes(tmp_path: Path) -> None:
    rows = [
        box("a.jpg", "ok", 0, 0, 1, 1),
        box("a.jpg", "turned", 0.1, 0.1, 0.5, 0.5, rotation=10.0),
        {"asset": "a.jpg", "label": "road", "kind": "polyline", "points": [[0.1, 0.1, 0.2, 0.2]]},
    ]
    t = tables(rows, {"a.jpg": (4, 4)})
    with pytest.raises(FormatError, match=r"2 rows: 'a\.jpg#1' \(rotated box\), 'a\.jpg#2' \(polyline\)"):
        save_voc(t, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    assert len(save_voc(t, tmp_path / "o", skip_unsupported=True)) == 1
    t = tables([box("a.jpg", "ok", 0, 0, 1, 1)], {})
    with pytest.raises(FormatError, match=r"pixel size of asset 'a\.jpg'") as err:
        save_voc(t, tmp_path / "p")
    assert err.value.field == "width" and not (tmp_path / "p").exists()


def test_missing_size_taken_from_the_image_at_write(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    t = tables([box("a.png", "ok", 0, 0, 1, 1)], {})
    t.assets = schema.assets_frame(
        [{"dataset": "d", "asset": "a.png", "name": "a.png", "uri": str(tmp_path / "a.png")}]
    )
    assert "<width>20</width>" in tables_to_voc(t)["a.xml"]


# ---------------------------------------------------------------------------------------------------------------
# Hostile files: each error names the file and the field (XML syntax errors: the line)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>', "DOCTYPE", "refused"),
        ("<annotations><image/></annotations>", "annotation", "not <annotation>"),
        (doc("<object><bndbox/></object>"), "object[0].name", "missing <name>"),
        (doc("<object><name>a</name></object>"), "object[0].bndbox", "missing <bndbox>"),
        (doc(obj() + obj(xmin="abc")), "object[1].bndbox.xmin", "'abc'"),
        (doc(obj(ymax="nan")), "object[0].bndbox.ymax", "finite"),
        (doc(obj(xmin="inf")), "object[0].bndbox.xmin", "finite"),
        (
            doc("<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object>"),
            "object[0].bndbox.ymax",
            "missing <ymax>",
        ),
        (doc(obj(xmin="10", xmax="5")), "object[0].bndbox.xmax", "left of"),
        (doc(obj(), "<size><width>-640</width><height>480</height></size>"), "size.width", ">= 0"),
        (doc(obj(), "<size><width>64.5</width><height>480</height></size>"), "size.width", "whole number"),
        (doc(obj(), "<size><width>abc</width><height>480</height></size>"), "size.width", "'abc'"),
        (doc(obj(), ""), "size", "missing <size>"),
        (
            doc("<object><name>a</name><polygon><x1>1</x1><y1>1</y1><x2>5</x2><y2>5</y2></polygon></object>"),
            "object[0].polygon",
            "n >= 3",
        ),
        (
            doc(
                "<object><name>a</name><polygon><x1>1</x1><y1>1</y1><x2>5</x2><y2>5</y2><x3>1</x3><y3>1</y3>"
                "</polygon></object>"
            ),
            "object[0].polygon",
            "n >= 3",
        ),
        (
            doc(
                "<object><name>a</name><polygon><x1>1</x1><y1>1</y1><x2>5</x2><y2>5</y2><x3>9</x3><y4>1</y4>"
                "</polygon></object>"
            ),
            "object[0].polygon.y3",
            "missing <y3>",
        ),
        ("<annotation><filename>a.jpg</filename><size><width>640</width></size>", None, "not well-formed"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, field: str | None, words: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=words) as err:
        load_voc(path)
    assert (err.value.file, err.value.field) == (str(path), field)
    assert str(path) in str(err.value)


def test_truncated_xml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_text("<annotation>\n<filename>a.jpg</filename>\n<object>\n<name>x</na")
    with pytest.raises(FormatError, match="not well-formed") as err:
        load_voc(path)
    assert err.value.line == 4


def test_utf16_doctype_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "u16.xml"
    path.write_bytes(
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>'.encode("utf-16")
    )
    with pytest.raises(FormatError, match="refused"):
        load_voc(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("after-64k", ('<?xml version="1.0"?><!--' + "x" * (1 << 17) + '--><!DOCTYPE a [<!ENTITY x "y">]>'
                       "<annotation>&x;</annotation>").encode()),
        ("utf16le-no-bom", '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>'
         .encode("utf-16-le")),
        ("utf16be-no-bom", '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>'
         .encode("utf-16-be")),
        ("external", b'<?xml version="1.0"?><!DOCTYPE annotation SYSTEM "file:///etc/passwd"><annotation/>'),
    ],
)  # fmt: skip
def test_doctype_anywhere_in_any_encoding_is_refused(tmp_path: Path, name: str, data: bytes) -> None:
    """defusedxml refuses the declaration as expat reads it, not a prefix scan of the bytes."""
    path = tmp_path / f"{name}.xml"
    path.write_bytes(data)
    with pytest.raises(FormatError, match="DOCTYPE declarations are refused") as err:
        load_voc(path)
    assert (err.value.file, err.value.field) == (str(path), "DOCTYPE")


def test_utf16_without_bom_reads(tmp_path: Path) -> None:
    path = tmp_path / "u16.xml"
    path.write_bytes(('<?xml version="1.0" encoding="utf-16"?>' + doc(obj(name="chaté"))).encode("utf-16-le"))
    assert load_voc(path).annotations["label"].tolist() == ["chaté"]


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.xml"
    path.write_bytes(b"\xef\xbb\xbf" + doc(obj(name="chaté")).replace(">", ">\r\n").encode())
    t = load_voc(path)
    assert t.annotations["label"].tolist() == ["chaté"] and t.annotations[BOX].values.tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_missing_filename_uses_the_image_beside(tmp_path: Path) -> None:
    Image.new("RGB", (8, 4)).save(tmp_path / "shot.png")
    (tmp_path / "shot.xml").write_text("<annotation>" + obj(xmax="8", ymax="4") + "</annotation>")
    t = load_voc(tmp_path)
    assert t.assets[["asset", "width", "height"]].values.tolist() == [["shot.png", 8, 4]]


def test_zero_size_is_unknown(tmp_path: Path) -> None:
    """LabelImg writes 0 x 0 for images it could not read: without the image, that is a missing size."""
    path = tmp_path / "z.xml"
    path.write_text(doc(obj(), "<size><width>0</width><height>0</height></size>"))
    with pytest.raises(FormatError, match="missing <size>") as err:
        load_voc(path)
    assert err.value.field == "size"


def test_file_name_not_utf8(tmp_path: Path) -> None:
    try:
        (tmp_path / b"\xff.xml".decode("utf-8", "surrogateescape")).write_text(doc(obj()))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    with pytest.raises(FormatError, match="file name is not UTF-8") as err:
        load_voc(tmp_path)
    assert err.value.field == "name"


def test_not_a_path(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        load_voc(tmp_path / "nothing")


def test_rows_without_finite_geometry_are_an_error(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "x", 0, 0, math.inf, 1)], {"a.jpg": (4, 4)})
    with pytest.raises(FormatError, match="finite, ordered extent"):
        save_voc(t, tmp_path / "o")


# ---------------------------------------------------------------------------------------------------------------
# Cross-validation with supervision and globox (their own venv)

SIZES = {"a.jpg": (640, 480), "b.jpg": (333, 217), "c.jpg": (50, 40)}


def _peer_dataset(tmp_path: Path) -> tuple[Tables, Path, Path]:
    """Our VOC export of pixel-aligned boxes over three JPEG images (in their own folder)."""
    rows = [
        box("a.jpg", "cat", 0.0, 0.0, 1.0, 1.0),
        box("a.jpg", "dog", 64 / 640, 120 / 480, 320 / 640, 361 / 480),
        box("b.jpg", "dog", 1 / 333, 2 / 217, 300 / 333, 1.0),
        box("c.jpg", "bird", 49 / 50, 39 / 40, 1.0, 1.0),  # the last pixel
    ]
    t = tables(rows, SIZES)
    xml, images = tmp_path / "xml", tmp_path / "images"
    save_voc(t, xml)
    images.mkdir()
    for name, size in SIZES.items():
        Image.new("RGB", size, (120, 120, 120)).save(images / name)
    return t, xml, images


def _pixels(t: Tables) -> dict[str, list[list[float]]]:
    sizes = {a: (w, h) for a, w, h in zip(t.assets["asset"], t.assets["width"], t.assets["height"], strict=True)}
    out: dict[str, list[list[float]]] = {}
    for asset, x0, y0, x1, y1 in t.annotations[["asset", *BOX]].itertuples(index=False):
        w, h = sizes[asset]
        out.setdefault(asset, []).append([x0 * w, y0 * h, x1 * w, y1 * h])
    return out


SV_VOC = """
import json, sys
import supervision as sv
ds = sv.DetectionDataset.from_pascal_voc(images_directory_path=sys.argv[1], annotations_directory_path=sys.argv[2])
out = {}
for path, _, det in ds:
    name = path.rsplit("/", 1)[-1]
    out[name] = [[float(v) for v in b] + [ds.classes[c]] for b, c in zip(det.xyxy, det.class_id)]
ds.as_pascal_voc(annotations_directory_path=sys.argv[3])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_supervision_reads_our_voc_and_we_read_its(tmp_path: Path) -> None:
    """supervision 0.31 reads VOC as we do (xmin - 1, xmax; the one-pixel shift of supervision issue #144 was
    fixed in its PR #235): its pixel boxes equal ours with an offset of exactly 0 on every edge. Its
    as_pascal_voc output (round(x0 + 1), round(x1)) reads back in annotebook as the same boxes, exactly."""
    from tests.peers import run_peer

    t, xml, images = _peer_dataset(tmp_path)
    peer = run_peer(SV_VOC, str(images), str(xml), str(tmp_path / "theirs"))
    expected = _pixels(t)
    labels = t.annotations.groupby("asset", sort=False)["label"].apply(list).to_dict()
    for name, boxes in peer.items():
        offset = np.array([b[:4] for b in boxes]) - np.array(expected[name])
        np.testing.assert_array_equal(offset, 0.0)
        assert [b[4] for b in boxes] == labels[name]
    back = load_voc(tmp_path / "theirs")
    got = _pixels(back)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-9)


GLOBOX_VOC = """
import json, sys
from globox import AnnotationSet
s = AnnotationSet.from_pascal_voc(sys.argv[1])
print(json.dumps({a.image_id: [[b.xmin, b.ymin, b.xmax, b.ymax, b.label] for b in a.boxes] for a in s}))
s.save_pascal_voc(sys.argv[2])
"""


@pytest.mark.slow
def test_globox_reads_our_voc_and_we_read_its(tmp_path: Path) -> None:
    """globox 2.9 reads <bndbox> values as they are, as 0-based pixel edges: its xmin / ymin are exactly one
    pixel more than annotebook's edges (it does not apply VOC's 1-based convention); xmax / ymax agree. Its
    save_pascal_voc writes back the values it read (as floats, "65.0"), which annotebook reads as the same boxes."""
    from tests.peers import run_peer

    t, xml, _ = _peer_dataset(tmp_path)
    peer = run_peer(GLOBOX_VOC, str(xml), str(tmp_path / "theirs"))
    expected = _pixels(t)
    for name, boxes in peer.items():
        offset = np.array([b[:4] for b in boxes]) - np.array(expected[name])
        np.testing.assert_array_equal(offset, [[1.0, 1.0, 0.0, 0.0]] * len(boxes))
    back = load_voc(tmp_path / "theirs")
    got = _pixels(back)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-9)
    shutil.rmtree(tmp_path / "theirs")
