"""annotebook: load, see, fix and push computer-vision annotations from a notebook, as pandas DataFrames.

>>> import annotebook as ab
>>> conn = ab.connect()                          # doctest: +SKIP
>>> anns = conn.assets("shapes").annot.load()    # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import accessor as _accessor  # registers the `.annot` accessor
from .backends.transfer_report import ExportResult, ImportReport
from .connection import Connection, connect, read
from .errors import (
    AnnotebookError,
    ArchiveTooLarge,
    AuthError,
    BackendError,
    ConflictError,
    ConnectionFailed,
    CorruptArchive,
    CorruptStore,
    DiskFull,
    FormatError,
    ImportFailed,
    ImportRejected,
    MalformedResponse,
    NotCarried,
    NotFound,
    NotSupported,
    PushError,
    RateLimited,
    ServerError,
    TraceError,
    UnsafeArchive,
    ValidationError,
)
from .schema import annotations_frame, assets_frame, labels_frame

if TYPE_CHECKING:
    from .sync.diff import Changeset
    from .sync.push import PushReport

__version__ = "0.1.0"

__all__ = [
    "AnnotebookError",
    "ArchiveTooLarge",
    "AuthError",
    "BackendError",
    "Changeset",
    "ConflictError",
    "Connection",
    "ConnectionFailed",
    "CorruptArchive",
    "CorruptStore",
    "DiskFull",
    "ExportResult",
    "FormatError",
    "ImportFailed",
    "ImportRejected",
    "ImportReport",
    "MalformedResponse",
    "NotCarried",
    "NotFound",
    "NotSupported",
    "PushError",
    "PushReport",
    "RateLimited",
    "ServerError",
    "TraceError",
    "UnsafeArchive",
    "ValidationError",
    "__version__",
    "annotations_frame",
    "assets_frame",
    "connect",
    "labels_frame",
    "read",
    "read_dask",
    "recover",
    "validate",
]

del _accessor


def validate(anns: Any, assets: Any = None) -> Any:
    """Every problem of an annotations frame at once, as a DataFrame of (id, column, problem)."""
    from .validation import validate as _validate

    return _validate(anns, assets)


def recover(load: str | None = None) -> Any:
    """Editor edits never pushed (a kernel killed before the push): per load, or one load's rows as a frame."""
    from .sync.registry import recover as _recover

    return _recover(load)


def __dir__() -> list[str]:
    """The public names (and the `samples` module), not the imports this module uses."""
    return sorted([*__all__, "samples"])


def read_dask(paths: Any, format: str | None = None) -> Any:
    """A Dask frame with one partition per annotation file or folder, read on the workers (the ``dask`` extra)."""
    from .dask import read_dask as _read_dask

    return _read_dask(paths, format)


def __getattr__(name: str) -> Any:
    if name == "samples":  # the sample dataset's module (`ab.samples.reset()`), loaded when first used
        import importlib

        return importlib.import_module(".samples", __name__)
    if name == "Changeset":
        from .sync.diff import Changeset

        return Changeset
    if name == "PushReport":
        from .sync.push import PushReport

        return PushReport
    raise AttributeError(f"module 'annotebook' has no attribute {name!r}")
