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
import re
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
    """label -> class number: ``labels.index`` where set (the first row of a repeated name wins), the next free
    numbers for labels without one; two labels with one index are an error."""
    table = complete_labels(labels, pd.DataFrame({"label": list(names), "dataset": None}))
    out: dict[str, int] = {}
    taken: dict[int, str] = {}
    unnumbered: list[str] = []
    for name, index in zip(table["name"], table["index"], strict=True):
        if pd.isna(name) or str(name) in out:
            continue
        if pd.isna(index):
            unnumbered.append(str(name))
            continue
        if int(index) < 0 or int(index) in taken:
            clash = f"taken by {taken[int(index)]!r}" if int(index) in taken else "negative"
            raise FormatError(f"label {name!r} has class index {index}, {clash}", field="index")
        out[str(name)], taken[int(index)] = int(index), str(name)
    start = max(taken, default=-1) + 1
    for offset, name in enumerate(dict.fromkeys(n for n in unnumbered if n not in out)):
        out[name] = start + offset
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
        self.cls: list[int] = []
        self.kind: list[str] = []
        self.box: list[tuple[float, float, float, float]] = []
        self.points: list[Any] = []
        self.score: list[float] = []
        self.split: list[str | None] = []

    def add(self, asset: str, cls: int, kind: str, box: Any, points: Any, score: float, split: str | None) -> None:
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
            raise FormatError(
                f"class must be a whole number, got {text!r}", file=file, line=line, field="class"
            ) from None
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
    return schema.labels_frame(
        {"dataset": [dataset] * len(pairs), "name": [n for _, n in pairs], "index": [i for i, _ in pairs]}
    )


# ---------------------------------------------------------------------------------------------------------------
# Layout: image path <-> label path, splits


def label_path(image: PurePosixPath) -> PurePosixPath:
    """The label file of an image: the last ``images`` folder becomes ``labels``, the suffix ``.txt``.

    >>> str(label_path(PurePosixPath("train/images/a.b.jpg"))), str(label_path(PurePosixPath("obj/x.png")))
    ('train/labels/a.b.txt', 'obj/x.txt')
    """
    parts = list(image.parts)
    dirs = parts[:-1]
    if "images" in dirs:
        parts[len(dirs) - 1 - dirs[::-1].index("images")] = "labels"
    name = PurePosixPath(parts[-1])
    parts[-1] = (name.stem if name.suffix else name.name) + ".txt"
    return PurePosixPath(*parts)


def _image_of_label(label: PurePosixPath) -> PurePosixPath:
    """The image path a label file stands for when its image is absent: ``labels`` -> ``images``, no suffix."""
    parts = list(label.parts)
    dirs = parts[:-1]
    parts[len(dirs) - 1 - dirs[::-1].index("labels")] = "images"
    parts[-1] = PurePosixPath(parts[-1]).stem
    return PurePosixPath(*parts)


def _split_dir(parts: Sequence[str]) -> int | None:
    """Position of the split folder beside the last ``images`` folder (``images/<s>/`` or ``<s>/images/``)."""
    dirs = list(parts[:-1])
    if "images" not in dirs:
        return len(dirs) - 1 if dirs and dirs[-1].lower() in SPLIT_NAMES else None
    k = len(dirs) - 1 - dirs[::-1].index("images")
    if k + 1 < len(dirs) and dirs[k + 1].lower() in SPLIT_NAMES:
        return k + 1
    return k - 1 if k >= 1 and dirs[k - 1].lower() in SPLIT_NAMES else None


def split_of_path(asset: str) -> str | None:
    """The split a path's folders name, or None.

    >>> split_of_path("images/val/a.jpg"), split_of_path("valid/images/a.jpg"), split_of_path("images/a.jpg")
    ('validate', 'validate', None)
    """
    parts = PurePosixPath(asset).parts
    k = _split_dir(parts)
    return None if k is None else SPLIT_NAMES[parts[k].lower()]


def _relative_name(name: str) -> PurePosixPath:
    """A file name from a table as a safe relative path (a URL or absolute path keeps its last component)."""
    s = name.replace("\\", "/")
    if "://" in s:
        s = s.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    try:
        return safe_relative(s)
    except ValueError:
        try:
            return safe_relative(PurePosixPath(s).name)
        except ValueError:
            raise FormatError(f"asset {name!r} has no usable file name", field="name") from None


def image_path(name: str, split: str | None) -> PurePosixPath:
    """Where the writer places an image: its own ``images/...`` path, moved to the row's split folder if it has one.

    >>> str(image_path("a.jpg", "validate")), str(image_path("images/train/a.jpg", None))
    ('images/val/a.jpg', 'images/train/a.jpg')
    >>> str(image_path("images/train/a.jpg", "test")), str(image_path("images/a.jpg", "train"))
    ('images/test/a.jpg', 'images/train/a.jpg')
    """
    rel = _relative_name(name)
    folder = SPLIT_DIRS.get(split, split) if split else None
    parts = list(rel.parts)
    if "images" not in parts[:-1]:
        return PurePosixPath("images", *([folder] if folder else []), *parts)
    k = _split_dir(parts)
    if folder is None or (k is not None and SPLIT_NAMES[parts[k].lower()] == split):
        return rel
    if k is not None:
        parts[k] = folder
    else:
        at = len(parts) - 2 - parts[-2::-1].index("images")
        parts.insert(at + 1, folder)
    return safe_relative("/".join(parts))


# ---------------------------------------------------------------------------------------------------------------
# Writing Darknet (pure)


def _supported(anns: pd.DataFrame) -> np.ndarray:
    kind = anns["kind"].to_numpy(dtype=object)
    rotation = anns["rotation"].to_numpy(dtype=float)
    box = (kind == "box") & ((rotation == 0) | np.isnan(rotation))
    polygon = (kind == "polygon") & np.array([p is not None and len(p) == 1 for p in anns["points"]], dtype=bool)
    return box | polygon


def _check_rows(anns: pd.DataFrame, file: str | None) -> None:
    """Rows a writer carries must have a label and finite, ordered geometry: a FormatError names the first that not."""
    bad = anns["label"].isna().to_numpy()
    if bad.any():
        raise FormatError(f"row {anns['id'][bad].iloc[0]!r} has no label", file=file, field="label")
    ext = anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
    bad = ~np.isfinite(ext).all(axis=1) | (ext[:, 2] < ext[:, 0]) | (ext[:, 3] < ext[:, 1])
    if bad.any():
        row = anns[bad].iloc[0]
        raise FormatError(
            f"row {row['id']!r} has no finite, ordered extent ({row['x0']}, {row['y0']}, {row['x1']}, {row['y1']})",
            file=file,
            field="x0",
        )


def _asset_splits(anns: pd.DataFrame, file: str | None) -> dict[str, str]:
    pairs = anns[["asset", "split"]].dropna().drop_duplicates()
    twice = pairs["asset"].duplicated(keep=False).to_numpy()
    if twice.any():
        asset = pairs["asset"][twice].iloc[0]
        raise FormatError(f"asset {asset!r} has rows in more than one split", file=file, field="split")
    return dict(zip(pairs["asset"], pairs["split"], strict=True))


def _label_files(images: Mapping[str, PurePosixPath], file: str | None) -> dict[str, str]:
    """asset -> label file path; two assets that would share a label file are an error."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for asset, image in images.items():
        label = str(label_path(image))
        if label in seen:
            raise FormatError(f"assets {seen[label]!r} and {asset!r} would share the label file {label}", file=file)
        out[asset] = seen[label] = label
    return out


def _box_lines(anns: pd.DataFrame, classes: np.ndarray, precision: int, scores: bool) -> list[str]:
    x0, y0, x1, y1 = (anns[c].to_numpy(dtype=float) for c in ("x0", "y0", "x1", "y1"))
    cols = [
        classes.tolist(),
        ((x0 + x1) / 2).tolist(),
        ((y0 + y1) / 2).tolist(),
        (x1 - x0).tolist(),
        (y1 - y0).tolist(),
    ]
    fmt = "%d" + f" %.{precision}f" * 4
    lines = [fmt % row for row in zip(*cols, strict=True)]
    if scores:
        score = anns["score"].to_numpy(dtype=float)
        lines = [line if s != s else f"{line} {s:.{precision}f}" for line, s in zip(lines, score.tolist(), strict=True)]
    return lines


def _polygon_lines(anns: pd.DataFrame, classes: np.ndarray, precision: int, scores: bool) -> list[str]:
    templates: dict[int, str] = {}
    lines = []
    for c, points in zip(classes.tolist(), anns["points"], strict=True):
        ring = points[0]
        if len(ring) not in templates:
            templates[len(ring)] = "%d" + f" %.{precision}f" * len(ring)
        lines.append(templates[len(ring)] % (c, *ring))
    if scores:
        score = anns["score"].to_numpy(dtype=float)
        lines = [line if s != s else f"{line} {s:.{precision}f}" for line, s in zip(lines, score.tolist(), strict=True)]
    return lines


def _check_polygons(anns: pd.DataFrame, file: str | None) -> None:
    for row_id, points in zip(anns["id"], anns["points"], strict=True):
        ring = points[0]
        if len(ring) < 6 or len(ring) % 2 or not all(math.isfinite(v) for v in ring):
            raise FormatError(f"polygon {row_id!r} needs 3 or more finite points", file=file, field="points")


def _row_lines(anns: pd.DataFrame, classes: Mapping[str, int], precision: int, scores: bool) -> list[str]:
    """One Darknet line per row, in the frame's order."""
    index = anns["label"].map(classes).to_numpy(dtype=np.int64)
    is_box = (anns["kind"] == "box").to_numpy(dtype=bool)
    lines = np.empty(len(anns), dtype=object)
    lines[is_box] = _box_lines(anns[is_box], index[is_box], precision, scores)
    lines[~is_box] = _polygon_lines(anns[~is_box], index[~is_box], precision, scores)
    return lines.tolist()


def _yaml_splits(images: Iterable[PurePosixPath]) -> dict[str, list[str]]:
    """data.yaml ``train`` / ``val`` / ``test``: the image folders of each split; both train and val name the
    image folders when there are no split folders (Ultralytics needs both keys)."""
    found: dict[str, set[str]] = {}
    unsplit: set[str] = set()
    for image in images:
        parts = image.parts
        k = _split_dir(parts)
        dirs = list(parts[:-1])
        top = len(dirs) - dirs[::-1].index("images") if "images" in dirs else len(dirs)
        if k is None:
            unsplit.add("/".join(parts[:top]))
        else:
            key = SPLIT_DIRS[SPLIT_NAMES[parts[k].lower()]]
            found.setdefault(key, set()).add("/".join(parts[: max(k, top - 1) + 1]))
    if not found:
        return {"train": sorted(unsplit), "val": sorted(unsplit)} if unsplit else {}
    return {key: sorted(found[key]) for key in ("train", "val", "test") if key in found}


def tables_to_yolo(
    tables: Tables,
    *,
    precision: int = 6,
    scores: bool = False,
    skip_unsupported: bool = False,
    file: str | None = None,
) -> dict[str, str]:
    """The files of a Darknet dataset as ``{relative path: text}``: a label file per asset, classes.txt, data.yaml.

    >>> t = yolo_to_tables([YoloItem("images/a.jpg", "0 0.5 0.5 1 1\\n")], {0: "cat"})
    >>> tables_to_yolo(t)["labels/a.txt"]
    '0 0.500000 0.500000 1.000000 1.000000\\n'
    """
    if not isinstance(precision, int) or not 0 <= precision <= 17:
        raise ValueError(f"precision must be a whole number of decimals from 0 to 17, got {precision!r}")
    anns = tables.annotations
    anns = anns[carried(anns, _supported(anns), what="YOLO", skip=skip_unsupported, file=file)]
    _check_rows(anns, file)
    _check_polygons(anns[(anns["kind"] == "polygon").to_numpy(dtype=bool)], file)
    classes = class_indices(tables.labels, pd.unique(anns["label"].to_numpy()))
    assets = asset_table(tables.assets, anns)
    splits = _asset_splits(anns, file)
    images = {
        a: image_path(file_name(a, n), splits.get(a)) for a, n in zip(assets["asset"], assets["name"], strict=True)
    }
    label_files = _label_files(images, file)
    by_asset: dict[str, list[str]] = {}
    for asset, line in zip(anns["asset"], _row_lines(anns, classes, precision, scores), strict=True):
        by_asset.setdefault(asset, []).append(line + "\n")
    files = {label_files[a]: "".join(by_asset.get(a, ())) for a in assets["asset"]}
    names = _names_by_index(classes)
    files["classes.txt"] = "".join(f"{names.get(i, '')}\n" for i in range(len(names)))
    files["data.yaml"] = dump_data_yaml(_yaml_splits(images.values()), names)
    return files


def _names_by_index(classes: Mapping[str, int]) -> dict[int, str]:
    """index -> name for every index 0..max (unused indices named ""), checked to fit a line of classes.txt."""
    for name in classes:
        if "\n" in name or "\r" in name or name != name.strip() or not name:
            raise FormatError(
                f"label {name!r} cannot be a YOLO class name (blank, or spaces or a line break at its ends)",
                field="label",
            )
    by_index = {i: n for n, i in classes.items()}
    return {i: by_index.get(i, "") for i in range(max(by_index, default=-1) + 1)}


# ---------------------------------------------------------------------------------------------------------------
# Reading and writing Darknet folders


@dataclass
class _Config:
    names: dict[int, str] | None
    sources: list[tuple[str, Path]]  # (split, image folder or list file)


def _root_of(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        return path, None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return path.parent, path
    raise FormatError("expected a YOLO dataset folder or its data.yaml", file=str(path))


def _find_yaml(root: Path) -> Path | None:
    if (root / "data.yaml").is_file():
        return root / "data.yaml"
    for p in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        if b"names" in head(p, 1 << 16):
            return p
    return None


def _resolve(base: Path, value: Any) -> Path | None:
    """A data.yaml / obj.data path, relative to the dataset folder; Ultralytics' ``../`` fallback included."""
    if not isinstance(value, str) or not value:
        return None
    p = base / value
    if not p.exists() and value.startswith(("../", "data/")):
        p = base / value.split("/", 1)[1]
    return p if p.exists() else None


def _read_config(root: Path, yaml_file: Path | None) -> _Config:
    names: dict[int, str] | None = None
    sources: list[tuple[str, Path]] = []
    yaml_file = yaml_file or _find_yaml(root)
    if yaml_file is not None:
        data = parse_data_yaml(read_text(yaml_file), str(yaml_file))
        if data.get("kpt_shape") is not None:
            raise FormatError("YOLO pose labels (kpt_shape) are not supported", file=str(yaml_file), field="kpt_shape")
        if data.get("names") is not None:
            names = names_from_yaml(data["names"], str(yaml_file))
        base = root / data["path"] if isinstance(data.get("path"), str) and (root / data["path"]).is_dir() else root
        for key in ("train", "val", "test"):
            values = data.get(key) if isinstance(data.get(key), list) else [data.get(key)]
            sources += [(SPLIT_NAMES[key], p) for p in (_resolve(base, v) for v in values) if p is not None]
    if (root / "obj.data").is_file():  # Darknet / CVAT: "key = value" lines
        pairs = [line.partition("=") for line in read_text(root / "obj.data").split("\n")]
        obj = {k.strip(): v.strip() for k, sep, v in pairs if sep}
        for key in ("train", "valid"):
            p = _resolve(root, obj.get(key))
            sources += [(SPLIT_NAMES[key], p)] if p is not None else []
        names_file = _resolve(root, obj.get("names"))
        if names is None and names_file is not None:
            names = parse_names_text(read_text(names_file), str(names_file))
    return _Config(names if names is not None else _names_file(root), sources)


def _names_file(root: Path) -> dict[int, str] | None:
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        candidates = [folder / n for n in NAMES_FILES] + sorted([*folder.glob("*.names"), *folder.glob("*.labels")])
        for p in candidates:
            if p.is_file():
                return parse_names_text(read_text(p), str(p))
    return None


def _walk(root: Path) -> tuple[set[str], set[str]]:
    """Relative POSIX paths of the image files and ``.txt`` files under ``root`` (hidden entries skipped)."""
    images: set[str] = set()
    texts: set[str] = set()
    prefix = len(str(root)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = dirpath[prefix:].replace(os.sep, "/")
        for f in filenames:
            ext = os.path.splitext(f)[1].lower()
            if f.startswith(".") or (ext != ".txt" and ext not in IMAGE_SUFFIXES):
                continue
            rel = f"{rel_dir}/{f}" if rel_dir else f
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(
                    "file name is not UTF-8", file=os.path.join(dirpath, os.fsdecode(f)), field="name"
                ) from None
            (texts if ext == ".txt" else images).add(rel)
    return images, texts


def _list_entries(root: Path, list_file: Path) -> set[str]:
    """Image paths of a Darknet / Ultralytics list file, relative to the dataset folder."""
    out = set()
    for line in read_text(list_file).split("\n"):
        entry = line.strip()
        if not entry:
            continue
        p = _resolve(list_file.parent, entry) or _resolve(root, entry) or list_file.parent / entry
        out.add(Path(os.path.relpath(p, root)).as_posix())
    return out


def _votes(asset: str, sources: list[tuple[str, str | set[str]]]) -> str | None:
    splits = {s for s, src in sources if (asset in src if isinstance(src, set) else asset.startswith(src + "/"))}
    if len(splits) == 1:
        return splits.pop()
    return None if splits else split_of_path(asset)


def _discover(root: Path, config: _Config) -> list[YoloItem]:
    images, texts = _walk(root)
    sources: list[tuple[str, str | set[str]]] = []
    for split, p in config.sources:
        src: str | set[str] = _list_entries(root, p) if p.is_file() else Path(os.path.relpath(p, root)).as_posix()
        sources.append((split, src))
    listed = set().union(*(src for _, src in sources if isinstance(src, set)))
    in_split_dir = {a for a in images for _, src in sources if isinstance(src, str) and a.startswith(src + "/")}
    assets = {
        a: str(label_path(PurePosixPath(a)))
        for a in sorted(images | listed)
        if a in listed
        or a in in_split_dir
        or "images" in a.split("/")[:-1]
        or str(label_path(PurePosixPath(a))) in texts
    }
    claimed = set(assets.values())
    for t in sorted(texts - claimed):
        if "labels" in t.split("/")[:-1] and PurePosixPath(t).name not in NAMES_FILES:
            assets.setdefault(str(_image_of_label(PurePosixPath(t))), t)
    return [_item(root, a, label, images, texts, _votes(a, sources)) for a, label in sorted(assets.items())]


def _item(root: Path, asset: str, label: str, images: set[str], texts: set[str], split: str | None) -> YoloItem:
    size = image_size(root / asset) if asset in images else None
    return YoloItem(
        asset=asset,
        text=read_text(root / label) if label in texts else None,
        split=split,
        width=size[0] if size else None,
        height=size[1] if size else None,
        uri=str(root / asset) if asset in images else None,
        file=str(root / label),
    )


def load_yolo(
    path: str | Path, dataset: str | None = None, names: Sequence[str] | None = None, scores: bool = False
) -> Tables:
    """Read a YOLO Darknet dataset folder (or its data.yaml) into the three tables.

    ``names`` overrides the class names files; ``scores=True`` reads a trailing confidence on each line.

    >>> tables = load_yolo("datasets/coco8")            # doctest: +SKIP
    """
    path = Path(path)
    root, yaml_file = _root_of(path)
    root = root.absolute()
    config = _read_config(root, yaml_file)
    if names is not None:
        config.names = dict(enumerate(names))
    items = _discover(root, config)
    return yolo_to_tables(items, config.names, dataset or path.stem, scores)


def save_yolo(
    tables: Tables, path: str | Path, precision: int = 6, scores: bool = False, skip_unsupported: bool = False
) -> list[Path]:
    """Write a YOLO Darknet dataset folder: ``labels/...`` (one file per asset), ``classes.txt``, ``data.yaml``.

    >>> save_yolo(tables, "out/yolo")                    # doctest: +SKIP
    """
    files = tables_to_yolo(
        tables, precision=precision, scores=scores, skip_unsupported=skip_unsupported, file=str(path)
    )
    return write_tree(Path(path), files)


def _sniff_yolo(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in (".yaml", ".yml") and b"names" in head(path, 1 << 16)
    if not path.is_dir():
        return False
    if any((path / n).is_file() for n in ("data.yaml", "obj.data", *NAMES_FILES)) or (path / "labels").is_dir():
        return True
    return any((path / s / "labels").is_dir() for s in ("train", "valid", "val", "test"))


# ---------------------------------------------------------------------------------------------------------------
# YOLO Keras / PyTorch: one text file, pixel boxes

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
    x0, y0, x1, y1 = _numbers(fields[:4], [f"{where}.{n}" for n in _KERAS_BOX_FIELDS], file, line)
    cls = _class_number(fields[4], file, line)
    if x1 < x0 or y1 < y0:
        raise FormatError(f"x2, y2 must not be less than x1, y1 in {token!r}", file=file, line=line, field=where)
    if size is None:
        raise FormatError(
            f"the pixel size of {asset!r} is unknown: put the image beside the file or pass assets= with width and height",
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
    cols, seen = _Columns(), {}
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
    items = [YoloItem(a, None, split, *sizes.get(a, (None, None)), uris.get(a)) for a in seen]
    return Tables(
        annotations=cols.frame(dataset, names),
        assets=schema.assets_frame([_asset_record(item, dataset) for item in items]),
        labels=_labels(names, cols.cls, dataset),
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
    box = (anns["kind"] == "box").to_numpy(dtype=bool) & _supported(anns)
    anns = anns[carried(anns, box, what="YOLO Keras/PyTorch", skip=skip_unsupported, file=file)]
    _check_rows(anns, file)
    classes = class_indices(tables.labels, pd.unique(anns["label"].to_numpy()))
    assets = asset_table(tables.assets, anns)
    tokens = _keras_box_tokens(anns, assets, classes, decimals, file)
    lines = []
    for asset, name in zip(assets["asset"], assets["name"], strict=True):
        path = file_name(asset, name)
        if not path.strip() or "\n" in path or "," in path or path != path.strip():
            raise FormatError(f"asset {asset!r} has a file name this format cannot write", file=file, field="name")
        lines.append(" ".join([path, *tokens.get(asset, ())]) + "\n")
    names = _names_by_index(classes)
    return "".join(lines), "".join(f"{names[i]}\n" for i in range(len(names)))


def _keras_box_tokens(
    anns: pd.DataFrame, assets: pd.DataFrame, classes: Mapping[str, int], decimals: int, file: str | None
) -> dict[str, list[str]]:
    sizes = {
        a: size_or_raise(a, w, h, u, what="YOLO Keras/PyTorch", file=file)
        for a, w, h, u in zip(assets["asset"], assets["width"], assets["height"], assets["uri"], strict=True)
        if a in set(anns["asset"])
    }
    wh = np.array([sizes[a] for a in anns["asset"]], dtype=float).reshape(-1, 2)
    px = anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float) * np.column_stack([wh, wh])
    if decimals == 0:
        values: list[Any] = np.floor(px + 0.5).astype(np.int64).tolist()
        fmt = "%d,%d,%d,%d,%d"
    else:
        values = px.tolist()
        fmt = ",".join([f"%.{decimals}f"] * 4) + ",%d"
    index = anns["label"].map(classes).tolist()
    out: dict[str, list[str]] = {}
    for asset, v, c in zip(anns["asset"], values, index, strict=True):
        out.setdefault(asset, []).append(fmt % (*v, c))
    return out


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
        size = given.get(asset) or given.get(PurePosixPath(asset).name)
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
        name="yolo",
        load=load_yolo,
        save=save_yolo,
        sniff=_sniff_yolo,
        description="YOLO Darknet: images/ + labels/ folders of 'class cx cy w h' lines, data.yaml / classes.txt",
        aliases=("yolo_darknet", "yolodarknet", "darknet"),
    )
)
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
