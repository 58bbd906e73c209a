"""YOLO Darknet: a folder of images and one label file per image, in the Ultralytics, Darknet or Roboflow layout.

Pixel convention: values are fractions of the image on pixel edges, as annotebook's (a box over a whole image
is ``cx cy w h`` = ``0.5 0.5 1 1``).

- Layout: each image ``.../images/<...>/x.jpg`` has its labels in ``.../labels/<...>/x.txt`` (the last ``images``
  folder becomes ``labels``; an image outside any ``images`` folder has its label file beside it), so the
  Ultralytics ``images/<split>/``, the flat ``images/`` + ``labels/``, Roboflow's ``<split>/images`` and CVAT's
  ``obj_train_data/`` all read (`annotebook.formats._yolo_folder`). Read from the folder or its ``data.yaml``.
- Lines: ``class cx cy w h`` (a box) or ``class x1 y1 x2 y2 ...`` (a polygon, 3 or more points, an OBB's four
  corners included); with ``scores=True`` a trailing confidence (Ultralytics ``save_conf``) goes to ``score``.
- Class names: ``data.yaml`` ``names`` (a list, or an ``{index: name}`` map; read by a small parser of the data.yaml
  subset, annotebook does not depend on PyYAML), else ``classes.txt`` / ``obj.names`` / ``*.names`` /
  ``*.labels``, else the class number itself. Class numbers are ``labels.index`` both ways; labels without one get
  the next free number (``reindex=True``, or indices of 10,000 and more, number them 0, 1, ... instead). The
  writer writes ``classes.txt`` (line i names class i, blank where no label has index i: a COCO-numbered table
  keeps its category ids) and ``data.yaml`` (``names`` as an index map with every index).
- Splits: ``data.yaml`` (or CVAT's ``obj.data``) ``train`` / ``val`` / ``test`` name image folders or list files
  and give ``split``; without them the folder names ``train``, ``val`` / ``valid``, ``test`` do. ``val`` is
  annotebook's ``validate`` (the data contract's three values) and is written back as ``val``, Ultralytics' name.
  A folder named by two keys gives no split (the writer names one folder as both ``train`` and ``val`` when the
  table has no splits, since Ultralytics needs both keys). Another split value is written as a folder of its name
  and reads back without a split.
- asset: the image's path relative to the dataset folder (``images/train/x.jpg``); width and height from the image
  header (EXIF orientation applied). Label files do not record the image's extension: a label file whose image is
  not there gives asset ``images/train/x`` (no suffix), no ``uri`` and no size; its boxes still load, being
  normalised. An image without a label file is an asset with no annotations; the writer writes an empty label file
  for it. The writer places an asset without an ``images`` folder in its path at ``images/<split>/<file name>``.
- Written with ``precision=6`` decimals (``%.6f``): a write then read is exact within 1e-6 of the image's size
  (7.5e-7 for a corner, being a centre minus half a size). Rotated boxes, multi-part polygons, polylines,
  keypoints (YOLO pose, ``kpt_shape``, is not supported either way) and whole-image rows are refused with a
  FormatError naming them unless ``skip_unsupported=True``.

Sources: Ultralytics dataset docs (https://docs.ultralytics.com/datasets/detect/ and /datasets/segment/),
Roboflow's https://roboflow.com/formats/yolo-darknet-txt, CVAT's YOLO format page, pjreddie/darknet
``replace_image_to_label``.

Keeps (`annotebook.formats._kept`, a write warns about the rest): score no, split yes (its folders), status no,
author no, attributes no.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from ._data_yaml import dump_data_yaml
from ._export import (
    asset_table,
    carried,
    check_polygons,
    check_rows,
    file_name,
    rows_by_asset,
    subset,
    supported_geometry,
)
from ._io import head
from ._registry import FormatSpec, Tables, register_format
from ._tree import TreeFiles, write_tree
from ._yolo_folder import YoloItem, image_path, label_path, read_folder, yaml_splits
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

__all__ = ["YoloItem", "load_yolo", "save_yolo", "tables_to_yolo", "yolo_to_tables"]


# ---------------------------------------------------------------------------------------------------------------
# Darknet lines -> rows (pure)


_NAN_BOX = (math.nan,) * 4


def _coordinate_names(n: int) -> list[str]:
    return [f"{axis}{k}" for k in range(1, n // 2 + 1) for axis in ("x", "y")]


_BOX_FIELDS = ("cx", "cy", "w", "h")


def _darknet_line(fields: list[str], file: str, line: int, scores: bool) -> tuple[int, str, Any, Any, float]:
    """(class, kind, box, points, score) of one label line."""
    n, score = len(fields), math.nan
    if scores and n % 2 == 0 and n >= 6:
        score = finite_numbers(fields[-1:], ["score"], file, line)[0]
        fields, n = fields[:-1], n - 1
    if n != 5 and (n < 7 or n % 2 == 0):
        hint = "; a trailing confidence needs scores=True" if n % 2 == 0 and n >= 6 else ""
        raise FormatError(
            f"expected 5 fields (class cx cy w h) or a class and 3 or more x y pairs, got {n}{hint}",
            file=file,
            line=line,
            field="fields",
        )
    cls = class_number(fields[0], file, line)
    if n == 5:
        cx, cy, w, h = finite_numbers(fields[1:], _BOX_FIELDS, file, line)
        if w < 0 or h < 0:
            raise FormatError(f"negative size {w} x {h}", file=file, line=line, field="w" if w < 0 else "h")
        return cls, "box", (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), None, score
    values = finite_numbers(fields[1:], _coordinate_names(n - 1), file, line)
    if len(values) >= 4 and values[-2:] == values[:2]:
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
    cols, asset_rows = RowColumns(), []
    for item in items:
        asset_rows.append(asset_record(item, dataset))
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
        labels=labels_table(names, cols.cls, dataset),
    )


# ---------------------------------------------------------------------------------------------------------------
# Rows -> Darknet files (pure)


def _asset_splits(anns: pd.DataFrame, file: str | None) -> dict[str, str]:
    pairs = anns[["asset", "split"]].dropna().drop_duplicates()
    twice = pairs["asset"].duplicated(keep=False).to_numpy()
    if twice.any():
        asset = pairs["asset"][twice].iloc[0]
        raise FormatError(f"asset {asset!r} has rows in more than one split", file=file, field="split")
    return dict(zip(pairs["asset"], pairs["split"], strict=True))


def _label_files(images: Mapping[str, str], file: str | None) -> dict[str, str]:
    """asset -> label file path; two assets that would share a label file are an error."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for asset, image in images.items():
        label = label_path(image)
        if label in seen:
            raise FormatError(f"assets {seen[label]!r} and {asset!r} would share the label file {label}", file=file)
        out[asset] = seen[label] = label
    return out


def _box_lines(anns: pd.DataFrame, classes: np.ndarray, precision: int) -> list[str]:
    x0, y0, x1, y1 = (anns[c].to_numpy(dtype=float) for c in ("x0", "y0", "x1", "y1"))
    cols = [
        classes.tolist(),
        ((x0 + x1) / 2).tolist(),
        ((y0 + y1) / 2).tolist(),
        (x1 - x0).tolist(),
        (y1 - y0).tolist(),
    ]
    fmt = "%d" + f" %.{precision}f" * 4 + "\n"
    return [fmt % row for row in zip(*cols, strict=True)]


def _polygon_lines(anns: pd.DataFrame, classes: np.ndarray, precision: int) -> list[str]:
    templates: dict[int, str] = {}
    lines = []
    for c, points in zip(classes.tolist(), anns["points"].tolist(), strict=True):
        ring = points[0]
        if len(ring) not in templates:
            templates[len(ring)] = "%d" + f" %.{precision}f" * len(ring) + "\n"
        lines.append(templates[len(ring)] % (c, *ring))
    return lines


def _row_lines(anns: pd.DataFrame, classes: Mapping[str, int], precision: int, scores: bool) -> list[str]:
    """One Darknet line per row (ending in a newline), in the frame's order; with ``scores``, a row's score ends
    its line when it has one."""
    index = class_numbers(anns["label"], classes)
    is_box = (anns["kind"] == "box").to_numpy(dtype=bool)
    lines = np.empty(len(anns), dtype=object)
    lines[is_box] = _box_lines(subset(anns, is_box), index[is_box], precision)
    lines[~is_box] = _polygon_lines(subset(anns, ~is_box), index[~is_box], precision)
    if not scores:
        return lines.tolist()
    score = anns["score"].tolist()
    return [
        line if s != s else f"{line[:-1]} {s:.{precision}f}\n" for line, s in zip(lines.tolist(), score, strict=True)
    ]


def _image_paths(assets: pd.DataFrame, anns: pd.DataFrame, file: str | None) -> dict[str, str]:
    """asset -> where its image goes in the folder (`image_path`: its split folder, its file name)."""
    splits = _asset_splits(anns, file)
    pairs = zip(assets["asset"].tolist(), assets["name"].tolist(), strict=True)
    return {a: image_path(file_name(a, n), splits.get(a)) for a, n in pairs}


def tables_to_yolo(
    tables: Tables,
    *,
    precision: int = 6,
    scores: bool = False,
    skip_unsupported: bool = False,
    reindex: bool | None = None,
    file: str | None = None,
) -> dict[str, str]:
    """The files of a Darknet dataset as ``{relative path: text}``: a label file per asset, classes.txt, data.yaml.

    >>> t = yolo_to_tables([YoloItem("images/a.jpg", "0 0.5 0.5 1 1\\n")], {0: "cat"})
    >>> tables_to_yolo(t)["labels/a.txt"]
    '0 0.500000 0.500000 1.000000 1.000000\\n'
    """
    files = yolo_files(
        tables, precision=precision, scores=scores, skip_unsupported=skip_unsupported, reindex=reindex, file=file
    )
    return dict(files)


def yolo_files(
    tables: Tables,
    *,
    precision: int = 6,
    scores: bool = False,
    skip_unsupported: bool = False,
    reindex: bool | None = None,
    file: str | None = None,
) -> TreeFiles:
    """`tables_to_yolo`'s files, checked now and each built only as it is iterated (what `save_yolo` writes).

    >>> t = yolo_to_tables([YoloItem("images/a.jpg", "0 0.5 0.5 1 1\\n")], {0: "cat"})
    >>> yolo_files(t).paths
    ['labels/a.txt', 'classes.txt', 'data.yaml']
    """
    if not isinstance(precision, int) or not 0 <= precision <= 17:
        raise ValueError(f"precision must be a whole number of decimals from 0 to 17, got {precision!r}")
    anns = tables.annotations
    anns = carried(anns, supported_geometry(anns), what="YOLO", skip=skip_unsupported, file=file)
    check_rows(anns, file)
    check_polygons(anns, file)
    classes = class_indices(tables.labels, anns["label"].unique(), reindex)  # in Arrow: no object per row
    images = _image_paths(asset_table(tables.assets, anns), anns, file)
    label_files = _label_files(images, file)
    groups = rows_by_asset(anns, list(images), file)
    names = names_by_index(classes)
    classes_txt = "".join(f"{names[i]}\n" for i in range(len(names)))
    data_yaml = dump_data_yaml(yaml_splits(images.values()), names)
    columns = anns[["label", "kind", "x0", "y0", "x1", "y1", "points", "score"]]  # what the lines read

    def contents() -> Iterator[str]:
        yield from groups.texts(lambda rows, _: _row_lines(columns.iloc[rows], classes, precision, scores))
        yield from (classes_txt, data_yaml)

    return TreeFiles([*label_files.values(), "classes.txt", "data.yaml"], contents)


# ---------------------------------------------------------------------------------------------------------------
# Files


def load_yolo(
    path: str | Path, dataset: str | None = None, names: Sequence[str] | None = None, scores: bool = False
) -> Tables:
    """Read a YOLO Darknet dataset folder (or its data.yaml) into the three tables.

    ``names`` overrides the class names files; ``scores=True`` reads a trailing confidence on each line.

    >>> tables = load_yolo("datasets/coco8")            # doctest: +SKIP
    """
    path = Path(path)
    class_names, items = read_folder(path, names)
    return yolo_to_tables(items, class_names, dataset or path.stem, scores)


def save_yolo(
    tables: Tables,
    path: str | Path,
    precision: int = 6,
    scores: bool = False,
    skip_unsupported: bool = False,
    images: bool = False,
    reindex: bool | None = None,
) -> list[Path]:
    """Write a YOLO Darknet dataset folder: ``labels/...`` (one file per asset), ``classes.txt``, ``data.yaml``.

    ``reindex=True`` writes class numbers 0, 1, ... in ``labels.index`` order instead of the indices themselves
    (see `class_indices`). ``images=True`` also copies each asset's image (its ``uri``, when a local file) to its
    place in the layout, ``images/<split>/<file name>``, after the label files are written; assets without a local
    image are not copied.

    >>> save_yolo(tables, "out/yolo", images=True)       # doctest: +SKIP
    """
    root = Path(path)
    files = yolo_files(
        tables, precision=precision, scores=scores, skip_unsupported=skip_unsupported, reindex=reindex, file=str(root)
    )
    copies = _image_copies(tables, root) if images else {}
    written = write_tree(root, files)
    for target, source in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(source)):
            shutil.copyfile(source, target)
    return written + list(copies)


def _image_copies(tables: Tables, root: Path) -> dict[Path, Path]:
    """target -> source of the images save_yolo copies: assets whose ``uri`` is a local file."""
    uris = dict(zip(tables.assets["asset"].tolist(), tables.assets["uri"].tolist(), strict=True))
    places = _image_paths(asset_table(tables.assets, tables.annotations), tables.annotations, str(root))
    return {
        root / rel: Path(uri)
        for asset, rel in places.items()
        if isinstance(uri := uris.get(asset), str) and "://" not in uri and Path(uri).is_file()
    }


def _sniff_yolo(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in (".yaml", ".yml") and b"names" in head(path, 1 << 16)
    if not path.is_dir() or (path / "_annotations.txt").is_file():  # Roboflow's Keras/PyTorch folder
        return False
    if any((path / n).is_file() for n in ("data.yaml", "obj.data", "classes.txt", "obj.names", "_darknet.labels")):
        return True
    return (path / "labels").is_dir() or any((path / s / "labels").is_dir() for s in ("train", "valid", "val", "test"))


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
