"""YOLO Keras/PyTorch: a golden file in Roboflow's layout, image sizes from disk or an assets table, round trips
within whole pixels, and hostile lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables, find_format
from annotebook.formats._kept import FieldNotKept
from annotebook.formats.yolo_keras import load_yolo_keras, save_yolo_keras, tables_to_yolo_keras

DATA = Path(__file__).parent / "data" / "yolo_keras" / "train"
BOX = ["x0", "y0", "x1", "y1"]


def tables(rows: list[dict], sizes: dict[str, tuple[int, int]]) -> Tables:
    anns = schema.annotations_frame([{"dataset": "d", "kind": "box", **r} for r in rows])
    assets = schema.assets_frame(
        [
            {"dataset": "d", "asset": a, "name": a.rsplit("/", 1)[-1], "width": w, "height": h}
            for a, (w, h) in sizes.items()
        ]
    )
    return Tables(anns, assets, schema.labels_frame([]))


def box(asset: str, label: str, x0: float, y0: float, x1: float, y1: float, **more: object) -> dict:
    return {"asset": asset, "label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1, **more}


def test_golden_file() -> None:
    """Roboflow layout: train/_annotations.txt and _classes.txt; a path with a space, decimal corners, an image
    without boxes (a line with its path only); sizes read from the images beside the file; split from the folder."""
    t = load_yolo_keras(DATA / "_annotations.txt")
    a = t.annotations.set_index("id")
    assert a.loc["img one.png#0", BOX].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert a.loc["img one.png#1", BOX].tolist() == pytest.approx([10 / 64, 5 / 48, 20 / 64, 15 / 48])
    assert a.loc["sub/b.png#0", BOX].tolist() == [31.5 / 32, 0.0, 1.0, 1 / 16]
    assert a["label"].tolist() == ["head", "helmet", "person"]
    assert set(a["split"]) == {"train"}
    assert t.assets[["asset", "width", "height"]].values.tolist() == [
        ["img one.png", 64, 48],
        ["sub/b.png", 32, 16],
        ["empty.png", 8, 8],
    ]
    assert t.labels[["name", "index"]].values.tolist() == [["head", 0], ["helmet", 1], ["person", 2]]


def test_sniffing() -> None:
    """The file, or Roboflow's folder holding it (which a Darknet sniff must not take for its _classes.txt)."""
    assert find_format(DATA / "_annotations.txt").name == "yolo_keras"
    assert find_format(DATA).name == "yolo_keras"
    assert len(ab.read(DATA)) == 3
    assert len(ab.read(DATA / "_annotations.txt")) == 3
    for alias in ("yolo_keras", "YoloKerasPytorch", "yolo_keras_pytorch"):
        assert find_format(Path("x"), alias).name == "yolo_keras"


@pytest.mark.parametrize("text", ["0 0.5 0.5 0.2 0.2\n", "cat\ndog\n", "a.jpg\nb.jpg\n"])
def test_not_sniffed_as_keras(tmp_path: Path, text: str) -> None:
    """A Darknet label file, a names file or a bare list of paths is not a Keras/PyTorch file."""
    path = tmp_path / "x.txt"
    path.write_text(text)
    try:
        name = find_format(path).name
    except FormatError:
        name = None
    assert name != "yolo_keras"


def test_sizes_from_an_assets_table(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("a.jpg 0,0,100,50,0\n")
    with pytest.raises(FormatError, match=r"pixel size of 'a\.jpg' is unknown") as err:
        load_yolo_keras(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 1, "width")
    assets = schema.assets_frame([{"asset": "a.jpg", "width": 200, "height": 100}])
    t = load_yolo_keras(path, assets=assets, classes=["cat"])
    assert t.annotations[BOX].values.tolist() == [[0.0, 0.0, 0.5, 0.5]]
    assert t.annotations["split"].tolist() == ["train"]


EDGE = tables(
    [
        box("a.jpg", "whole", 0.0, 0.0, 1.0, 1.0),
        box("a.jpg", "one pixel", 639 / 640, 479 / 480, 1.0, 1.0),
        box("a.jpg", "猫", 0.123456789, 0.2, 0.987654321, 0.75),
        box("dir/b c.png", "whole", 0.25, 0.5, 0.75, 1.0),
    ],
    {"a.jpg": (640, 480), "dir/b c.png": (33, 17), "empty.png": (10, 10)},
)


def test_round_trip_within_half_a_pixel(tmp_path: Path) -> None:
    """Written as whole pixels (rounded half up): edges come back within half a pixel, pixel-aligned ones exactly;
    with decimals=3, within 5e-4 pixel."""
    assets = EDGE.assets
    for decimals, tolerance in ((0, 0.5), (3, 5e-4)):
        out = tmp_path / f"d{decimals}" / "_annotations.txt"
        save_yolo_keras(EDGE, out, decimals=decimals)
        back = load_yolo_keras(out, assets=assets)
        assert back.annotations["label"].tolist() == EDGE.annotations["label"].tolist()
        assert back.annotations["asset"].tolist() == EDGE.annotations["asset"].tolist()
        wh = (
            assets.set_index("asset")
            .loc[EDGE.annotations["asset"], ["width", "height"]]
            .to_numpy(float)[:, [0, 1, 0, 1]]
        )
        err = np.abs(back.annotations[BOX].to_numpy(float) - EDGE.annotations[BOX].to_numpy(float)) * wh
        assert (err <= tolerance + 1e-9).all()
        assert err[:2].max() < 1e-9
        assert sorted(back.assets["asset"]) == ["a.jpg", "dir/b c.png", "empty.png"]


def test_written_text() -> None:
    text, names = tables_to_yolo_keras(EDGE)
    assert text.split("\n") == [
        "a.jpg 0,0,640,480,0 639,479,640,480,1 79,96,632,360,2",
        "dir/b c.png 8,9,25,17,0",
        "empty.png",
        "",
    ]
    assert names == "whole\none pixel\n猫\n"


def test_read_write_golden_is_stable(tmp_path: Path) -> None:
    src = load_yolo_keras(DATA / "_annotations.txt")
    save_yolo_keras(src, tmp_path)
    first = (tmp_path / "_annotations.txt").read_text()
    assert first.split("\n")[0] == "img one.png 0,0,64,48,0 10,5,20,15,1"
    back = load_yolo_keras(tmp_path / "_annotations.txt", assets=src.assets)
    save_yolo_keras(back, tmp_path / "again")
    assert (tmp_path / "again" / "_annotations.txt").read_text() == first
    assert (tmp_path / "_classes.txt").read_text() == "head\nhelmet\nperson\n"


def test_unsupported_rows(tmp_path: Path) -> None:
    t = tables(
        [
            box("a.jpg", "ok", 0, 0, 1, 1),
            {"asset": "a.jpg", "label": "p", "kind": "polygon", "points": [[0, 0, 1, 0, 1, 1]]},
        ],
        {"a.jpg": (4, 4)},
    )
    with pytest.raises(FormatError, match=r"1 rows: .*\(polygon\)"):
        save_yolo_keras(t, tmp_path / "o.txt")
    assert not (tmp_path / "o.txt").exists()
    save_yolo_keras(t, tmp_path / "o.txt", skip_unsupported=True)
    assert (tmp_path / "o.txt").read_text() == "a.jpg 0,0,4,4,0\n"


def test_missing_size_at_write(tmp_path: Path) -> None:
    t = tables([box("a.jpg", "ok", 0, 0, 1, 1)], {})
    with pytest.raises(FormatError, match="pixel size") as err:
        save_yolo_keras(t, tmp_path / "o.txt")
    assert err.value.field == "width"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("a.jpg 0,0,10,10\n", 1, "box1", "expected x1,y1,x2,y2,class"),
        ("a.jpg 0,0,10,10,0 0,0,10,x,0\n", 1, "box2.y2", "'x'"),
        ("a.jpg 0,0,10,10,0\nb.jpg 5,0,4,10,0\n", 2, "box1", "must not be less"),
        ("a.jpg 0,0,10,10,7\n", 1, "box1.class", "no name"),
        ("a.jpg 0,0,10,10,c\n", 1, "box1.class", "whole number"),
        ("a.jpg 0,0,10,10,0 extra\n", 1, "box", "'extra'"),
        ("0,0,10,10,0\n", 1, "path", "starts with the image path"),
        ("a.jpg 0,0,nan,10,0\n", 1, "box1.x2", "finite"),
    ],
)
def test_bad_lines(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    assets = schema.assets_frame([{"asset": a, "width": 100, "height": 100} for a in ("a.jpg", "b.jpg")])
    with pytest.raises(FormatError, match=words) as err:
        load_yolo_keras(path, assets=assets, classes=["cat"])
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)


def test_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """A VOC devkit read with ab.read saves as Keras/PyTorch through the accessor (sizes from the VOC files) and
    reads back with the same pixel boxes (VOC's are whole pixels, so exactly)."""
    anns = ab.read(Path(__file__).parent / "data" / "voc" / "devkit")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path, format="yolo_keras")
    assert (tmp_path / "_annotations.txt").read_text().split("\n")[
        1
    ] == "2007_000032.jpg 103,77,375,183,0 0,209,26,281,1"
    back = load_yolo_keras(tmp_path, assets=anns.annot.assets)
    np.testing.assert_allclose(back.annotations[BOX].to_numpy(float), anns[BOX].to_numpy(float), atol=1e-12)
    assert back.annotations["label"].tolist() == anns["label"].tolist()
