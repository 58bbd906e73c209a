"""`connect()`: a backend behind the three tables and one push.

Examples
--------
>>> import annotebook as ab
>>> conn = ab.connect()                       # doctest: +SKIP
>>> anns = conn.assets("shapes").annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import schema
from ._home import home
from .backends.base import Backend
from .errors import NotSupported

if TYPE_CHECKING:
    from .backends.transfer_report import ExportResult, ImportReport

__all__ = ["BACKENDS", "Connection", "connect", "connection_for", "read"]

#: name -> (module:class, what to install); imported lazily so `import annotebook` stays cheap
BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("annotebook.backends.local:LocalBackend", "annotebook"),
    "files": ("annotebook.backends.files:FilesBackend", "annotebook"),
    "nexus": ("annotebook.backends.nexus:NexusBackend", "annotebook"),
    "vi": ("annotebook.backends.vi:ViBackend", "annotebook"),
    "pictograph": ("annotebook.backends.pictograph:PictographBackend", "annotebook"),
    "clarifai": ("annotebook.backends.clarifai:ClarifaiBackend", "annotebook"),
    "superannotate": ("annotebook.backends.superannotate:SuperAnnotateBackend", "annotebook"),
    "labelstudio": ("annotebook.backends.labelstudio:LabelStudioBackend", "annotebook"),
}

_CONNECTIONS: dict[tuple[str, str], Connection] = {}


class Connection:
    """A backend plus the registry that traces every frame loaded through it."""

    def __init__(self, backend: Backend, dataset: str | None = None):
        self.backend = backend
        # a backend made for one dataset (a Nexus project, a file) makes it the default
        self.dataset = dataset if dataset is not None else getattr(backend, "bound_dataset", None)
        self._assets_cache: dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        spec = ", ".join(f"{k}={v!r}" for k, v in self.backend.spec().items())
        return f"<annotebook.Connection {self.backend.name} {spec}>"

    def datasets(self) -> pd.DataFrame:
        """The datasets on this backend, one row each."""
        return self.backend.datasets()

    def assets(self, dataset: str | None = None, **filters: Any) -> pd.DataFrame:
        """One row per asset of ``dataset`` (name, width, height, uri, status, ...), traced to this connection.

        ``filters`` go to the backend only when given; one the backend does not take raises `NotSupported` naming
        it. A filtered table is not kept as the dataset's assets (a push still sees them all).

        >>> conn.assets(status="ANNOTATION_AWAITING_REVIEW").annot.load()   # doctest: +SKIP
        """
        import inspect

        from .sync.registry import registry

        dataset = self._dataset(dataset)
        if not filters:
            assets = self.backend.assets(dataset)
            self._assets_cache[dataset] = assets
        else:
            method: Any = self.backend.assets
            params = inspect.signature(method).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            lacking = [k for k in filters if not takes_any and (k not in params or k == "dataset")]
            if lacking:
                raise NotSupported(f"the {self.backend.name} backend's assets take no {', '.join(lacking)} filter")
            assets = method(dataset, **filters)
        token = registry().new_load(self.backend.name, self.backend.spec(), dataset, _no_rows())
        assets["load"] = pd.Series(token, index=assets.index, dtype=schema.STR)  # pandas 2.3 would infer object
        return assets

    def labels(self, dataset: str | None = None) -> pd.DataFrame:
        """The labels table of ``dataset``."""
        return self.backend.labels(self._dataset(dataset))

    def annotations(self, dataset: str | None = None, assets: Sequence[str] | None = None) -> pd.DataFrame:
        """The annotations of ``dataset`` (or of these asset ids), traced to this load for diff and push."""
        from .sync.registry import registry

        dataset = self._dataset(dataset)
        anns = self.backend.annotations(dataset, assets)
        token = registry().new_load(self.backend.name, self.backend.spec(), dataset, anns)
        anns["load"] = pd.Series(token, index=anns.index, dtype=schema.STR)
        return anns

    def push(self, frame: pd.DataFrame, dry_run: bool = False) -> Any:
        """Push ``frame`` (loaded here, or built by hand) to this backend; see `annotebook.sync.push`."""
        from .sync.push import push

        return push(frame, dry_run=dry_run, backend=self.backend, assets=self.cached_assets)

    def import_files(
        self,
        paths: Any,
        dataset: str | None = None,
        *,
        format: str | None = None,
        progress: bool = True,
        **options: Any,
    ) -> ImportReport:
        """Import annotation files or folders into ``dataset``; an `ImportReport` with a row per file.

        ``options`` are the backend's own (Vi's failure policies, ``wait=False`` on the platforms); a backend that
        takes no imports (a file read with ``ab.read``) raises `NotSupported`.

        >>> report = conn.import_files(["batch/"], dataset="x")   # doctest: +SKIP
        >>> report.ok, report.rejected                            # doctest: +SKIP
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        method = self._ability("import_files", "imports")
        report: ImportReport = method(paths, self._dataset(dataset), format=format, progress=progress, **options)
        self._assets_cache.clear()
        return report

    def export(
        self,
        format: str,
        dest: str | Path,
        dataset: str | None = None,
        *,
        images: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> ExportResult:
        """Export a dataset in ``format`` to ``dest`` (a file or folder, as the format writes); an `ExportResult`.

        ``options`` are the writer's or the platform's own (``skip_unsupported=True``, ``split_ratio=0.2``, ...).

        >>> result = conn.export("coco", "out/", dataset="x")   # doctest: +SKIP
        >>> result.files                                       # doctest: +SKIP
        """
        method = self._ability("export", "exports")
        result: ExportResult = method(format, dest, self._dataset(dataset), images=images, progress=progress,
                                      **options)  # fmt: skip
        return result

    def _ability(self, name: str, what: str) -> Any:
        """The backend's method ``name``, or `NotSupported` naming what it lacks (never an AttributeError)."""
        method = getattr(self.backend, name, None)
        if method is None:
            raise NotSupported(f"the {self.backend.name} backend takes no {what}")
        return method

    def _dataset(self, dataset: str | None) -> str:
        dataset = dataset or self.dataset
        if dataset is None:
            raise ValueError("name the dataset: this connection is not bound to one (connect(..., dataset=...))")
        resolve = getattr(self.backend, "dataset_id", None)  # a platform that also takes a dataset's name
        return str(resolve(dataset)) if resolve is not None else dataset

    def cached_assets(self, dataset: str) -> pd.DataFrame:
        """The assets table of ``dataset``, read once per connection."""
        if dataset not in self._assets_cache:
            self._assets_cache[dataset] = self.backend.assets(dataset)
        return self._assets_cache[dataset]


def _no_rows() -> pd.DataFrame:
    from .schema import annotations_frame

    return annotations_frame()


def _make_backend(name: str, options: dict[str, Any]) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    target, install = BACKENDS[name]
    module_name, cls_name = target.split(":")
    try:
        import importlib

        cls = getattr(importlib.import_module(module_name), cls_name)
    except ImportError as exc:  # pragma: no cover - depends on the extras installed
        raise ImportError(f"the {name} backend needs `pip install {install}`") from exc
    backend: Backend = cls(**options)
    return backend


def connect(backend: str = "local", *, dataset: str | None = None, **options: Any) -> Connection:
    """Connect to a backend; returns a `Connection` (``.datasets()``, ``.assets(dataset)``, ``.labels(dataset)``,
    ``.import_files(...)``, ``.export(format, dest)``).

    ``dataset=`` binds the connection to one dataset, so verbs may leave it out. Backends and their options
    (secrets come from the environment variable named, never from a printed value):

    - ``"local"`` (default): the embedded store, no account. ``path=`` a folder (default: the store under
      ``ANNOTEBOOK_HOME`` or the per-user data folder, with the sample dataset "shapes").
    - ``"nexus"`` (Datature Nexus): ``project=``, ``key=`` (or ``DATATURE_SECRET_KEY``), ``endpoint=``.
    - ``"vi"`` (Datature Vi): ``organization=``, ``dataset=``, ``key=`` (or ``DATATURE_VI_SECRET_KEY``), ``endpoint=``.
    - ``"clarifai"``: ``user_id=``, ``app_id=``, ``pat=`` (or ``CLARIFAI_PAT``), ``base_url=``.
    - ``"pictograph"``: ``dataset=``, ``key=`` (or ``PICTOGRAPH_API_KEY``), ``base_url=``.
    - ``"superannotate"`` and ``"labelstudio"``: see ``help()`` of their backend classes for their options.

    Every platform has a simulator for trying it offline: ``python -m annotebook.testing serve nexus --port 0``.
    ``ab.read(path)`` opens an annotation file (COCO, YOLO, VOC, CSV, ...) the same way.

    >>> conn = ab.connect()                                   # doctest: +SKIP
    >>> conn = ab.connect("nexus", project="proj_...")        # doctest: +SKIP
    """
    if backend == "local" and "path" not in options:
        options["path"] = str(home() / "store")
    if backend == "local":
        options["path"] = str(Path(options["path"]).expanduser().resolve())
    conn = Connection(_make_backend(backend, options), dataset=dataset)
    _CONNECTIONS[(backend, json.dumps(conn.backend.spec(), sort_keys=True))] = conn
    return conn


def read(path: str | Path, format: str | None = None, dataset: str | None = None, **options: Any) -> pd.DataFrame:
    """Read an annotation file or folder into an annotations frame (format sniffed when not given).

    The frame is traced to the file: ``anns.annot.assets`` and ``anns.annot.labels`` give its other tables, and
    ``anns.annot.save(path, format)`` writes it in any format.
    """
    if not Path(path).expanduser().exists():
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
    backend = _make_backend("files", {"path": str(path), "format": format, "dataset": dataset, **options})
    conn = Connection(backend, dataset=str(backend.spec()["dataset"]))
    _CONNECTIONS[("files", json.dumps(backend.spec(), sort_keys=True))] = conn
    return conn.annotations(str(conn.dataset))


def connection_for(backend: str, spec: dict[str, Any]) -> Connection:
    """The connection a load was made through (reconnected from its registry entry when needed)."""
    key = (backend, json.dumps(spec, sort_keys=True))
    if key not in _CONNECTIONS:
        _CONNECTIONS[key] = Connection(_make_backend(backend, dict(spec)))
    return _CONNECTIONS[key]
