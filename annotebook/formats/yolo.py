"""YOLO Darknet (one label file per image) and YOLO Keras/PyTorch (one text file of pixel boxes).

Pixel convention: Darknet values are fractions of the image on pixel edges, as annotebook's (``cx cy w h``
of a whole image is ``0.5 0.5 1 1``); Keras/PyTorch values are 0-based pixel edges (a whole 640-wide image is
``0,...,640``).

**Darknet** (``format="yolo"``): a folder. Each image ``.../images/<...>/x.jpg`` has its labels in
``.../labels/<...>/x.txt`` (the last ``images`` folder of the path becomes ``labels``; an image outside any
``images`` folder keeps its label file beside it), so the Ultralytics layout ``images/<split>/``, the flat
``images/`` + ``labels/`` and Roboflow's ``<split>/images`` all read. A line is ``class cx cy w h`` (a box) or
``class x1 y1 x2 y2 ...`` (a polygon, 3 or more points); with ``scores=True`` a trailing confidence (Ultralytics
``save_conf``) goes to ``score``. Class names come from ``data.yaml`` (``names`` as a list or an ``{index: name}``
map), else ``classes.txt`` / ``obj.names`` / ``*.names`` / ``*.labels``, else the class number itself; class
numbers are ``labels.index``. ``data.yaml`` (or CVAT's ``obj.data``) keys ``train`` / ``val`` / ``test`` name
image folders or list files and give ``split`` (``val`` is annotebook's ``validate``); without them the folder
names ``train``, ``val`` / ``valid``, ``test`` do. A folder named by two keys gives no split.

- asset: the image's path relative to the dataset folder (``images/train/x.jpg``). Label files do not record the
  image's extension: a label file whose image is not there gives ``images/train/x`` (no suffix), ``uri`` NaN and no
  size; its boxes still load, being normalised.
- An image without a label file is an asset with no annotations; the writer writes an empty label file for it.
- Written with ``precision=6`` decimals (``%.6f``): a write then read is exact within 1e-6 of the image's size.
  The writer also writes ``classes.txt`` (line i is class i; a blank line where no label has index i) and
  ``data.yaml``. Labels missing from the labels table get the next free index. Rotated boxes, multi-part polygons,
  polylines, keypoints (YOLO pose is not supported) and whole-image rows are refused with a FormatError naming them
  unless ``skip_unsupported=True``.

**Keras/PyTorch** (``format="yolo_keras"``): one ``.txt`` file, one image a line:
``path x1,y1,x2,y2,class x1,y1,x2,y2,class ...`` in pixels (qqwweee/keras-yolo3, Roboflow's "YOLO Keras TXT" and
"YOLOv4 PyTorch TXT", Datature's ``YoloKerasPytorch``); class names in ``_classes.txt`` / ``classes.txt`` beside
it. Reading needs each image's size: from the image on disk (relative to the file) or an ``assets=`` table.
Written as whole pixels by default (``decimals=0``; keras-yolo3 parses them with ``int``): exact within half a pixel.

Sources: Ultralytics "Object detection datasets" and "Instance segmentation datasets" docs
(https://docs.ultralytics.com/datasets/detect/, /datasets/segment/), Roboflow's format pages
(https://roboflow.com/formats/yolo-darknet-txt, /formats/yolo-keras-txt), CVAT's YOLO format page,
pjreddie/darknet ``replace_image_to_label``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from ._data_yaml import dump_data_yaml, parse_data_yaml
from ._export import asset_table, carried, file_name, size_or_raise
from ._image_size import IMAGE_SUFFIXES, image_size
from ._io import atomic_write, head, read_text
from ._registry import FormatSpec, Tables, register_format
from ._tables import complete_labels
from ._tree import safe_relative, write_tree

__all__ = [
    "YoloItem",
    "load_yolo",
    "load_yolo_keras",
    "save_yolo",
    "save_yolo_keras",
    "tables_to_yolo",
    "tables_to_yolo_keras",
    "yolo_keras_to_tables",
    "yolo_to_tables",
]

#: split folder / data.yaml key -> annotebook's split value
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "validate",
    "valid": "validate",
    "validate": "validate",
    "validation": "validate",
    "test": "test",
    "testing": "test",
}
#: annotebook's split value -> the folder and data.yaml key written
SPLIT_DIRS = {"train": "train", "validate": "val", "test": "test"}
NAMES_FILES = ("classes.txt", "obj.names", "_classes.txt", "_darknet.labels")


# ---------------------------------------------------------------------------------------------------------------
# Class names


def parse_names_text(text: str, file: str) -> dict[int, str]:
    """``classes.txt`` / ``obj.names``: line i names class i; a blank line leaves index i unnamed.

    >>> parse_names_text("cat\\n\\ndog\\n", "classes.txt")
    {0: 'cat', 2: 'dog'}
    """
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    names = {i: line.strip() for i, line in enumerate(lines) if line.strip()}
    return _unique(names, file)


def names_from_yaml(value: Any, file: str) -> dict[int, str]:
    """data.yaml ``names``: a list, or a map of index -> name; empty names leave their index unnamed."""
    if isinstance(value, list):
        pairs = list(enumerate(value))
    elif isinstance(value, dict):
        pairs = list(value.items())
        if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k, _ in pairs):
            raise FormatError("names keys must be class numbers 0, 1, ...", file=file, field="names")
    else:
        raise FormatError(f"names must be a list or a map, got {value!r}", file=file, field="names")
    names = {int(k): str(v).strip() for k, v in pairs if v is not None and str(v).strip()}
    return _unique(names, file)


def _unique(names: dict[int, str], file: str) -> dict[int, str]:
    seen: dict[str, int] = {}
    for i, name in names.items():
        if name in seen:
            raise FormatError(f"class {i} repeats the name {name!r} of class {seen[name]}", file=file, field="names")
        seen[name] = i
    return names


def class_indices(labels: pd.DataFrame, names: Iterable[str]) -> dict[str, int]:
    """label -> class number: ``labels.index`` where set, the next free numbers for the others."""
    table = complete_labels(labels, pd.DataFrame({"label": list(names), "dataset": None}))
    out: dict[str, int] = {}
    taken: dict[int, str] = {}
    for name, index in zip(table["name"], table["index"], strict=True):
        if pd.isna(name) or pd.isna(index):
            continue
        if int(index) < 0 or int(index) in taken and taken[int(index)] != name:
            raise FormatError(f"label {name!r} has index {index}, which is negative or taken", field="index")
        out[str(name)], taken[int(index)] = int(index), str(name)
    start = max(taken, default=-1) + 1
    for name in table["name"][table["index"].isna()].dropna():
        out.setdefault(str(name), start)
        start += out[str(name)] == start
    return out


# ---------------------------------------------------------------------------------------------------------------
# Darknet lines <-> rows (pure)


@dataclass(frozen=True)
class YoloItem:
    """One image of a Darknet dataset: its asset id, label file text (None: no label file) and what else is known."""

    asset: str
    text: str | None = None
    split: str | None = None
    width: int | None = None
    height: int | None = None
    uri: str | None = None
    file: str | None = None  # the label file, for error messages


class _Columns:
    """The annotation columns a Darknet or Keras file fills, appended row by row."""

    def __init__(self) -> None:
        self.asset: list[str] = []
        self.id: list[str] = []
        self.cls: list[int] = []
        self.kind: list[str] = []
        self.box: list[tuple[float, float, float, float]] = []
        self.points: list[Any] = []
        self.score: list[float] = []
        self.split: list[str | None] = []

    def add(self, asset: str, cls: int, kind: str, box: Any, points: Any, score: float, split: str | None) -> None:
        self.id.append(f"{asset}#{sum(1 for _ in ())}" if False else "")  # filled in frame()
        self.asset.append(asset)
        self.cls.append(cls)
        self.kind.append(kind)
        self.box.append(box)
        self.points.append(points)
        self.score.append(score)
        self.split.append(split)

    def frame(self, dataset: str, names: Mapping[int, str] | None) -> pd.DataFrame:
        assets = pd.Series(self.asset, dtype=object)
        ids = assets + "#" + assets.groupby(assets, sort=False).cumcount().astype(str) if len(assets) else assets
        box = np.array(self.box, dtype=float).reshape(-1, 4)
        labels = [names[c] for c in self.cls] if names is not None else [str(c) for c in self.cls]
        return schema.annotations_frame(
            {
                "dataset": [dataset] * len(self.asset),
                "asset": self.asset,
                "id": ids.tolist(),
                "label": labels,
                "kind": self.kind,
                "x0": box[:, 0],
                "y0": box[:, 1],
                "x1": box[:, 2],
                "y1": box[:, 3],
                "points": pd.Series(self.points, dtype=object),
                "score": self.score,
                "split": self.split,
            }
        )


_NAN_BOX = (math.nan,) * 4


def _class_number(text: str, file: str, line: int) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise FormatError(f"class must be a whole number, got {text!r}", file=file, line=line, field="class") from None
        value = int(number)
    if value < 0:
        raise FormatError(f"class must be >= 0, got {text!r}", file=file, line=line, field="class")
    return value


def _numbers(fields: list[str], names: Sequence[str], file: str, line: int) -> list[float]:
    try:
        values = [float(x) for x in fields]
    except ValueError:
        values = []
    if len(values) == len(fields) and math.isfinite(sum(values)):
        return values
    for x, name in zip(fields, names, strict=False):
        try:
            ok = math.isfinite(float(x))
        except ValueError:
            ok = False
        if not ok:
            raise FormatError(f"expected a finite number, got {x!r}", file=file, line=line, field=name)
    return values  # finite values whose sum overflowed


def _coordinate_names(n: int) -> list[str]:
    return [f"{axis}{k}" for k in range(1, n // 2 + 1) for axis in ("x", "y")]


_BOX_FIELDS = ("cx", "cy", "w", "h")


def _darknet_line(fields: list[str], file: str, line: int, scores: bool) -> tuple[int, str, Any, Any, float]:
    """(class, kind, box, points, score) of one label line."""
    n, score = len(fields), math.nan
    if scores and n % 2 == 0 and n >= 6:
        score = _numbers(fields[-1:], ["score"], file, line)[0]
        fields, n = fields[:-1], n - 1
    if n != 5 and (n < 7 or n % 2 == 0):
        hint = "; a trailing confidence needs scores=True" if n % 2 == 0 and n >= 6 else ""
        raise FormatError(
            f"expected 5 fields (class cx cy w h) or a class and 3 or more x y pairs, got {n}{hint}",
            file=file,
            line=line,
            field="fields",
        )
    cls = _class_number(fields[0], file, line)
    if n == 5:
        cx, cy, w, h = _numbers(fields[1:], _BOX_FIELDS, file, line)
        if w < 0 or h < 0:
            raise FormatError(f"negative size {w} x {h}", file=file, line=line, field="w" if w < 0 else "h")
        return cls, "box", (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), None, score
    values = _numbers(fields[1:], _coordinate_names(n - 1), file, line)
    if len(values) >= 8 and values[-2:] == values[:2]:
        values = values[:-2]  # a closed ring: the contract keeps rings open
    if len(values) < 6:
        raise FormatError("a polygon needs 3 or more distinct points", file=file, line=line, field="x1")
    return cls, "polygon", _NAN_BOX, (tuple(values),), score


def yolo_to_tables(
    items: Iterable[YoloItem], names: Mapping[int, str] | None = None, dataset: str = "yolo", scores: bool = False
) -> Tables:
    """The three tables of a Darknet dataset given as its images' label texts (pure: no file access).

    ``names`` maps class numbers to names (None: the numbers are the names).

    >>> t = yolo_to_tables([YoloItem("images/a.jpg", "0 0.5 0.5 1 1\\n")], {0: "cat"})
    >>> t.annotations[["asset", "id", "label", "x0", "y0", "x1", "y1"]].to_dict("records")
    [{'asset': 'images/a.jpg', 'id': 'images/a.jpg#0', 'label': 'cat', 'x0': 0.0, 'y0': 0.0, 'x1': 1.0, 'y1': 1.0}]
    """
    cols, asset_rows = _Columns(), []
    for item in items:
        asset_rows.append(_asset_record(item, dataset))
        file = item.file or item.asset
        for line_no, line in enumerate((item.text or "").split("\n"), start=1):
            fields = line.split()
            if not fields:
                continue
            cls, kind, box, points, score = _darknet_line(fields, file, line_no, scores)
            if names is not None and cls not in names:
                known = f"0..{max(names)}" if names else "none"
                raise FormatError(f"class {cls} has no name (named: {known})", file=file, line=line_no, field="class")
            cols.add(item.asset, cls, kind, box, points, score, item.split)
    return Tables(
        annotations=cols.frame(dataset, names),
        assets=schema.assets_frame(asset_rows),
        labels=_labels(names, cols.cls, dataset),
    )


def _asset_record(item: YoloItem, dataset: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "asset": item.asset,
        "name": PurePosixPath(item.asset).name,
        "width": item.width,
        "height": item.height,
        "uri": item.uri,
    }


def _labels(names: Mapping[int, str] | None, used: Iterable[int], dataset: str) -> pd.DataFrame:
    pairs = sorted(names.items()) if names is not None else [(c, str(c)) for c in sorted(set(used))]
    return schema.labels_frame({"dataset": [dataset] * len(pairs), "name": [n for _, n in pairs], "index": [i for i, _ in pairs]})
