"""What the folder writers (YOLO, Pascal VOC) share: the file an asset is written as, its pixel size, the rows they
carry (`carried`, the one rule of every writer) and the checks those rows pass."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from ._image_size import image_size
from ._rows import carried, file_name  # rules every writer shares (docs/data-model.md, Files)

__all__ = [
    "AssetRows",
    "Rings",
    "asset_table",
    "carried",
    "check_polygons",
    "check_rows",
    "file_name",
    "join_by_asset",
    "polygon_rings",
    "rows_by_asset",
    "size_or_raise",
    "subset",
    "supported_geometry",
]

#: rows a folder writer reads or turns into text at a time: a few MB of strings, and few enough batches that their
#: fixed cost does not show
CHUNK_ROWS = 8192


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
    x0, y0, x1, y1 = (anns[c].to_numpy(dtype=float) for c in ("x0", "y0", "x1", "y1"))  # no (n, 4) copy
    bad = ~(np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)) | (x1 < x0) | (y1 < y0)
    if bad.any():
        row = anns[bad].iloc[0]
        raise FormatError(
            f"row {row['id']!r} has no finite, ordered extent ({row['x0']}, {row['y0']}, {row['x1']}, {row['y1']})",
            file=file,
            field="x0",
        )


@dataclass
class Rings:
    """The one ring of each polygon row, flattened (`polygon_rings`)."""

    rows: np.ndarray  # positions of the polygon rows in the frame
    sizes: np.ndarray  # values per ring (twice its vertices)
    flat: np.ndarray  # every ring's x, y, x, y, ... one after another

    def bad(self) -> np.ndarray:
        """Which rings do not have 3 or more finite points."""
        bad = (self.sizes < 6) | (self.sizes % 2 == 1)
        finite = np.isfinite(self.flat)
        if not finite.all():
            ends, nonfinite = np.cumsum(self.sizes), np.r_[0, np.cumsum(~finite)]
            bad |= nonfinite[ends] > nonfinite[ends - self.sizes]
        return bad


def polygon_rings(anns: pd.DataFrame) -> Rings:
    """The rings of the polygon rows of ``anns`` (one-part polygons, as `supported_geometry` keeps)."""
    rows = np.flatnonzero((anns["kind"] == "polygon").to_numpy(dtype=bool))
    return _rings(rows, anns["points"].to_numpy())


def _rings(rows: np.ndarray, points: np.ndarray) -> Rings:
    rings = [p[0] for p in points[rows]]
    sizes = np.array([len(ring) for ring in rings], dtype=np.int64)
    flat = np.fromiter(itertools.chain.from_iterable(rings), dtype=float, count=int(sizes.sum()))
    return Rings(rows, sizes, flat)


def check_polygons(anns: pd.DataFrame, file: str | None) -> None:
    """One-part polygon rows must have 3 or more finite points: a FormatError names the first that does not.
    Read `CHUNK_ROWS` rings at a time: every vertex of a large frame at once would be the largest array of a write."""
    rows = np.flatnonzero((anns["kind"] == "polygon").to_numpy(dtype=bool))
    points = anns["points"].to_numpy()
    for start in range(0, len(rows), CHUNK_ROWS):
        rings = _rings(rows[start : start + CHUNK_ROWS], points)
        bad = rings.bad()
        if bad.any():
            row_id = anns["id"].iloc[int(rings.rows[np.argmax(bad)])]
            raise FormatError(f"polygon {row_id!r} needs 3 or more finite points", file=file, field="points")


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


@dataclass
class AssetRows:
    """A frame's rows grouped by the asset they belong to, assets in the order their files are written: asset i's
    rows (positions in the frame, in frame order) are ``rows[bounds[i]:bounds[i + 1]]``, or when ``rows`` is None
    (a frame grouped so already) the positions ``bounds[i]`` to ``bounds[i + 1]``."""

    rows: np.ndarray | None
    bounds: np.ndarray  # one more than there are assets

    def texts(self, row_texts: Callable[[np.ndarray | slice, np.ndarray], list[str]]) -> Iterator[str]:
        """Each asset's rows' texts joined, asset by asset. ``row_texts(rows, owners)`` gives one text per frame
        position in ``rows`` (positions, or a slice of them: what ``iloc`` takes), whose assets (positions in the
        writing order) are ``owners``; it is asked for about `CHUNK_ROWS` rows at a time (an asset's rows are never
        split), so few texts live at once."""
        bounds, first = self.bounds, 0
        while first < len(bounds) - 1:
            end = max(int(np.searchsorted(bounds, bounds[first] + CHUNK_ROWS, side="right")) - 1, first + 1)
            start, stop = int(bounds[first]), int(bounds[end])
            rows = slice(start, stop) if self.rows is None else self.rows[start:stop]
            counts = np.diff(bounds[first : end + 1])
            texts = iter(row_texts(rows, np.repeat(np.arange(first, end), counts)))
            for n in counts.tolist():
                yield "".join(itertools.islice(texts, n))
            first = end


def rows_by_asset(anns: pd.DataFrame, assets: Sequence[str], file: str | None = None) -> AssetRows:
    """The rows of ``anns`` grouped by asset, in the order of ``assets`` (which holds every asset a row names, as
    `asset_table` does); a row without an asset is a FormatError."""
    codes, uniques = pd.factorize(anns["asset"])  # a text column factorizes in Arrow
    if (codes < 0).any():
        row_id = anns["id"].iloc[int(np.argmax(codes < 0))]
        raise FormatError(f"row {row_id!r} has no asset", file=file, field="asset")
    owner = pd.Index(assets).get_indexer(uniques)[codes] if len(codes) else codes
    grouped = not len(owner) or bool((owner[1:] >= owner[:-1]).all())
    bounds = np.r_[0, np.cumsum(np.bincount(owner, minlength=len(assets)))]
    return AssetRows(None if grouped else np.argsort(owner, kind="stable"), bounds)
