"""Past one machine: the ``.annot`` accessor on ``dask.dataframe`` and loads whose partitions are pages of assets.

Tens of millions of annotations do not fit one kernel. The platform stays the store; Dask runs the column work
partition by partition (on a ``distributed`` cluster or any other scheduler)::

    import annotebook as ab
    from annotebook.dask import read_dask
    ddf = conn.assets("big").annot.load_dask(partition_size=2000)   # partitions: pages of 2,000 assets
    problems = ddf.annot.validate()                                # a pandas frame of (id, column, problem)
    ddf.annot.save("yolo-out", "yolo")                             # written by the workers, merged
    ddf.annot.summary()                                            # counts per label and kind

Partitions are loaded on the workers: the connection travels as its ``spec`` (never a key or token; a worker
reads its keys from its own environment, as ``ab.connect`` does). Every partition holds whole assets, which is what
makes the folder formats and per-asset checks partition-wise. Writing files and pushing need a path every worker
and the client see (the same folder on one machine; a shared filesystem on a cluster): ``save`` writes there, and
``push`` keeps the loads' base snapshots and journal there (``load_dask(shared=...)``); without one a push is
refused. Needs the ``dask`` extra: ``pip install 'annotebook[dask]'``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

try:
    import dask
    import dask.dataframe as dd
    from dask.dataframe.extensions import register_dataframe_accessor
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("annotebook.dask needs Dask: pip install 'annotebook[dask]'") from exc

from . import schema
from .errors import PushError

# annotebook's text columns are pandas' own ``str`` dtype (missing = NaN); Dask's default conversion to its
# ``string[pyarrow]`` (missing = NA) would give partitions other dtypes than the contract's
dask.config.set({"dataframe.convert-string": False})

__all__ = ["DaskAnnot", "load_dask", "read_dask"]

_PROBLEMS = pd.DataFrame({c: pd.Series([], dtype=schema.STR) for c in ("id", "column", "problem")})
_FOLDER_FORMATS = ("yolo", "voc", "superannotate")


# -- loading -------------------------------------------------------------------------------------------------
def _load_page(backend: str, spec: dict[str, Any], dataset: str, assets: list[str], shared: str | None) -> pd.DataFrame:
    """On a worker: the annotations of one page of assets, traced in the shared registry when there is one."""
    from .connection import connection_for
    from .sync.registry import registry

    conn = connection_for(backend, spec)
    frame = conn.backend.annotations(dataset, assets, progress=False)
    if shared is not None:
        reg = registry(Path(shared))
        token = reg.new_load(conn.backend.name, conn.backend.spec(), dataset, frame)
        reg.wait(token)  # the snapshot is on the shared path before the partition is handed on
        frame["load"] = token
    return frame


def load_dask(
    conn: Any, dataset: str, assets: Sequence[str] | None = None, partition_size: int = 1000, shared: Any = None
) -> dd.DataFrame:
    """A Dask frame of ``dataset`` whose partitions are pages of ``partition_size`` assets, loaded on the workers.

    ``shared``: a folder every worker and the client see, where the loads' base snapshots and journal are kept so
    that the frame can be pushed (`DaskAnnot.push`); without it the frame is for reading, checking and writing.
    """
    if partition_size < 1:
        raise ValueError(f"partition_size must be at least 1, got {partition_size}")
    ids = conn.cached_assets(dataset)["asset"].astype(str).tolist() if assets is None else [str(a) for a in assets]
    pages = [ids[i : i + partition_size] for i in range(0, len(ids), partition_size)] or [[]]
    backend, spec = conn.backend.name, conn.backend.spec()
    root = None if shared is None else str(Path(shared).resolve())
    parts = [dask.delayed(_load_page)(backend, spec, dataset, page, root) for page in pages]
    return dd.from_delayed(parts, meta=schema.annotations_frame(), verify_meta=False)


def _read_one(path: str, format: str | None) -> pd.DataFrame:
    from .formats import load

    return schema.annotations_frame(load(path, format).annotations)


def read_dask(paths: Sequence[Any], format: str | None = None) -> dd.DataFrame:
    """A Dask frame with one partition per annotation file or folder, each read on a worker."""
    parts = [dask.delayed(_read_one)(str(p), format) for p in paths]
    return dd.from_delayed(parts, meta=schema.annotations_frame(), verify_meta=False)


# -- per partition -------------------------------------------------------------------------------------------
def _validate_part(part: pd.DataFrame, assets: pd.DataFrame | None) -> pd.DataFrame:
    from .validation import validate

    mine = None if assets is None else assets[assets["asset"].isin(part["asset"].dropna().unique())]
    return validate(part, mine).astype(schema.STR)


def _pixels_part(part: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    from .geometry import to_pixels

    return to_pixels(part, assets[assets["asset"].isin(part["asset"].dropna().unique())])


def _counts_part(part: pd.DataFrame) -> pd.DataFrame:
    live = part[~part["deleted"].to_numpy(dtype=bool)]
    counts = live.groupby(["label", "kind", "asset"], dropna=False, observed=True).size().reset_index(name="count")
    return counts.astype({"label": schema.STR, "kind": schema.STR, "asset": schema.STR, "count": "int64"})


def _save_part(
    part: pd.DataFrame, folder: str, format: str, assets: pd.DataFrame | None, labels: pd.DataFrame, options: dict
) -> pd.DataFrame:
    """On a worker: this partition's files under ``folder`` (its own subfolder); the paths written."""
    from .formats import save

    if not len(part):
        return pd.DataFrame({"path": pd.Series([], dtype=schema.STR)})
    out = Path(folder) / uuid.uuid4().hex
    mine = None if assets is None else assets[assets["asset"].isin(part["asset"].dropna().unique())]
    target = out / "part.json" if format == "coco" else out
    written = save(part, target, format, assets=mine, labels=labels, **options)
    return pd.DataFrame({"path": pd.Series([str(p) for p in written], dtype=schema.STR)})


@register_dataframe_accessor("annot")
class DaskAnnot:
    """``ddf.annot``: what annotebook does partition by partition on a Dask annotations frame."""

    def __init__(self, obj: dd.DataFrame):
        if not {"id", "kind", "label", "asset"}.issubset(obj.columns):
            raise AttributeError(".annot needs an annotations table (columns id, kind, label, asset, ...)")
        self._obj = obj

    def validate(self, assets: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every problem of every partition (and ids repeated across partitions) as one pandas frame."""
        obj = self._obj
        found = obj.map_partitions(_validate_part, assets, meta=_PROBLEMS)
        keys = obj[["dataset", "id"]].dropna()
        repeats = keys.groupby(["dataset", "id"]).size(split_out=1)  # a tree reduction, no shuffle
        repeated, problems = dask.compute(repeats[repeats > 1], found)
        # a partition sees only its own duplicates: every repeated id is named once, counted over the whole frame
        problems = problems[~problems["problem"].str.startswith("id is used by ").to_numpy(dtype=bool)]
        if len(repeated):
            across = pd.DataFrame(
                {
                    "id": [i for _, i in repeated.index],
                    "column": "id",
                    "problem": [
                        f"id is used by {n} rows of dataset {d!r}; ids are unique within a dataset"
                        for (d, _), n in repeated.items()
                    ],
                }
            ).astype(schema.STR)
            problems = pd.concat([problems, across], ignore_index=True)
        return problems.reset_index(drop=True)

    def to_pixels(self, assets: pd.DataFrame) -> dd.DataFrame:
        """A Dask frame with coordinates in pixels of each asset (``assets``: the assets table, sent to every task)."""
        return self._obj.map_partitions(_pixels_part, assets, meta=self._obj._meta)

    def summary(self) -> pd.DataFrame:
        """Counts of non-deleted rows per label and kind, with the number of assets: as ``df.annot.summary()``."""
        per = self._obj.map_partitions(
            _counts_part,
            meta=pd.DataFrame(
                {
                    "label": pd.Series([], dtype=schema.STR),
                    "kind": pd.Series([], dtype=schema.STR),
                    "asset": pd.Series([], dtype=schema.STR),
                    "count": pd.Series([], dtype="int64"),
                }
            ),
        ).compute()
        # an asset split over partitions (a frame not loaded by pages) counts once
        per = per.groupby(["label", "kind", "asset"], dropna=False, as_index=False)["count"].sum()
        grouped = per.groupby(["label", "kind"], dropna=False, sort=True)
        out = grouped.agg(count=("count", "sum"), assets=("asset", "nunique")).reset_index()
        out = out.astype({"label": schema.STR, "kind": schema.STR, "count": "int64", "assets": "int64"})
        out = out.sort_values(["count", "label", "kind"], ascending=[False, True, True], kind="stable")
        return out.reset_index(drop=True)[["label", "kind", "count", "assets"]]

    def labels(self) -> pd.DataFrame:
        """A labels table of every label in the frame (sorted by name, indices 0..n-1)."""
        names = sorted(str(n) for n in self._obj["label"].dropna().drop_duplicates(split_out=1).compute())
        return schema.labels_frame({"name": names, "index": list(range(len(names)))})

    def _complete(self, labels: pd.DataFrame | None) -> pd.DataFrame:
        """``labels`` with every label of the frame it lacks added after its highest index (all of them if None)."""
        if labels is None:
            return self.labels()
        labels = schema.labels_frame(labels)
        missing = sorted(set(self.labels()["name"]) - set(labels["name"].dropna()))
        if not missing:
            return labels
        top = int(labels["index"].max()) if labels["index"].notna().any() else -1
        extra = schema.labels_frame({"name": missing, "index": list(range(top + 1, top + 1 + len(missing)))})
        return pd.concat([labels, extra], ignore_index=True)

    def save(
        self,
        path: Any,
        format: str,
        *,
        assets: pd.DataFrame | None = None,
        labels: pd.DataFrame | None = None,
        **options: Any,
    ) -> list[Path]:
        """Write the frame in ``format`` under ``path`` (a folder every worker sees): each partition writes its
        assets' files, then they are merged: folder formats (YOLO, VOC, per-asset JSON) file by file, COCO into one
        ``path`` JSON with ids renumbered. One labels table for all partitions (``labels``, else every label in
        the frame, sorted) keeps class indices the same everywhere. Partitions must hold whole assets (as
        `load_dask` and `read_dask` make them). Returns the files written."""
        from .formats import find_format

        format = find_format(Path(path), format).name
        if format not in (*_FOLDER_FORMATS, "coco"):
            raise ValueError(f"a Dask frame saves to {', '.join((*_FOLDER_FORMATS, 'coco'))}, not {format!r}")
        labels = self._complete(labels)
        dest = Path(path)
        scratch = (dest.parent if format == "coco" else dest) / f".annotebook-parts-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True, exist_ok=True)
        meta = pd.DataFrame({"path": pd.Series([], dtype=schema.STR)})
        try:
            written = self._obj.map_partitions(
                _save_part, str(scratch), format, assets, labels, options, meta=meta
            ).compute()
            parts = sorted({Path(p).relative_to(scratch).parts[0] for p in written["path"]})
            if format == "coco":
                return [_merge_coco([scratch / p / "part.json" for p in parts], dest)]
            return _merge_folders([scratch / p for p in parts], dest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def push(self, shared: Any = None, dry_run: bool = False) -> pd.DataFrame:
        """Push every partition's changes through the sync engine, partition by partition, on the workers.

        Needs ``shared``: the folder given to ``load_dask(shared=...)``, where the loads' base snapshots and the
        journal live. A Dask frame is immutable, so the new ids and revisions are not written back: load again to
        go on editing. Returns one row per partition: rows created, updated, deleted, and what failed.
        """
        if shared is None:
            raise PushError(
                "a Dask frame is pushed against base snapshots every worker and the client can see: load it with "
                "load_dask(..., shared=PATH) and push with ddf.annot.push(shared=PATH) (a shared filesystem path)"
            )
        root = str(Path(shared).resolve())
        meta = pd.DataFrame(
            {
                "created": pd.Series([], dtype="int64"),
                "updated": pd.Series([], dtype="int64"),
                "deleted": pd.Series([], dtype="int64"),
                "failed": pd.Series([], dtype=object),
            }
        )
        return self._obj.map_partitions(_push_part, root, dry_run, meta=meta).compute().reset_index(drop=True)


def _push_part(part: pd.DataFrame, shared: str, dry_run: bool) -> pd.DataFrame:
    """On a worker: push one partition against the shared registry."""
    from .connection import connection_for
    from .sync.push import push
    from .sync.registry import registry

    reg = registry(Path(shared))
    if len(part) and part["load"].isna().all():
        raise PushError("this partition carries no load token: it was not loaded with load_dask(shared=...)")
    frame = part.copy()
    report = push(
        frame,
        dry_run=dry_run,
        reg=reg,
        connect=lambda name, spec: connection_for(name, spec).backend,
    )
    cs = report.changeset
    return pd.DataFrame(
        {
            "created": [len(cs.added) if dry_run else len(report.created)],
            "updated": [len(cs.modified) if dry_run else len(report.updated)],
            "deleted": [len(cs.deleted) if dry_run else len(report.deleted)],
            "failed": [list(report.failed)],
        }
    )


def _merge_folders(parts: list[Path], dest: Path) -> list[Path]:
    """Move every partition's files into ``dest``; files several partitions write (classes.txt, data.yaml) must
    agree and are kept once; an asset's file written twice means an asset was split over partitions."""
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    seen: dict[Path, bytes] = {}
    for part in parts:
        for src in sorted(p for p in part.rglob("*") if p.is_file()):
            rel = src.relative_to(part)
            data = src.read_bytes()
            if rel in seen:
                if seen[rel] != data:
                    raise ValueError(
                        f"{rel} was written differently by two partitions: an asset is split over partitions "
                        "(load with load_dask or read_dask, or repartition by asset first), or the labels differ"
                    )
                continue
            seen[rel] = data
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), target)
            out.append(target)
    return out


def _merge_coco(parts: list[Path], dest: Path) -> Path:
    """One COCO file from the partitions' files: images and annotations renumbered, categories from the first."""
    merged: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    next_image, next_ann = 1, 1
    for k, part in enumerate(parts):
        doc = json.loads(part.read_text())
        if k == 0:
            merged.update({key: v for key, v in doc.items() if key not in ("images", "annotations")})
        elif doc.get("categories") != merged["categories"]:
            raise ValueError(f"partition {k} wrote other categories than partition 0: give save() one labels table")
        images = {}
        for img in doc.get("images", []):
            images[img["id"]] = next_image
            merged["images"].append({**img, "id": next_image})
            next_image += 1
        for ann in doc.get("annotations", []):
            merged["annotations"].append({**ann, "id": next_ann, "image_id": images[ann["image_id"]]})
            next_ann += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(merged))
    tmp.replace(dest)
    return dest
