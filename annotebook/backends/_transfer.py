"""Imports and exports through files for backends that hold the tables themselves (the local store).

``import_files`` parses every file before it writes anything, so a bad file leaves the store as it was and the
`ImportRejected` it raises names every bad file at once; ``export`` writes a format with `annotebook.formats.save`
and can copy the images beside it.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from .. import schema
from ..errors import FormatError, ImportRejected
from ..formats import Tables, find_format, save
from .transfer_report import ExportResult, ImportReport, logs_frame

__all__ = ["export_tables", "parse_files"]


class _TableSource(Protocol):
    name: str

    def assets(self, dataset: str) -> pd.DataFrame: ...
    def labels(self, dataset: str) -> pd.DataFrame: ...
    def annotations(self, dataset: str, assets: Sequence[str] | None = None) -> pd.DataFrame: ...


def _progress(items: Sequence[Any], desc: str, progress: bool) -> Iterable[Any]:
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file")


def parse_files(
    paths: Sequence[str | Path], dataset: str, format: str | None = None, progress: bool = True, backend: str = "local"
) -> tuple[list[Tables], list[dict[str, Any]]]:
    """Read every path (file or folder) into tables for ``dataset``, with one report row per path.

    Every path is tried; when any is malformed, `ImportRejected` names them all (its report has the bad files
    rejected with their errors, the good ones skipped) and nothing is imported.
    """
    tables, rows, failures = [], [], []
    for path in _progress([Path(p) for p in paths], "reading", progress):
        try:
            spec = find_format(path, format)
            t = spec.load(path)
        except FormatError as exc:
            failures.append(exc)
            rows.append({"file": str(path), "status": "rejected", "errors": 1, "first_error": str(exc),
                         "format": format, "assets": 0, "annotations": 0})  # fmt: skip
            continue
        t = Tables(
            annotations=schema.annotations_frame(t.annotations.assign(dataset=dataset)),
            assets=schema.assets_frame(t.assets.assign(dataset=dataset)),
            labels=schema.labels_frame(t.labels.assign(dataset=dataset)),
        )
        tables.append(t)
        rows.append({"file": str(path), "status": "imported", "format": spec.name, "assets": len(t.assets),
                     "annotations": len(t.annotations)})  # fmt: skip
    if failures:
        for r in rows:
            r["status"] = "skipped" if r["status"] == "imported" else r["status"]
        logs = logs_frame(
            {"file": exc.file or r["file"], "line": exc.line, "level": "Error", "message": str(exc)}
            for exc, r in zip(failures, [r for r in rows if r["status"] == "rejected"], strict=True)
        )
        report = ImportReport.of(backend, dataset, rows, logs)
        raise ImportRejected(
            f"{len(failures)} of {len(rows)} file(s) could not be read; nothing was imported:\n"
            + "\n".join(str(exc) for exc in failures),
            report,
        ) from failures[0]
    return tables, rows


def export_tables(
    source: _TableSource, dataset: str, format: str, dest: str | Path, images: bool = False, **options: Any
) -> ExportResult:
    """Write ``dataset`` of ``source`` in ``format`` under ``dest``; what was written, one row per file."""
    dest = Path(dest)
    assets = source.assets(dataset)
    spec = find_format(dest, format)
    # a format that lays out its own images (YOLO's images/<split>/) places them; for the others they go to images/
    own_layout = "images" in inspect.signature(spec.save).parameters
    if images and own_layout:
        options["images"] = True
    written = save(source.annotations(dataset), dest, format, assets=assets, labels=source.labels(dataset), **options)
    if images and not own_layout:
        written += _copy_images(assets, dest if dest.suffix == "" else dest.parent)
    return ExportResult.of(source.name, dataset, spec.name, dest, written, reader=spec.name)


def _copy_images(assets: pd.DataFrame, root: Path) -> list[Path]:
    """Each asset's image into ``root/images``. Names come from the platform: one that would land outside that
    folder (``..``, an absolute path) is refused by name before anything is copied."""
    from ..errors import ValidationError

    images = (root / "images").resolve()
    named = [(uri, str(name)) for uri, name in zip(assets["uri"], assets["name"], strict=True)
             if isinstance(uri, str) and Path(uri).is_file()]  # fmt: skip
    outside = [name for _, name in named if not (images / name).resolve().is_relative_to(images)]
    if outside:
        raise ValidationError(f"asset names {outside[:5]} would write outside {images}; rename those assets")
    pairs = [(uri, root / "images" / name) for uri, name in named]
    for uri, target in pairs:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(uri, target)
    return [t for _, t in pairs]
