"""What the folder writers (YOLO, Pascal VOC) share: the file an asset is written as, its pixel size, and the one
rule for rows a format cannot carry (raise naming them, or skip them when the caller asked; never drop silently)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from ._image_size import image_size
from ._rows import file_name  # one rule for every writer (docs/data-model.md, Files)

__all__ = [
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
    extra = [a for a in pd.unique(anns["asset"].dropna().to_numpy(dtype=object)) if a not in known]
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


def carried(anns: pd.DataFrame, ok: Iterable[bool], *, what: str, skip: bool, file: str | None) -> np.ndarray:
    """Mask of the rows a writer carries; the others raise a FormatError naming the first few, unless ``skip``."""
    mask = np.fromiter(ok, dtype=bool, count=len(anns))
    if skip or mask.all():
        return mask
    bad = anns[~mask]
    shown = ", ".join(f"{i!r} ({k})" for i, k in zip(bad["id"].head(5), _reasons(bad.head(5)), strict=True))
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise FormatError(
        f"{what} cannot carry {len(bad)} rows: {shown}{more}; pass skip_unsupported=True to write the others",
        file=file,
        field="kind",
    )


def _reasons(bad: pd.DataFrame) -> list[str]:
    out = []
    for kind, rot, pts in zip(bad["kind"], bad["rotation"], bad["points"], strict=True):
        if kind == "box" and not _missing(rot) and rot != 0:
            out.append("rotated box")
        elif kind == "polygon" and pts is not None and len(pts) > 1:
            out.append(f"polygon of {len(pts)} parts")
        else:
            out.append(str(kind))
    return out


def subset(anns: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``anns[mask]``, without a copy when every row is kept."""
    return anns if mask.all() else anns[mask]


def supported_geometry(anns: pd.DataFrame) -> np.ndarray:
    """Rows that are unrotated boxes or one-part polygons: what YOLO and VOC carry."""
    kind = anns["kind"].to_numpy(dtype=object)
    rotation = anns["rotation"].to_numpy(dtype=float)
    box = (kind == "box") & ((rotation == 0) | np.isnan(rotation))
    polygon = (kind == "polygon") & np.array([p is not None and len(p) == 1 for p in anns["points"]], dtype=bool)
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


def check_polygons(anns: pd.DataFrame, file: str | None) -> None:
    """One-part polygon rows must have 3 or more finite points: a FormatError names the first that does not."""
    rings = [points[0] for points in anns["points"].tolist()]
    sizes = np.array([len(ring) for ring in rings], dtype=np.int64)
    finite = np.isfinite(np.fromiter(itertools.chain.from_iterable(rings), dtype=float, count=int(sizes.sum())))
    bad = (sizes < 6) | (sizes % 2 == 1)
    if not finite.all():
        ends, nonfinite = np.cumsum(sizes), np.r_[0, np.cumsum(~finite)]
        bad |= nonfinite[ends] > nonfinite[ends - sizes]
    if bad.any():
        row_id = anns["id"].iloc[int(np.argmax(bad))]
        raise FormatError(f"polygon {row_id!r} needs 3 or more finite points", file=file, field="points")


def join_by_asset(assets: list[str], lines: list[str]) -> dict[str, str]:
    """asset -> its rows' texts joined, in row order."""
    codes, uniques = pd.factorize(np.asarray(assets, dtype=object))
    order = np.argsort(codes, kind="stable")
    ordered = np.asarray(lines, dtype=object)[order].tolist()
    ends = np.cumsum(np.bincount(codes, minlength=len(uniques))).tolist()
    starts = [0, *ends[:-1]]
    return {u: "".join(ordered[a:b]) for u, a, b in zip(uniques.tolist(), starts, ends, strict=True)}
