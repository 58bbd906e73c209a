"""The one interface every platform implements, and the capabilities the sync engine plans from.

A backend speaks canonical tables only (see `docs/data-model.md`); its platform's vocabulary stops inside its module.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from .transfer_report import ExportResult, ImportReport

__all__ = ["ApplyResult", "Backend", "Capabilities", "Changes", "WireBackend"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; `docs/data-model.md` has the table for every platform."""

    update: bool = True  # patch a row in place (else: create + delete, or replace per asset)
    create: bool = True  # create single rows (else: imports only)
    replace_per_asset: bool = False  # a write replaces every row of an asset
    batch_size: int | None = None  # rows per request; None: one transaction for everything
    client_ids: bool = False  # the client may choose row ids
    revisions: Literal["counter", "etag", "updated_at", "none"] = "none"
    statuses: bool = False  # rows / assets carry review statuses
    creates_labels: bool = True  # an unknown label is created rather than refused
    atomic: bool = False  # a push lands whole or not at all (the backend offers ``transaction()``)
    conditional_write: bool = False  # a write refuses itself when its row moved (else: re-check, write, re-read)
    remote: bool = True  # reached over HTTP (the local store is not)
    unit: str = "asset"  # the column that keys one replace write (replace_per_asset backends)
    export_formats: tuple[str, ...] = ()

    @property
    def strategy(self) -> Literal["patch", "recreate", "replace"]:
        """How the sync engine writes to this backend (`annotebook.sync.engine`)."""
        if self.update:
            return "patch"
        return "replace" if self.replace_per_asset else "recreate"


@dataclass
class Changes:
    """What one push asks a backend to do, in canonical rows of one dataset.

    ``creates`` are full rows with client ids; ``updates`` full new rows with ``rev`` set to the revision the
    lineage expects the backend to hold; ``deletes`` has ``id``, ``asset`` and that expected ``rev``.
    """

    dataset: str
    creates: pd.DataFrame
    updates: pd.DataFrame
    deletes: pd.DataFrame
    #: what the pushing load(s) last knew of every row of the touched assets: indexed by id, ``rev``, the content
    #: columns and ``gone`` (the lineage, R-2); the engine compares the re-read remote rows with it
    known: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: whose writes these are: the load token(s) of the frame; journal entries of another owner explain nothing
    owner: str = ""

    def __len__(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)


@dataclass
class ApplyResult:
    """What landed: ``ids`` maps each client or old id to the backend's id, ``revs`` each landed id to its rev.

    ``moved`` maps the old id to the new id of rows the push did not ask to change whose id changed anyway
    (a backend that writes a whole asset at once gives every row of it a new id); their new revs are in ``revs``.
    """

    ids: dict[str, str] = field(default_factory=dict)
    revs: dict[str, str] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"id", "op", "error"} for what did not land
    #: rows this push meant to delete that another writer had already deleted (told apart from an edit)
    gone: list[str] = field(default_factory=list)
    #: ``checked``: time of the last re-check before the (last) write; ``written``: when that write was answered
    timings: dict[str, float] = field(default_factory=dict)
    #: journal keys the push settles once it has recorded this result in the registry (`annotebook.sync.journal`)
    settle: list[str] = field(default_factory=list)
    #: content as the platform stored it where it differs from what was sent, by landed id: what it filled in on a
    #: created row that the frame left empty (``author``, ``status``), coordinates at its own precision
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """One platform, in canonical tables."""

    name: str
    capabilities: Capabilities

    def spec(self) -> dict[str, Any]:
        """Connection options that reconnect to the same place; never a key or token."""
        ...

    def datasets(self) -> pd.DataFrame: ...

    def assets(self, dataset: str) -> pd.DataFrame: ...

    def labels(self, dataset: str) -> pd.DataFrame: ...

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Rows of the dataset (or of these assets) with ids and revs; no ``load`` token yet."""
        ...

    def image_path(self, dataset: str, asset: str) -> str | None:
        """A local file with the asset's pixels (downloaded and cached for remote backends), or None."""
        ...

    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Add annotation files to ``dataset`` (`NotSupported` where the backend takes none)."""
        ...

    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """Write ``dataset`` in ``format`` under ``dest`` (`NotSupported` where the backend exports nothing)."""
        ...


@runtime_checkable
class WireBackend(Backend, Protocol):
    """The small write primitives a backend gives the sync engine; the engine plans, checks and journals.

    Which of them a backend needs follows from its `Capabilities.strategy`:

    - every backend: ``annotations`` (the read: rows of some assets, as columns), ``row_key`` (what the platform
      keeps of a row, in normal form: how a re-read is compared and a re-id'd row recognised) and ``check_rows``
      (rows the platform cannot carry are named before any request);
    - ``patch`` (update in place): ``create_rows``, ``patch_rows``, ``delete_rows``;
    - ``recreate`` (an edit is a create, then a delete of the old row): ``create_rows``, ``delete_rows``;
    - ``replace`` (a write replaces every row of a unit, keyed by ``capabilities.unit``): ``replace_units``, and
      ``delete_rows`` when the platform deletes single rows without re-id'ing the others;
    - ``atomic`` backends: ``transaction()``, inside which the check and the writes run as one.

    ``create_rows`` returns ``(new id, rev)`` in the order of its rows; ``patch_rows`` the new rev per id;
    ``delete_rows`` the ids that were already gone (HTTP 404 at the first attempt: another writer, not us);
    ``replace_units`` calls ``recheck()`` right before the request that replaces (after uploads) and returns, per
    unit the platform refused, why. A write whose outcome is unknown raises `ServerError` / `ConnectionFailed`.
    """

    def row_key(self, row: Mapping[str, Any]) -> Hashable: ...

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None: ...
