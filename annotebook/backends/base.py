"""The one interface every platform implements, and the capabilities the sync engine plans from.

A backend speaks canonical tables only (see `docs/data-model.md`); its platform's vocabulary stops inside its module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd

__all__ = ["ApplyResult", "Backend", "Capabilities", "Changes"]


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
    atomic: bool = False  # a push lands whole or not at all
    export_formats: tuple[str, ...] = ()


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

    def annotations(self, dataset: str, assets: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of the dataset (or of these assets) with ids and revs; no ``load`` token yet."""
        ...

    def apply(self, changes: Changes) -> ApplyResult:
        """Apply a changeset, refusing with `ConflictError` rows whose revision moved since the load."""
        ...

    def image_path(self, dataset: str, asset: str) -> str | None:
        """A local file with the asset's pixels (downloaded and cached for remote backends), or None."""
        ...
