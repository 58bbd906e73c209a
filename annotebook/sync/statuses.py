"""Asset review statuses: the assets table's ``status`` column pushed to its backend (``write_statuses``).

Statuses are per asset, not per row, and no platform gives them a revision, so this push compares with a fresh
listing (not with the load) and sends only the assets whose status differs from what the platform holds now.
A backend whose `Capabilities` declares no ``statuses`` refuses with `NotSupported`, naming the assets, before
any write.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import NotSupported

__all__ = ["push_statuses"]


def push_statuses(assets: pd.DataFrame, backend: Any, dataset: str, dry_run: bool = False) -> pd.DataFrame:
    """Send the statuses of ``assets`` that differ from the backend's; one row per asset changed (asset, old, new)."""
    remote = backend.assets(dataset).set_index("asset")["status"]
    mine = assets.set_index("asset")["status"]
    known = mine.index.isin(remote.index)
    if not known.all():
        raise ValueError(f"assets not in dataset {dataset!r}: {mine.index[~known].tolist()[:5]}")
    before = remote.reindex(mine.index)
    changed = ~((mine == before).fillna(False) | (mine.isna() & before.isna()))
    out = pd.DataFrame(
        {"asset": mine.index[changed], "old": before[changed].to_numpy(), "new": mine[changed].to_numpy()}
    )
    writer = getattr(backend, "write_statuses", None)
    if not len(out):
        return out
    if writer is None or not backend.capabilities.statuses:
        raise NotSupported(
            f"{backend.name} takes no asset statuses from annotebook: {len(out)} asset(s) differ "
            f"({out['asset'].head(3).tolist()}); nothing was written"
        )
    if not dry_run:
        writer(dataset, dict(zip(out["asset"], out["new"], strict=True)))
    return out
