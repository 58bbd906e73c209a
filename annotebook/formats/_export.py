"""What the folder writers (YOLO, Pascal VOC) share: the file an asset is written as, its pixel size, the rows they
carry (`carried`, the one rule of every writer) and the checks those rows pass."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from ._image_size import image_size
from ._rows import carried, file_name  # rules every writer shares (docs/data-model.md, Files)

__all__ = [
    "Rings",
    "asset_table",
    "carried",
    "check_polygons",
    "check_rows",
    "file_name",
    "join_by_asset",
    "size_or_raise",
    "subset",
    "supported_geometry",
]


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def asset_table(assets: pd.DataFrame, anns: pd.DataFrame) -> pd.DataFrame:
    """One row per asset to write: the assets table's, then assets only the annotations name (in order)."""
    cols = ["asset", "name", "width", "height", "uri"]
    table = assets[cols].drop_duplicates("asset")
    known = set(table["asset"].tolist())
    extra = [a for a in anns["asset"].dropna().unique().tolist() if a not in known]
    if extra:
        more = pd.DataFrame({"asset": extra}).reindex(columns=cols)
        table = pd.concat([table, more], ignore_index=True) if len(table) else more
    return table.reset_index(drop=True)


def size_or_raise(
    asset: str, width: Any, height: Any, uri: Any, *, what: str, file: str | None = None
) -> tuple[int, int]:
    """An asset's (width, height): from the assets table, else from its image file's header, else a FormatError."""
    if not _missing(width) and not _missing(height) and int(width) > 0 and int(height) > 0:
        return int(width), int(height)
    size = None if _missing(uri) or "://" in str(uri) else image_size(Path(str(uri)))
    if size is None:
        raise FormatError(
            f"{what} needs the pixel size of asset {asset!r}: give the assets table its width and height",
            file=file,
            field="width",
        )
    return size


def subset(anns: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``anns[mask]``, without a copy when every row is kept."""
    return anns if mask.all() else anns[mask]


def supported_geometry(anns: pd.DataFrame) -> np.ndarray:
    """Rows that are unrotated boxes or one-part polygons: what YOLO and VOC carry."""
    rotation = anns["rotation"].to_numpy(dtype=float)
    box = (anns["kind"] == "box").to_numpy(dtype=bool) & ((rotation == 0) | np.isnan(rotation))
    polygon = (anns["kind"] == "polygon").to_numpy(dtype=bool, copy=True)
    polygon[polygon] = [p is not None and len(p) == 1 for p in anns["points"].to_numpy()[polygon]]
    return box | polygon


def check_rows(anns: pd.DataFrame, file: str | None) -> None:
    """Rows a writer carries need a label and a finite, ordered extent: a FormatError names the first without."""
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


@dataclass
class Rings:
    """The one ring of each polygon row, flattened: what `check_polygons` read, for a writer to reuse."""

    rows: np.ndarray  # positions of the polygon rows in the frame
    sizes: np.ndarray  # values per ring (twice its vertices)
    flat: np.ndarray  # every ring's x, y, x, y, ... one after another


def check_polygons(anns: pd.DataFrame, file: str | None) -> Rings:
    """One-part polygon rows must have 3 or more finite points: a FormatError names the first that does not."""
    rows = np.flatnonzero((anns["kind"] == "polygon").to_numpy(dtype=bool))
    rings = [points[0] for points in anns["points"].to_numpy()[rows]]
    sizes = np.array([len(ring) for ring in rings], dtype=np.int64)
    flat = np.fromiter(itertools.chain.from_iterable(rings), dtype=float, count=int(sizes.sum()))
    finite = np.isfinite(flat)
    bad = (sizes < 6) | (sizes % 2 == 1)
    if not finite.all():
        ends, nonfinite = np.cumsum(sizes), np.r_[0, np.cumsum(~finite)]
        bad |= nonfinite[ends] > nonfinite[ends - sizes]
    if bad.any():
        row_id = anns["id"].iloc[int(rows[np.argmax(bad)])]
        raise FormatError(f"polygon {row_id!r} needs 3 or more finite points", file=file, field="points")
    return Rings(rows, sizes, flat)


def join_by_asset(assets: pd.Series, lines: Iterable[str]) -> dict[str, str]:
    """asset -> its rows' texts joined, in row order (``assets`` is the frame's asset column, ``lines`` one text per
    row). Rows grouped by asset, as a frame read from a file has them, are joined as ``lines`` yields them: a
    generator's texts are then never all held at once."""
    codes, uniques = pd.factorize(assets)  # a text column factorizes in Arrow
    counts = np.bincount(codes, minlength=len(uniques)).tolist()
    if len(codes) and (codes[1:] < codes[:-1]).any():
        lines = np.asarray(list(lines), dtype=object)[np.argsort(codes, kind="stable")].tolist()
    rows = iter(lines)
    return {u: "".join(itertools.islice(rows, n)) for u, n in zip(uniques.tolist(), counts, strict=True)}
