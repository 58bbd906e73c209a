"""Imports and exports through files for backends that hold the tables themselves (the local store).

``import_files`` parses every file before it writes anything, so a bad file leaves the store as it was;
``export`` writes a format with `annotebook.formats.save` and can copy the images beside it.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from .. import schema
from ..errors import FormatError
from ..formats import Tables, find_format, save

__all__ = ["export_tables", "parse_files"]


class _TableSource(Protocol):
    def assets(self, dataset: str) -> pd.DataFrame: ...
    def labels(self, dataset: str) -> pd.DataFrame: ...
    def annotations(self, dataset: str, assets: Sequence[str] | None = None) -> pd.DataFrame: ...


def _progress(items: Sequence[Any], desc: str, progress: bool) -> Iterable[Any]:
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file")


def parse_files(
    paths: Sequence[str | Path], dataset: str, format: str | None = None, progress: bool = True
) -> tuple[list[Tables], pd.DataFrame]:
    """Read every path (file or folder) into tables for ``dataset``; the report has one row per path.

    Raises the first `FormatError` only after trying every path, with all failures in its message, so that
    nothing is imported when any file is bad.
    """
    tables, rows, errors = [], [], []
    for path in _progress([Path(p) for p in paths], "reading", progress):
        try:
            spec = find_format(path, format)
            t = spec.load(path)
        except FormatError as exc:
            errors.append(str(exc))
            rows.append({"file": str(path), "format": format, "assets": 0, "annotations": 0, "error": str(exc)})
            continue
        t = Tables(
            annotations=schema.annotations_frame(t.annotations.assign(dataset=dataset)),
            assets=schema.assets_frame(t.assets.assign(dataset=dataset)),
            labels=schema.labels_frame(t.labels.assign(dataset=dataset)),
        )
        tables.append(t)
        rows.append(
            {
                "file": str(path),
                "format": spec.name,
                "assets": len(t.assets),
                "annotations": len(t.annotations),
                "error": None,
            }
        )
    report = pd.DataFrame(rows, columns=["file", "format", "assets", "annotations", "error"])
    if errors:
        raise FormatError(
            f"{len(errors)} of {len(paths)} file(s) could not be read; nothing was imported:\n" + "\n".join(errors)
        )
    return tables, report


def export_tables(
    source: _TableSource, dataset: str, format: str, dest: str | Path, images: bool = False, **options: Any
) -> pd.DataFrame:
    """Write ``dataset`` of ``source`` in ``format`` under ``dest``; returns one row per file written."""
    dest = Path(dest)
    assets = source.assets(dataset)
    # a format that lays out its own images (YOLO's images/<split>/) places them; for the others they go to images/
    own_layout = "images" in inspect.signature(find_format(dest, format).save).parameters
    if images and own_layout:
        options["images"] = True
    written = save(source.annotations(dataset), dest, format, assets=assets, labels=source.labels(dataset), **options)
    if images and not own_layout:
        written += _copy_images(assets, dest if dest.suffix == "" else dest.parent)
    return pd.DataFrame({"file": [str(p) for p in written], "bytes": [p.stat().st_size for p in written]})


def _copy_images(assets: pd.DataFrame, root: Path) -> list[Path]:
    out = []
    for uri, name in zip(assets["uri"], assets["name"], strict=True):
        if isinstance(uri, str) and Path(uri).is_file():
            target = root / "images" / str(name)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(uri, target)
            out.append(target)
    return out
