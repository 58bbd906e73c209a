"""YOLO Keras/PyTorch: one text file, one image a line, boxes in pixels.

Pixel convention: ``x1,y1,x2,y2`` are 0-based pixel edges (a box over a whole 640-wide image is ``0,...,640``).

``path x1,y1,x2,y2,class x1,y1,x2,y2,class ...`` (qqwweee/keras-yolo3 ``voc_annotation.py``, Roboflow's "YOLO Keras
TXT" and "YOLOv4 PyTorch TXT", Datature's ``YoloKerasPytorch``); class names one a line in ``_classes.txt`` (Roboflow)
or ``classes.txt`` beside the file; a path may hold spaces. Reading needs each image's size to normalise: from the
image on disk (relative to the file) or an ``assets=`` table; a line whose image size is unknown is a FormatError
naming it. Written in whole pixels by default (``decimals=0``, rounded half up; keras-yolo3 parses values with
``int``), so a write then read is exact within half a pixel; an asset without boxes is a line with its path only.
Only unrotated boxes are carried: other rows are refused with a FormatError naming them unless
``skip_unsupported=True``. ``split`` comes from the file's name or folder (``train``, ``valid``, ``test``).

Sources: https://roboflow.com/formats/yolo-keras-txt, https://roboflow.com/formats/yolov4-pytorch-txt,
qqwweee/keras-yolo3 ``voc_annotation.py`` and ``yolo3/utils.py`` (``get_random_data``).

Keeps (`annotebook.formats._kept`, a write warns about the rest): score, split, status, author and attributes no.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from ._export import (
    asset_table,
    carried,
    check_rows,
    file_name,
    join_by_asset,
    size_or_raise,
    supported_geometry,
)
from ._image_size import image_size
from ._io import atomic_write, head, read_text
from ._registry import FormatSpec, Tables, register_format
from ._yolo_folder import NAMES_FILES, SPLIT_NAMES, YoloItem, parse_names_text
from ._yolo_rows import (
    RowColumns,
    asset_record,
    class_indices,
    class_number,
    class_numbers,
    finite_numbers,
    labels_table,
    names_by_index,
)

__all__ = ["load_yolo_keras", "save_yolo_keras", "tables_to_yolo_keras", "yolo_keras_to_tables"]


KERAS_NAMES_FILES = ("_classes.txt", "classes.txt")


_KERAS_BOX_FIELDS = ("x1", "y1", "x2", "y2", "class")


def _keras_tokens(line: str, file: str, line_no: int) -> tuple[str, list[str]]:
    """(image path, box tokens) of a line; a path may hold spaces, boxes (``a,b,c,d,k``) follow it."""
    tokens = line.split()
    first_box = next((i for i, t in enumerate(tokens) if "," in t), len(tokens))
    if first_box == 0:
        raise FormatError("a line starts with the image path", file=file, line=line_no, field="path")
    boxes = tokens[first_box:]
    stray = next((t for t in boxes if "," not in t), None)
    if stray is not None:
        raise FormatError(
            f"expected x1,y1,x2,y2,class after the path, got {stray!r}", file=file, line=line_no, field="box"
        )
    return " ".join(tokens[:first_box]), boxes


def _keras_box(
    token: str, k: int, size: tuple[int, int] | None, asset: str, file: str, line: int
) -> tuple[int, tuple[float, ...]]:
    fields = token.split(",")
    where = f"box{k}"
    if len(fields) != 5:
        raise FormatError(f"expected x1,y1,x2,y2,class, got {token!r}", file=file, line=line, field=where)
    x0, y0, x1, y1 = finite_numbers(fields[:4], [f"{where}.{n}" for n in _KERAS_BOX_FIELDS], file, line)
    cls = class_number(fields[4], file, line, f"{where}.class")
    if x1 < x0 or y1 < y0:
        raise FormatError(f"x2, y2 must not be less than x1, y1 in {token!r}", file=file, line=line, field=where)
    if size is None:
        raise FormatError(
            f"the pixel size of {asset!r} is unknown: put the image beside the file, or pass assets= with its size",
            file=file,
            line=line,
            field="width",
        )
    w, h = size
    return cls, (x0 / w, y0 / h, x1 / w, y1 / h)


def keras_paths(text: str, file: str = "") -> list[str]:
    """The image paths a Keras/PyTorch file names, in order (duplicates kept)."""
    return [_keras_tokens(line, file, n)[0] for n, line in enumerate(text.split("\n"), start=1) if line.strip()]


def yolo_keras_to_tables(
    text: str,
    sizes: Mapping[str, tuple[int, int]],
    names: Mapping[int, str] | None = None,
    dataset: str = "yolo_keras",
    file: str = "",
    split: str | None = None,
    uris: Mapping[str, str] | None = None,
) -> Tables:
    """The three tables of a Keras/PyTorch annotation text; ``sizes`` maps image path -> (width, height).

    >>> t = yolo_keras_to_tables("a.jpg 0,0,640,480,0\\n", {"a.jpg": (640, 480)}, {0: "cat"})
    >>> t.annotations[["asset", "label", "x0", "y0", "x1", "y1"]].to_dict("records")
    [{'asset': 'a.jpg', 'label': 'cat', 'x0': 0.0, 'y0': 0.0, 'x1': 1.0, 'y1': 1.0}]
    """
    cols, seen = RowColumns(), dict[str, None]()
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        asset, boxes = _keras_tokens(line, file, line_no)
        seen.setdefault(asset, None)
        for k, token in enumerate(boxes, start=1):
            cls, box = _keras_box(token, k, sizes.get(asset), asset, file, line_no)
            if names is not None and cls not in names:
                raise FormatError(f"class {cls} has no name", file=file, line=line_no, field=f"box{k}.class")
            cols.add(asset, cls, "box", box, None, math.nan, split)
    uris = uris or {}
    wh = {a: sizes.get(a, (None, None)) for a in seen}
    items = [YoloItem(a, split=split, width=wh[a][0], height=wh[a][1], uri=uris.get(a)) for a in seen]
    return Tables(
        annotations=cols.frame(dataset, names),
        assets=schema.assets_frame([asset_record(item, dataset) for item in items]),
        labels=labels_table(names, cols.cls, dataset),
    )


def tables_to_yolo_keras(
    tables: Tables, *, decimals: int = 0, skip_unsupported: bool = False, file: str | None = None
) -> tuple[str, str]:
    """(annotation text, classes text) of a Keras/PyTorch file: one line per asset, boxes in pixels.

    >>> t = yolo_keras_to_tables("a.jpg 0,0,640,480,0\\n", {"a.jpg": (640, 480)}, {0: "cat"})
    >>> tables_to_yolo_keras(t)
    ('a.jpg 0,0,640,480,0\\n', 'cat\\n')
    """
    if not isinstance(decimals, int) or not 0 <= decimals <= 17:
        raise ValueError(f"decimals must be a whole number from 0 to 17, got {decimals!r}")
    anns = tables.annotations
    box = (anns["kind"] == "box").to_numpy(dtype=bool) & supported_geometry(anns)
    anns = carried(anns, box, what="YOLO Keras/PyTorch", skip=skip_unsupported, file=file)
    check_rows(anns, file)
    classes = class_indices(tables.labels, pd.unique(anns["label"].to_numpy()))
    assets = asset_table(tables.assets, anns)
    tokens = _keras_box_tokens(anns, assets, classes, decimals, file)
    lines = []
    for asset, name in zip(assets["asset"], assets["name"], strict=True):
        path = file_name(asset, name)
        if not path.strip() or "\n" in path or "," in path or path != path.strip():
            raise FormatError(f"asset {asset!r} has a file name this format cannot write", file=file, field="name")
        lines.append(path + tokens.get(asset, "") + "\n")
    names = names_by_index(classes)
    return "".join(lines), "".join(f"{names[i]}\n" for i in range(len(names)))


def _keras_box_tokens(
    anns: pd.DataFrame, assets: pd.DataFrame, classes: Mapping[str, int], decimals: int, file: str | None
) -> dict[str, str]:
    """asset -> its boxes' ``x1,y1,x2,y2,class`` tokens, each after a space, in row order."""
    used = set(anns["asset"].tolist())
    columns = (assets[c].tolist() for c in ("asset", "width", "height", "uri"))
    sizes = {
        a: size_or_raise(a, w, h, u, what="YOLO Keras/PyTorch", file=file)
        for a, w, h, u in zip(*columns, strict=True)
        if a in used
    }
    wh = np.array([sizes[a] for a in anns["asset"].tolist()], dtype=float).reshape(-1, 2)
    px = anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float) * np.column_stack([wh, wh])
    number = "%d" if decimals == 0 else f"%.{decimals}f"
    fmt = " " + ",".join([number] * 4) + ",%d"
    values = np.floor(px + 0.5).astype(np.int64) if decimals == 0 else px
    index = class_numbers(anns["label"], classes).tolist()
    rows = zip(*(values[:, j].tolist() for j in range(4)), index, strict=True)
    return join_by_asset(anns["asset"], [fmt % row for row in rows])


def _keras_names(path: Path, classes: Sequence[str] | str | Path | None) -> dict[int, str] | None:
    if classes is not None and not isinstance(classes, (str, Path)):
        return dict(enumerate(classes))
    candidates = [Path(classes)] if classes is not None else [path.parent / n for n in KERAS_NAMES_FILES]
    candidates += [] if classes is not None else sorted(path.parent.glob("*.names"))
    for p in candidates:
        if p.is_file():
            return parse_names_text(read_text(p), str(p))
    return None


def _keras_sizes(
    path: Path, text: str, assets: pd.DataFrame | None
) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Image sizes from an ``assets=`` table (by asset or name), else from the images relative to the file."""
    given: dict[str, tuple[int, int]] = {}
    if assets is not None:
        table = schema.assets_frame(assets)
        for key in ("name", "asset"):  # the asset id wins over the bare name
            for k, w, h in zip(table[key], table["width"], table["height"], strict=True):
                if not (pd.isna(k) or pd.isna(w) or pd.isna(h)):
                    given[str(k)] = (int(w), int(h))
    sizes, uris = {}, {}
    for asset in dict.fromkeys(keras_paths(text, str(path))):
        image = path.parent / asset
        size = given.get(asset) or given.get(asset.rsplit("/", 1)[-1])
        if image.is_file():
            uris[asset] = str(image)
            size = size or image_size(image)
        if size is not None:
            sizes[asset] = size
    return sizes, uris


def load_yolo_keras(
    path: str | Path,
    dataset: str | None = None,
    assets: pd.DataFrame | None = None,
    classes: Sequence[str] | str | Path | None = None,
) -> Tables:
    """Read a YOLO Keras/PyTorch ``.txt`` file; image sizes from the images beside it or from ``assets=``.

    ``classes`` is a list of names or a names file (default: ``_classes.txt`` / ``classes.txt`` / ``*.names`` beside).

    >>> tables = load_yolo_keras("train/_annotations.txt")   # doctest: +SKIP
    """
    path = Path(path).absolute()
    if path.is_dir():  # Roboflow's folder: _annotations.txt and _classes.txt
        path = path / "_annotations.txt"
    text = read_text(path)
    sizes, uris = _keras_sizes(path, text, assets)
    split = SPLIT_NAMES.get(path.stem.lower()) or SPLIT_NAMES.get(path.parent.name.lower())
    names = _keras_names(path, classes)
    return yolo_keras_to_tables(text, sizes, names, dataset or path.stem, str(path), split, uris)


def save_yolo_keras(tables: Tables, path: str | Path, decimals: int = 0, skip_unsupported: bool = False) -> list[Path]:
    """Write a Keras/PyTorch file (``path``, or ``path/_annotations.txt`` for a folder) and ``_classes.txt`` beside.

    >>> save_yolo_keras(tables, "out/_annotations.txt")     # doctest: +SKIP
    """
    path = Path(path)
    target = path if path.suffix.lower() == ".txt" else path / "_annotations.txt"
    text, names = tables_to_yolo_keras(tables, decimals=decimals, skip_unsupported=skip_unsupported, file=str(target))
    return [atomic_write(target, text), atomic_write(target.parent / "_classes.txt", names)]


def _sniff_yolo_keras(path: Path) -> bool:
    if path.is_dir():
        return (path / "_annotations.txt").is_file() and _sniff_yolo_keras(path / "_annotations.txt")
    if not path.is_file() or path.suffix.lower() != ".txt" or path.name in (*NAMES_FILES, *KERAS_NAMES_FILES):
        return False
    data = head(path)
    lines = data.decode("utf-8", "replace").split("\n")
    lines = [line for line in (lines[:-1] if len(data) == 4096 else lines) if line.strip()]
    try:
        boxes = [_keras_tokens(line, "", 0)[1] for line in lines]
    except FormatError:
        return False
    return any(boxes) and all(_KERAS_BOX.fullmatch(t) for b in boxes for t in b)


_KERAS_BOX = re.compile(r"-?[\d.]+(?:e-?\d+)?(?:,-?[\d.]+(?:e-?\d+)?){3},\d+")


register_format(
    FormatSpec(
        name="yolo_keras",
        load=load_yolo_keras,
        save=save_yolo_keras,
        sniff=_sniff_yolo_keras,
        description="YOLO Keras/PyTorch: one .txt of 'path x1,y1,x2,y2,class ...' lines in pixels",
        aliases=("yolokeraspytorch", "yolo_keras_pytorch", "yolokeras"),
    )
)
