"""File formats: read any supported file into the canonical tables, write them back.

>>> import annotebook as ab
>>> anns = ab.read("instances.json")                  # doctest: +SKIP
>>> anns.annot.assets, anns.annot.labels               # doctest: +SKIP
>>> anns.annot.save("yolo-out", format="yolo")         # doctest: +SKIP

Each format module owns one format: pure functions between file content and tables (``*_to_tables`` /
``tables_to_*``) plus thin ``load_*`` / ``save_*`` that do the I/O, registered in `_registry.FORMATS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ._registry import FORMATS, FormatSpec, Tables, find_format, register_format

__all__ = ["FORMATS", "FormatSpec", "Tables", "find_format", "load", "register_format", "save"]


def load(path: str | Path, format: str | None = None, **options: Any) -> Tables:
    """The three tables of a file or folder, in ``format`` (sniffed when None)."""
    path = Path(path)
    return find_format(path, format).load(path, **options)


def save(
    anns: pd.DataFrame,
    path: str | Path,
    format: str,
    assets: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    **options: Any,
) -> list[Path]:
    """Write an annotations frame (with its assets and labels tables) in ``format``; returns the files written."""
    from .. import schema
    from ._tables import annotations_table, complete_labels

    spec = find_format(Path(path), format)
    live = anns[~anns["deleted"].to_numpy(dtype=bool)] if "deleted" in anns.columns else anns
    tables = Tables(
        annotations=annotations_table(live),
        assets=schema.assets_frame(assets if assets is not None else _assets_of(live)),
        labels=complete_labels(labels, live),
    )
    from ._kept import warn_not_kept

    written = spec.save(tables, Path(path), **options)
    warn_not_kept(spec.name, tables.annotations)  # a field the format cannot hold is named, never dropped silently
    return written


def _assets_of(anns: pd.DataFrame) -> pd.DataFrame:
    from .. import schema

    return schema.assets_frame(anns[["dataset", "asset"]].drop_duplicates().assign(name=lambda d: d["asset"]))
