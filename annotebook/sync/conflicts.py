"""The one conflict check (data contract R-13), for every backend: the re-read remote rows against the lineage.

For every row a push modifies or deletes (and, for replace-per-asset backends, every row of a touched unit):
with revisions, the remote revision must be the one the lineage expects; without, the row's ``row_key`` (what
the platform keeps of it) must equal the lineage's. A row gone remotely, or re-id'd, is a conflict unless the
pushing owner's own journal explains it. A delete of a row another writer already deleted counts as deleted (the
report names it in ``gone``) only on backends that patch in place, where a delete can be told from an edit; where
edits re-id rows it is a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import schema
from ..backends.base import Capabilities, Changes
from ..errors import ConflictError
from .engine import records

__all__ = ["Check", "check", "raise_conflicts"]

RowKey = Callable[[Mapping[str, Any]], Hashable]


@dataclass
class Check:
    """What the check found: ``problems`` (id, field, base, remote, local) and ``gone`` (already deleted)."""

    problems: list[dict[str, Any]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)


def _moved(caps: Capabilities, key: RowKey, remote: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    if caps.revisions != "none":
        return str(remote.get("rev")) != str(known.get("rev"))
    return key(remote) != key(known)


def _fields(remote: Mapping[str, Any], mine: Mapping[str, Any], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    fields = schema.changed_fields(remote, mine) or schema.changed_fields(remote, base) or ["rev"]
    return [
        {"field": f, "base": base.get(f), "remote": remote.get(f), "local": mine.get(f, base.get(f))} for f in fields
    ]


def check(
    changes: Changes,
    remote: Mapping[str, Mapping[str, Any]],
    caps: Capabilities,
    key: RowKey,
    explained: set[str],
    units: set[str] | None = None,
) -> Check:
    """Compare ``remote`` (id -> re-read row) with what ``changes.known`` says this load last knew.

    ``explained`` are ids whose remote state the owner's own landed writes account for; ``units`` (replace
    backends) widens the check to every known row of those units and to rows added to them elsewhere.
    """
    out = Check()
    known = changes.known
    updates = changes.updates
    at = {str(i): n for n, i in enumerate(updates["id"])}
    deleting = {str(i) for i in changes.deletes["id"]}
    looked = set(at) | deleting
    if units is None:  # only the rows pushed are compared (a push of 1% of a big load stays cheap)
        known = known[known.index.isin(list(looked))]
        if caps.revisions != "none":
            known = known[["rev"]]  # rows are turned into dicts only where a conflict is named
    known_rows = {str(i): {str(k): v for k, v in r.items()} for i, r in known.to_dict("index").items()}
    if units is not None:
        unit_col = caps.unit
        looked |= {i for i, r in known_rows.items() if str(r.get(unit_col)) in units and not r.get("gone")}
    reids = caps.strategy != "patch"

    def base_of(row_id: str) -> dict[str, Any]:
        full = changes.known
        return {str(k): v for k, v in full.loc[row_id].items()} if row_id in full.index else {}

    for row_id in sorted(looked - explained):
        base = known_rows.get(row_id, {})
        now = remote.get(row_id)
        if now is None:
            if row_id in deleting and not reids:
                out.gone.append(row_id)
                continue
            what = "edited" if row_id in at else row_id in deleting
            out.problems.append({"id": row_id, "field": "deleted", "base": False, "remote": True, "local": what})
            continue
        if base and _moved(caps, key, now, base):
            full = base_of(row_id)
            local = records(updates.iloc[[at[row_id]]])[0] if row_id in at else None
            out.problems += [{"id": row_id, **p} for p in _fields(now, local or full, full)]
    if units is not None:
        covered = {str(r.get(caps.unit)) for r in known_rows.values()}
        for row_id, now in remote.items():
            if row_id in known_rows or row_id in explained or str(now.get(caps.unit)) not in covered:
                continue
            out.problems.append({"id": row_id, "field": "added", "base": None, "remote": key(now), "local": None})
    return out


def raise_conflicts(found: Check, where: str, report: Any = None) -> None:
    """Raise the `ConflictError` of ``found`` (nothing written by this step); ``report`` says what landed before."""
    if not found.problems:
        return
    frame = pd.DataFrame(found.problems, columns=["id", "field", "base", "remote", "local"])
    exc = ConflictError(
        f"{frame['id'].nunique()} row(s) changed on {where} since this frame's load; nothing of them was written. "
        "Reload, or re-apply your edits on a fresh load.",
        frame,
    )
    exc.report = report
    raise exc
