"""The ``.annot`` accessor: the front door. It checks columns, holds no state, and delegates.

On an annotations frame: ``show``, ``gallery``, ``summary``, ``plot_labels``, ``edit``, ``browse``, ``delete``,
``add_box``, ``new_box``, ``diff``, ``push``, ``validate``, ``save``, ``to_pixels``, ``merge_assets``, ``assets``,
``labels``. On an assets frame: ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from . import schema
from ._pandas import writing_into_frame
from .errors import NotSupported, TraceError

__all__ = ["AnnotAccessor"]


def _is_assets(df: pd.DataFrame) -> bool:
    return "kind" not in df.columns and {"asset", "width", "height"}.issubset(df.columns)


@pd.api.extensions.register_dataframe_accessor("annot")
class AnnotAccessor:
    """``df.annot``: annotebook's verbs on an annotations or assets table.

    A frame from ``conn.assets(dataset).annot.load()`` is an annotations table: one row per region, coordinates
    normalised to [0, 1] of each image. Look (``show``, ``gallery``, ``browse``, ``summary``, ``plot_labels``),
    fix (plain pandas assignment, ``edit`` for the inline editor, ``delete``, ``add_box``), check (``validate``,
    ``diff``) and send back exactly what changed (``push``); ``save`` writes any file format.

    >>> import annotebook as ab
    >>> anns = ab.connect().assets("shapes").annot.load()   # doctest: +SKIP
    >>> anns.loc[anns.label == "sqare", "label"] = "square"  # doctest: +SKIP
    >>> anns.annot.delete(anns.label == "noise")             # doctest: +SKIP
    >>> anns.annot.push()                                    # doctest: +SKIP
    """

    def __init__(self, obj: pd.DataFrame):
        if not _is_assets(obj) and not {"id", "kind", "label"}.issubset(obj.columns):
            raise AttributeError(
                ".annot needs an annotations table (columns id, kind, label, ...) or an assets table "
                "(asset, width, height, ...), as conn.assets(...) and .annot.load() return them"
            )
        self._obj = obj

    # -- tracing -------------------------------------------------------------------------------------------
    def _traced(self) -> tuple[Any, str]:
        """(connection, dataset) of the frame's load."""
        from .connection import connection_for
        from .errors import TraceError
        from .sync.registry import registry

        tokens = self._obj["load"].dropna().unique().tolist() if "load" in self._obj.columns else []
        if not tokens:
            raise TraceError("this frame has no load token: it was not loaded through annotebook.connect()")
        backend, spec, dataset = registry().load_info(str(tokens[0]))
        return connection_for(backend, spec), dataset

    @property
    def assets(self) -> pd.DataFrame:
        """The assets table of the frame's dataset."""
        if _is_assets(self._obj):
            return self._obj
        conn, dataset = self._traced()
        return conn.cached_assets(dataset)

    @property
    def labels(self) -> pd.DataFrame:
        """The labels table of the frame's dataset."""
        conn, dataset = self._traced()
        return conn.labels(dataset)

    # -- assets frames -------------------------------------------------------------------------------------
    def load(self) -> pd.DataFrame:
        """Annotations of exactly the assets in this assets frame."""
        if not _is_assets(self._obj):
            raise AttributeError("load() is for an assets frame: conn.assets(dataset).annot.load()")
        conn, dataset = self._traced()
        return conn.annotations(dataset, assets=self._obj["asset"].astype(str).tolist())

    def load_dask(self, partition_size: int = 1000, shared: Any = None) -> Any:
        """A Dask frame of these assets' annotations: partitions of ``partition_size`` assets, loaded on the workers
        (``shared``: a folder all of them see, needed to push; see `annotebook.dask`)."""
        from .dask import load_dask

        if not _is_assets(self._obj):
            raise AttributeError("load_dask() is for an assets frame: conn.assets(dataset).annot.load_dask()")
        conn, dataset = self._traced()
        return load_dask(conn, dataset, self._obj["asset"].astype(str).tolist(), partition_size, shared)

    # -- looking -------------------------------------------------------------------------------------------
    def _live(self) -> pd.DataFrame:
        return self._obj[~self._obj["deleted"].to_numpy(dtype=bool)]

    def show(self, asset: str | None = None, ax: Any = None, **kwargs: Any) -> Any:
        """Draw one asset (default: the frame's first) with its regions and labels; returns the Axes."""
        from .render import show_asset

        if asset is None:
            asset = str(self._obj["asset"].iloc[0])
        kwargs.setdefault("captions", self._outside_captions(asset))
        return show_asset(self._obj, self.assets, asset, ax=ax, labels=self._labels_or_none(), **kwargs)

    def _outside_captions(self, asset: str) -> dict[str, str]:
        """Caption texts of ``asset``'s grounding rows whose caption row is not in this frame, from their load."""
        df = self._obj
        phrases = df[(df["asset"] == asset).fillna(False) & (df["kind"] == "grounding").fillna(False)]
        missing = set(phrases["parent"].dropna()) - set(df["id"])
        if not missing:
            return {}
        from .sync.registry import registry

        found: dict[str, str] = {}
        for token in phrases["load"].dropna().unique():
            try:
                current = registry().lineage(str(token)).current
            except Exception:  # untraceable (a hand-built frame, a load from another machine): no caption then
                continue
            for parent in missing & set(current.index):
                text = current.loc[parent, "text"]
                if isinstance(text, str):
                    found[str(parent)] = text
        return found

    def gallery(self, n: int = 12, cols: int = 4, findings: pd.DataFrame | None = None, **kwargs: Any) -> Any:
        """A grid of the frame's first ``n`` assets with overlays; returns the Figure.

        ``findings=`` (of `qa` or `mistakes`): a clickable grid of the worst findings' assets instead, the offending
        regions highlighted and the reasons as captions (`annotebook.widgets.gallery.FindingsGallery`).
        """
        from .render import gallery

        if findings is not None:
            from .widgets.gallery import FindingsGallery

            return FindingsGallery(self._obj, findings, per_page=n, cols=cols, **kwargs)
        if len(self._obj) == 0:
            raise ValueError("the frame has no rows: nothing to show (check the filter that made it)")
        return gallery(self._obj, self.assets, n=n, cols=cols, labels=self._labels_or_none(), **kwargs)

    def summary(self) -> pd.DataFrame:
        """Counts per label and kind (deleted rows left out)."""
        from .render import summary

        return summary(self._obj)

    def plot_labels(self, ax: Any = None) -> Any:
        """Bar chart of counts per label, in the labels' own colours (as in every picture); returns the Axes."""
        from .render import plot_labels

        return plot_labels(self._obj, ax=ax, labels=self._labels_or_none())

    def _labels_or_none(self) -> pd.DataFrame | None:
        try:
            return self.labels
        except TraceError:  # a hand-built frame has no labels table
            return None

    # -- editing -------------------------------------------------------------------------------------------
    def delete(self, rows: Any) -> int:
        """Flag rows as deleted, in place; returns how many. The next ``push`` deletes them on the backend.

        ``rows``: a boolean mask aligned with the frame (``anns.label == "noise"``), or a list of row ids
        (``["12", "13"]``). Anything else (a string, ``True``, a number) is refused: it would select every row.

        >>> anns.annot.delete(anns.label == "noise")   # doctest: +SKIP
        >>> anns.annot.delete(["12", "13"])            # doctest: +SKIP
        """
        from .guards import rows_to_delete

        picked = rows_to_delete(self._obj, rows)
        self._obj.loc[picked, "deleted"] = True
        return int(picked.sum())

    def new_box(
        self, asset: str, label: str, box: Sequence[float], *, rotation: float = 0.0, **fields: Any
    ) -> pd.DataFrame:
        """Rows (one) of a new box ``(x0, y0, x1, y1)`` on ``asset``, ready for ``pd.concat`` or ``add_rows``."""
        x0, y0, x1, y1 = (float(v) for v in box)
        return self.new_rows(
            [
                {
                    "asset": asset,
                    "label": label,
                    "kind": "box",
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                    "rotation": rotation,
                    **fields,
                }
            ]
        )

    def new_rows(self, records: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """New rows in full contract dtypes, with fresh ids, this frame's dataset and load, unused index labels."""
        df = self._obj
        base = {"dataset": _one(df, "dataset"), "load": _one(df, "load")}
        rows = schema.annotations_frame([{**base, **r, "id": schema.new_id()} for r in records])
        rows.index = _fresh_labels(df.index, rows["id"].tolist())
        return rows[[c for c in df.columns if c in rows.columns] + [c for c in rows.columns if c not in df.columns]]

    def add_box(self, asset: str, label: str, box: Sequence[float], **fields: Any) -> str:
        """Add a box ``(x0, y0, x1, y1)`` (normalised) to this frame in place; returns its new (client) id."""
        return self.add_rows(self.new_box(asset, label, box, **fields))[0]

    def add_rows(self, rows: pd.DataFrame) -> list[str]:
        """Append ``rows`` (from ``new_rows``) to this frame in place, keeping every column's dtype."""
        df = self._obj
        combined = pd.concat([df, rows[[c for c in rows.columns if c in df.columns]]])
        # pandas 3 deprecates setting-with-enlargement across dtypes and has no public in-place append;
        # _update_inplace is what pandas' own inplace=True methods use to swap a frame's data in place.
        with writing_into_frame():  # a slice of another frame: this object is the one meant (pandas 2 warns)
            df._update_inplace(combined)  # type: ignore[operator]
        return [str(i) for i in rows["id"]]

    def edit(self, target: Any = None, assets: pd.DataFrame | None = None, **options: Any) -> Any:
        """The inline editor on the frame's assets; every edit lands in this frame.

        ``target``: an asset id, a list of asset ids (walked in that order), or a boolean row mask (the assets of
        those rows). ``assets=``: an assets frame that receives review statuses. ``width=``, ``height=``: the
        canvas's pixels (960 x 640; on the page it shrinks to the cell's width). Press ``?`` in it for the keys.

        >>> editor = anns.annot.edit(anns.label == "sqare")   # doctest: +SKIP
        """
        from .widgets.editor import Editor

        return Editor(self._obj, target=target, assets=assets, **options)

    def browse(self, **kwargs: Any) -> Any:
        """An interactive gallery of the frame's assets with overlays; a click opens the editor."""
        from .widgets.gallery import Browser

        return Browser(self._obj, **kwargs)

    # -- sync ----------------------------------------------------------------------------------------------
    def diff(self) -> Any:
        """The `Changeset` between this frame and its load: added / modified (field by field) / deleted rows."""
        from .guards import check_column_typos
        from .sync.diff import diff

        check_column_typos(self._obj)
        return diff(self._obj)

    def push(self, dry_run: bool = False, **options: Any) -> Any:
        """Push this frame's changes to its backend; returns the `PushReport`. The frame gets the new ids/revs.

        ``options`` are the backend's own for this push (SuperAnnotate's ``keep_status=True``); a backend that takes
        none raises `NotSupported` naming them.
        """
        from .connection import connection_for
        from .guards import check_column_typos
        from .sync.push import push

        if _is_assets(self._obj):
            return self._push_statuses(dry_run)
        check_column_typos(self._obj)
        with self._push_options(options):
            return push(
                self._obj,
                dry_run=dry_run,
                connect=lambda name, spec: connection_for(name, spec).backend,
                assets=lambda dataset: self._traced()[0].cached_assets(dataset),
            )

    def _push_options(self, options: dict[str, Any]) -> Any:
        """The backend's ``push_options(**options)`` context, or a null one when no option is given."""
        import contextlib

        if not options:
            return contextlib.nullcontext()
        backend = self._traced()[0].backend
        if not hasattr(backend, "push_options"):
            raise NotSupported(f"the {backend.name} backend's push takes no options ({', '.join(options)})")
        return backend.push_options(**options)

    def _push_statuses(self, dry_run: bool) -> pd.DataFrame:
        """Send the assets' review statuses that differ from the backend's; a row per asset changed."""
        from .sync.statuses import push_statuses

        conn, dataset = self._traced()
        out = push_statuses(self._obj, conn.backend, dataset, dry_run)
        if not dry_run and len(out):
            conn._assets_cache.pop(dataset, None)
        return out

    def validate(self) -> pd.DataFrame:
        """Every problem of the frame at once: a DataFrame of (id, column, problem)."""
        from .validation import validate

        try:
            assets = self.assets
        except TraceError:  # an untraced frame is validated without the asset check
            assets = None
        return validate(self._obj, assets)

    def qa(self, checks: Sequence[str] | None = None, **options: Any) -> pd.DataFrame:
        """Findings of the QA checks (`annotebook.qa.CHECKS`): id, asset, check, severity, detail, score, other."""
        from .qa import qa

        return qa(self._obj, self._assets_or_none(), self._labels_or_none(), checks, options)

    def evaluate(self, preds: pd.DataFrame, iou: float = 0.5, **options: Any) -> Any:
        """``preds`` against this frame, COCO-style: an `annotebook.qa.Evaluation` (summary, confusion, plot_pr)."""
        from .qa import evaluate

        return evaluate(self._obj, preds, iou=iou, assets=self._assets_or_none(), **options)

    def mistakes(self, preds: pd.DataFrame, **options: Any) -> pd.DataFrame:
        """This frame's rows ranked by how strongly confident ``preds`` disagree (`annotebook.qa.mistakes`)."""
        from .qa import mistakes

        return mistakes(self._obj, preds, **options)

    def review(self, findings: pd.DataFrame, assets: pd.DataFrame | None = None, **options: Any) -> Any:
        """The editor walking ``findings``' assets worst first: accept / fix / skip; a `annotebook.qa.review.Review`.

        ``assets=``: an assets frame that receives the accepted status (push it with ``assets.annot.push()``).
        """
        from .qa.review import Review

        return Review(self._obj, findings, assets=assets, **options)

    def _assets_or_none(self) -> pd.DataFrame | None:
        try:
            return self.assets
        except TraceError:  # a hand-built frame: no sizes, measured in normalised units
            return None

    def to_pixels(self) -> pd.DataFrame:
        """A copy with coordinates in pixels of each asset."""
        from .geometry import to_pixels

        return to_pixels(self._obj, self.assets)

    def save(self, path: Any, format: str, **options: Any) -> list[Any]:
        """Write this frame (deleted rows left out) in ``format`` with its assets and labels; returns the files."""
        from .formats import save

        try:
            assets, labels = self.assets, self.labels
        except TraceError:  # an untraced frame writes with tables derived from its rows
            assets, labels = None, None
        return save(self._obj, path, format, assets=assets, labels=labels, **options)

    def merge_assets(self, assets: pd.DataFrame | None = None) -> pd.DataFrame:
        """The frame with asset columns joined (suffix ``_asset`` on clashes), still pushable."""
        assets = self.assets if assets is None else assets
        extra = assets.drop(columns=[c for c in ("load",) if c in assets.columns])
        out = self._obj.merge(extra, on=["dataset", "asset"], how="left", suffixes=("", "_asset"))
        out.index = self._obj.index
        return out


def _one(df: pd.DataFrame, col: str) -> Any:
    values = df[col].dropna().unique().tolist() if col in df.columns else []
    return values[0] if len(values) == 1 else None


def _fresh_labels(index: pd.Index, ids: list[str]) -> pd.Index:
    if len(index) == 0:
        return pd.RangeIndex(len(ids))
    if pd.api.types.is_integer_dtype(index.dtype):
        start = int(index.max()) + 1
        return pd.Index(range(start, start + len(ids)))
    return pd.Index(ids)
