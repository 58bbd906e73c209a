"""Annotation files as a read-only backend, so a frame read from a file is traced like any load.

``ab.read(path)`` registers a load of this backend: ``anns.annot.assets`` and ``anns.annot.labels`` then give the
file's other tables, and ``diff()`` shows what changed since the read. Writing goes through
``anns.annot.save(path, format)``, never through push; push, import and export are `NotSupported` here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import NotSupported
from ..formats import Tables, load
from .base import ApplyResult, Capabilities, Changes
from .transfer_report import ExportResult, ImportReport

__all__ = ["FilesBackend"]

_CACHE: dict[tuple[str, str | None, str, float], Tables] = {}


def _in_dataset(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    out = table.copy()
    out["dataset"] = pd.array([dataset] * len(out), dtype=schema.STR)
    return out


class FilesBackend:
    """One annotation file (or export folder) in one format, read on demand and cached per process."""

    name = "files"
    capabilities = Capabilities(update=False, create=False, revisions="none", creates_labels=False)

    def __init__(self, path: str | Path, format: str | None = None, dataset: str | None = None, **options: Any):
        self.path = Path(path).expanduser().resolve()
        self.format = format
        # a file name need not be UTF-8; the dataset name must be (pandas' strings are)
        self.dataset = dataset or os.fsencode(self.path.stem).decode("utf-8", "replace")
        #: a connection's default dataset: the file's
        self.bound_dataset = self.dataset
        self.options = options  # reader options (assets=, normalized=, ...)

    def __repr__(self) -> str:
        return f"FilesBackend({str(self.path)!r}, format={self.format!r})"

    def spec(self) -> dict[str, Any]:
        """Path, format, dataset and the reader options that survive JSON (a table passed as assets= does not)."""
        plain = {k: v for k, v in self.options.items() if isinstance(v, (str, int, float, bool, type(None)))}
        return {"path": str(self.path), "format": self.format, "dataset": self.dataset, **plain}

    def tables(self) -> Tables:
        """The file's tables, read once per modification time; the dataset column set to this dataset."""
        key = (str(self.path), self.format, self.dataset, self.path.stat().st_mtime if self.path.exists() else 0.0)
        if key not in _CACHE:
            t = load(self.path, self.format, **self.options)
            # format modules hand back contract tables: only the dataset column changes (no second coercion)
            _CACHE[key] = Tables(*(_in_dataset(x, self.dataset) for x in (t.annotations, t.assets, t.labels)))
        return _CACHE[key]

    def datasets(self) -> pd.DataFrame:
        t = self.tables()
        return pd.DataFrame({"dataset": [self.dataset], "assets": [len(t.assets)], "annotations": [len(t.annotations)]})

    def assets(self, dataset: str) -> pd.DataFrame:
        return self.tables().assets.copy()

    def labels(self, dataset: str) -> pd.DataFrame:
        return self.tables().labels.copy()

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        anns = self.tables().annotations
        return (anns if assets is None else anns[anns["asset"].isin(list(assets))]).reset_index(drop=True)

    def apply(self, changes: Changes) -> ApplyResult:
        raise NotSupported(
            f"{self.path.name} was read from a file, which push does not write: "
            "save it with anns.annot.save(path, format), or import it with conn.import_files(...)"
        )

    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """A file is not exported: it is saved (the frame's ``annot.save``, which writes any format)."""
        raise NotSupported(
            f"{self.path.name} is a file, not a store: write it in another format with "
            f"ab.read(...).annot.save(dest, format={format!r})"
        )

    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Files are read, not imported into: import into a store or a platform instead."""
        raise NotSupported(
            f"{self.path.name} is read-only: import files into a store (ab.connect().import_files(...)) "
            "or a platform instead"
        )

    def image_path(self, dataset: str, asset: str) -> str | None:
        row = self.tables().assets.set_index("asset")["uri"].get(asset)
        return None if row is None or pd.isna(row) else str(row)
