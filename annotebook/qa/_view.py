"""The annotations as the checks see them: live rows, extents, pixel sizes and label groups, computed once."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.geometry import extent
from annotebook.schema import STR

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

#: kinds whose rows are regions: they have an area, and may duplicate or overlap each other
REGION_KINDS = ("box", "polygon")


def asset_keys(df: pd.DataFrame, by_dataset: bool = True) -> pd.Series:
    """Each row's asset identity: ``dataset`` + separator + ``asset``, or the asset alone when not ``by_dataset``."""
    asset = df["asset"].astype(STR).fillna("")
    if not by_dataset or "dataset" not in df.columns:
        return asset
    return df["dataset"].astype(STR).fillna("") + "\x1f" + asset


def by_dataset(truth: pd.DataFrame) -> bool:
    """Whether predictions must name the dataset too: only when the truth spans several datasets (hand-built
    predictions often carry no dataset)."""
    return "dataset" in truth.columns and truth["dataset"].nunique(dropna=True) > 1


def scores(df: pd.DataFrame) -> FloatArray:
    """The ``score`` column as floats, 1 where missing (a prediction without a score is sure of itself)."""
    if "score" not in df.columns:
        return np.ones(len(df))
    values = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.nan_to_num(values, nan=1.0)


def _with_dataset(anns: pd.DataFrame, assets: pd.DataFrame | None) -> pd.DataFrame:
    """Hand-built rows (predictions, say) without a dataset take the assets table's, when it has only one."""
    if assets is None or "dataset" not in assets.columns or assets["dataset"].nunique(dropna=True) != 1:
        return anns
    if "dataset" in anns.columns and not anns["dataset"].isna().any():
        return anns
    name = assets["dataset"].dropna().iloc[0]
    return anns.assign(dataset=anns["dataset"].fillna(name) if "dataset" in anns.columns else name)


class View:
    """Arrays of the non-deleted rows of ``anns`` that several checks share.

    ``assets`` gives pixel sizes (aspects and sizes are then measured in pixels; without it, in normalised units)
    and the list of assets (for empty assets); ``labels`` is the labels table (for unknown labels).
    """

    def __init__(self, anns: pd.DataFrame, assets: pd.DataFrame | None = None, labels: pd.DataFrame | None = None):
        deleted = anns["deleted"].fillna(False).to_numpy(dtype=bool) if "deleted" in anns.columns else False
        anns = anns[~np.asarray(deleted, dtype=bool)] if np.any(deleted) else anns
        self.anns = _with_dataset(anns, assets)
        self.assets = assets
        self.labels = labels

    def __len__(self) -> int:
        return len(self.anns)

    def column(self, name: str) -> npt.NDArray[Any]:
        """A column's values as objects, None where missing (a missing column reads as all None)."""
        if name not in self.anns.columns:
            return np.full(len(self.anns), None, dtype=object)
        out = self.anns[name].to_numpy(dtype=object, copy=True)
        out[pd.isna(out)] = None
        return out

    @cached_property
    def ids(self) -> npt.NDArray[Any]:
        return self.column("id")

    @cached_property
    def asset(self) -> npt.NDArray[Any]:
        return self.column("asset")

    @cached_property
    def asset_keys(self) -> pd.Series:
        """``dataset`` + separator + ``asset`` per row: an asset's identity across datasets."""
        return self._keys(self.anns)

    @cached_property
    def asset_codes(self) -> IntArray:
        """A small integer per (dataset, asset), in sorted order of the keys."""
        return np.asarray(pd.factorize(self.asset_keys, sort=True)[0], dtype=np.intp)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """`annotebook.validation.validate` of the rows (with the assets table when given), with kind and asset."""
        from annotebook.validation import validate

        problems = validate(self.anns, self.assets)
        kinds = self.anns[["id", "kind", "asset"]].drop_duplicates("id").set_index("id")
        return problems.join(kinds, on="id")

    @cached_property
    def region_pairs(self) -> tuple[IntArray, IntArray, FloatArray]:
        """Every overlapping pair (i, j, IoU) of region rows on one asset, by extent (one sort-and-sweep)."""
        from .pairs import overlapping_pairs

        rows = np.flatnonzero(self.region)
        i, j, iou = overlapping_pairs(self.asset_codes[rows], self.extent[rows])
        return rows[i], rows[j], iou

    @staticmethod
    def _keys(df: pd.DataFrame) -> pd.Series:
        return asset_keys(df)

    @cached_property
    def kind(self) -> npt.NDArray[Any]:
        return self.column("kind")

    def of_kind(self, *kinds: str) -> BoolArray:
        return np.asarray(self.anns["kind"].isin(kinds).to_numpy(dtype=bool))

    @cached_property
    def label(self) -> npt.NDArray[Any]:
        return self.column("label")

    @cached_property
    def label_codes(self) -> IntArray:
        """An integer per label (-1 where missing)."""
        return np.asarray(pd.factorize(self.anns["label"])[0], dtype=np.intp)

    @cached_property
    def extent(self) -> FloatArray:
        """(n, 4) normalised axis-aligned extents (rotated boxes: the rotated rectangle's extent); NaN if none."""
        return extent(self.anns, self._assets_for_rotation).to_numpy(dtype=np.float64)

    @cached_property
    def corners(self) -> FloatArray:
        """(n, 4) x0, y0, x1, y1 as stored (a rotated box's unrotated corners)."""
        return self.anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64, na_value=np.nan)

    @property
    def _assets_for_rotation(self) -> pd.DataFrame | None:
        if self.assets is None or not self.sized.all():
            return None
        return self.assets

    @cached_property
    def size(self) -> FloatArray:
        """(n, 2) pixel width and height of each row's asset; NaN when unknown (no assets table, no size)."""
        out = np.full((len(self.anns), 2), np.nan)
        if self.assets is None or not len(self.anns):
            return out
        by = by_dataset(self.assets) and "dataset" in self.anns.columns  # hand-built rows may have no dataset
        table = self.assets.assign(_key=asset_keys(self.assets, by)).drop_duplicates("_key").set_index("_key")
        sizes = table.reindex(asset_keys(self.anns, by).to_numpy())[["width", "height"]]
        return np.asarray(sizes.to_numpy(dtype=np.float64, na_value=np.nan))

    @cached_property
    def sized(self) -> BoolArray:
        return np.asarray(np.isfinite(self.size).all(axis=1) & (self.size > 0).all(axis=1))

    @cached_property
    def scale(self) -> FloatArray:
        """(n, 2) the factor to pixels: the asset's size where known, else 1 (normalised units)."""
        return np.where(self.sized[:, None], self.size, 1.0)

    @cached_property
    def wh(self) -> FloatArray:
        """(n, 2) width and height of each row's box (corners as stored) or extent, in pixels where known."""
        box = self.of_kind("box", "grounding")
        c = np.where(box[:, None], self.corners, self.extent)
        return np.stack([c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], axis=1) * self.scale

    @cached_property
    def region(self) -> BoolArray:
        """Region rows (boxes, polygons) with a finite extent."""
        return self.of_kind(*REGION_KINDS) & np.isfinite(self.extent).all(axis=1)
