"""What YOLO Darknet and YOLO Keras files share: class numbers <-> label names, and the rows their lines fill.

Both formats number classes the same way (``labels.index``, the next free numbers for labels without one, a
``classes.txt`` line per number) and read lines into the same columns; the two format modules build on this one
and not on each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from ._tables import complete_labels
from ._yolo_folder import YoloItem

__all__ = [
    "MAX_CLASS_INDEX",
    "RowColumns",
    "asset_record",
    "class_indices",
    "class_number",
    "class_numbers",
    "finite_numbers",
    "labels_table",
    "names_by_index",
]


#: class numbers from labels.index this large are a platform's ids, not a class list: renumbered 0, 1, ...
MAX_CLASS_INDEX = 10_000


def class_indices(labels: pd.DataFrame, names: Iterable[str], reindex: bool | None = None) -> dict[str, int]:
    """label -> class number: ``labels.index`` where set (the first row of a repeated name wins), the next free
    numbers for labels without one; two labels with one index are an error.

    ``reindex=True`` numbers the labels 0, 1, ... in index order (dense, as trainers count classes); None does so
    only when an index reaches `MAX_CLASS_INDEX`; False never.
    """
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
    if reindex or (reindex is None and max(out.values(), default=0) >= MAX_CLASS_INDEX):
        return {name: i for i, name in enumerate(sorted(out, key=out.__getitem__))}
    return out


def names_by_index(classes: Mapping[str, int]) -> dict[int, str]:
    """index -> name for every index 0..max (unused indices named ""), checked to fit a line of classes.txt."""
    for name in classes:
        if "\n" in name or "\r" in name or name != name.strip() or not name:
            raise FormatError(
                f"label {name!r} cannot be a YOLO class name (blank, or spaces or a line break at its ends)",
                field="label",
            )
    by_index = {i: n for n, i in classes.items()}
    return {i: by_index.get(i, "") for i in range(max(by_index, default=-1) + 1)}


def class_numbers(labels: pd.Series, classes: Mapping[str, int]) -> np.ndarray:
    codes, uniques = pd.factorize(labels)
    return np.array([classes[u] for u in uniques], dtype=np.int64)[codes] if len(uniques) else codes.astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Lines -> rows


class RowColumns:
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


def class_number(text: str, file: str, line: int, field: str = "class") -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise FormatError(
                f"class must be a whole number, got {text!r}", file=file, line=line, field=field
            ) from None
        value = int(number)
    if value < 0:
        raise FormatError(f"class must be >= 0, got {text!r}", file=file, line=line, field=field)
    return value


def finite_numbers(fields: list[str], names: Sequence[str], file: str, line: int) -> list[float]:
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


def asset_record(item: YoloItem, dataset: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "asset": item.asset,
        "name": item.asset.rsplit("/", 1)[-1],
        "width": item.width,
        "height": item.height,
        "uri": item.uri,
    }


def labels_table(names: Mapping[int, str] | None, used: Iterable[int], dataset: str) -> pd.DataFrame:
    pairs = sorted(names.items()) if names is not None else [(c, str(c)) for c in sorted(set(used))]
    return schema.labels_frame(
        {"dataset": [dataset] * len(pairs), "name": [n for _, n in pairs], "index": [i for i, _ in pairs]}
    )
