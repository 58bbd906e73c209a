"""The one write engine: a changeset becomes the fewest requests a backend's `Capabilities` allow.

Every push goes through `apply`, whatever the platform. It

1. names every row the platform cannot carry (``backend.check_rows``) before any request;
2. re-reads the touched assets (one ``annotations`` call) and reconciles this owner's writes in flight from the
   journal (`annotebook.sync.journal`): what landed is taken, not sent again;
3. checks conflicts once (`annotebook.sync.conflicts`): revisions where the backend has them, else the rows' keys;
4. writes by the backend's strategy: ``patch`` (`annotebook.sync.patch`: update in place, in one transaction where
   the backend is atomic), ``recreate`` (`annotebook.sync.recreate`: create the new row, delete the old) or
   ``replace`` (`annotebook.sync.replace`: one write per unit, re-checked right before it and verified after),
   journaling each write before it is sent;
5. returns the `ApplyResult` (ids, revisions, re-id'd rows, what failed, timings); the push records it in the
   registry and only then settles the journal (``result.settle``), so a kernel that dies in between loses nothing.

A backend provides wire primitives only (see `annotebook.backends.base.WireBackend`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..backends.base import ApplyResult, Capabilities, Changes
from ..errors import BackendError, ConnectionFailed, PushError, ServerError
from .journal import WriteJournal

__all__ = ["Context", "apply", "place_of", "records"]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts with string keys."""
    rows = frame.to_dict("records")
    if all(isinstance(c, str) for c in frame.columns):
        return rows  # type: ignore[return-value]  # keys are the column names, already str
    return [{str(k): v for k, v in r.items()} for r in rows]


def place_of(backend: Any, dataset: str) -> str:
    """The journal's name for one dataset on one backend (connection options, never a key)."""
    return json.dumps([backend.name, backend.spec(), dataset], sort_keys=True, default=str)


@dataclass
class Context:
    """One push in progress: the backend, the changes, the journal and the result being built."""

    backend: Any
    changes: Changes
    journal: WriteJournal
    place: str
    result: ApplyResult = field(default_factory=ApplyResult)
    explained: set[str] = field(default_factory=set)  # lineage ids whose remote state our own landed writes explain
    renamed: dict[str, str] = field(default_factory=dict)  # remote id -> lineage id, for rows our writes re-id'd
    copies: dict[str, str] = field(default_factory=dict)  # edit -> its new copy, made but not yet whole

    @property
    def caps(self) -> Capabilities:
        caps: Capabilities = self.backend.capabilities
        return caps

    @property
    def title(self) -> str:
        """The platform as messages name it (``Nexus``, ``the local store``)."""
        return str(getattr(self.backend, "title", self.backend.name))

    @property
    def dataset(self) -> str:
        return self.changes.dataset

    @property
    def owner(self) -> str:
        return self.changes.owner

    def key(self, row: Mapping[str, Any]) -> Hashable:
        key: Hashable = self.backend.row_key(row)
        return key

    def units(self) -> list[str]:
        """The units (assets, by default) this push touches, in a stable order."""
        col = self.caps.unit
        values = [*self.changes.creates[col], *self.changes.updates[col], *self.changes.deletes.get(col, [])]
        return sorted({str(v) for v in values})

    def read(self, units: list[str]) -> dict[str, dict[str, Any]]:
        """The remote rows of ``units``, by id (one listing, no progress bar)."""
        if not units:
            return {}
        read_units = getattr(self.backend, "read_units", None)  # units other than assets (Label Studio's annotation)
        rows = (
            read_units(self.dataset, units)
            if read_units
            else self.backend.annotations(self.dataset, units, progress=False)
        )
        return {str(r["id"]): r for r in records(rows)}

    def read_rows(self, ids: list[str], units: list[str]) -> dict[str, dict[str, Any]]:
        """The remote rows ``ids`` plus every row of ``units``: by id where the backend can (``read_rows``), so a
        push of a few rows of big assets does not re-read the assets whole; else the units of ``ids`` too."""
        by_id = getattr(self.backend, "read_rows", None)
        if by_id is None:
            col = self.caps.unit
            known = self.changes.known
            ids_units = known.loc[known.index.isin(ids), col].astype(str).tolist() if len(known) else []
            return self.read(sorted({*units, *ids_units}))
        rows = by_id(self.dataset, sorted(set(ids))) if ids else None
        out = {} if rows is None else {str(r["id"]): r for r in records(rows)}
        return {**out, **self.read(units)}

    def put(self, entry: str, op: str, state: str, /, **data: Any) -> None:
        self.journal.put(self.place, self.owner, entry, op, state, **data)

    def landed(self, *entries: str) -> None:
        """These journal entries are settled once the push has recorded the result (never before)."""
        self.result.settle += [e for e in entries if e not in self.result.settle]

    def entries(self, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return self.journal.entries(self.place, self.owner, states)

    def fail(self, exc: BaseException, what: str) -> PushError:
        """The `PushError` of a write that failed part way: what landed is in the report, the rest stays to push."""
        r = self.result
        r.failed.append({"id": None, "op": "write", "error": str(exc)})
        for key, copy in self.copies.items():
            if key not in r.ids:  # the copy is on the platform beside the old row: say so, the next push finishes it
                why = f"row {key}: its new copy {copy} is on {self.title} beside the old row until a push finishes it"
                r.failed.append({"id": key, "op": "update", "new_id": copy, "error": why})
        landed = f"{len(r.ids)} row(s) written and {len(r.deleted)} deleted before it"
        return PushError(f"push to {what} failed part way ({landed}): {exc}; push again to finish", r)


def apply(backend: Any, changes: Changes, journal: WriteJournal) -> ApplyResult:
    """Write ``changes`` through ``backend`` by its strategy; see the module docstring."""
    ctx = Context(backend, changes, journal, place_of(backend, changes.dataset))
    parts = [f for f in (changes.creates, changes.updates) if len(f)]
    rows = pd.concat(parts) if parts else changes.creates
    check_rows = getattr(backend, "check_rows", None)
    if check_rows is not None and len(rows):
        check_rows(changes.dataset, rows)
    place_rows = getattr(backend, "place_rows", None)  # fills the unit of added rows (Label Studio: its annotation)
    if place_rows is not None:
        place_rows(changes)
    strategy = ctx.caps.strategy
    if strategy == "patch":
        from .patch import run
    elif strategy == "recreate":
        from .recreate import run
    else:
        from .replace import run
    try:
        run(ctx)
    except PushError as exc:
        exc.report = ctx.result
        raise
    except BackendError as exc:
        if not getattr(exc, "report", None) and (ctx.result.ids or ctx.result.deleted or ctx.result.moved):
            exc.report = ctx.result  # type: ignore[attr-defined]  # part landed: the push traces it
        raise
    ctx.result.timings.setdefault("written", time.time())
    if ctx.result.failed:
        shown = "\n".join(f"  {f['error']}" for f in ctx.result.failed[:10])
        raise PushError(
            f"{len(ctx.result.failed)} row(s) did not land as sent; the rest landed (details in .report.failed):\n"
            f"{shown}",
            ctx.result,
        )
    return ctx.result


def key_index(ctx: Context, remote: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """The ids of ``remote`` by (unit, journal key), built once for many `before_ids` look-ups."""
    col, out = ctx.caps.unit, dict[tuple[str, str], list[str]]()
    for i, r in remote.items():
        out.setdefault((str(r.get(col)), _text(journal_key(ctx, r))), []).append(i)
    return out


def before_ids(
    ctx: Context,
    remote: Mapping[str, Mapping[str, Any]],
    unit: str,
    key: Hashable,
    index: dict[tuple[str, str], list[str]] | None = None,
) -> list[str]:
    """Ids of the unit's rows that already look like a row about to be created (so a re-read can tell it apart)."""
    index = (
        key_index(ctx, {i: r for i, r in remote.items() if str(r.get(ctx.caps.unit)) == unit})
        if index is None
        else index
    )
    return sorted(index.get((unit, _text(_json_key(key))), []))


def _text(key: Any) -> str:
    """A journal key as one comparable text."""
    return json.dumps(key, sort_keys=True, default=str)


def find_created(
    ctx: Context, entry: Mapping[str, Any], remote: Mapping[str, Mapping[str, Any]], claimed: set[str]
) -> str | None:
    """The id of the row an unanswered create made, if it landed: the planned key, on its unit, not there before."""
    data = entry["data"]
    if data.get("new_id"):
        return str(data["new_id"]) if str(data["new_id"]) in remote else None
    col, before = ctx.caps.unit, set(data.get("before") or ())
    for row_id, row in remote.items():
        if row_id in before or row_id in claimed or str(row.get(col)) != str(data.get("unit")):
            continue
        if _json_key(ctx.key(row)) == data.get("rowkey"):
            claimed.add(row_id)
            return row_id
    return None


def _json_key(key: Hashable) -> Any:
    """A row key as the journal stores it (JSON round trip), so stored and fresh keys compare equal."""
    return json.loads(json.dumps(key, default=str))


def journal_key(ctx: Context, row: Mapping[str, Any]) -> Any:
    return _json_key(ctx.key(row))


def outcome_unknown(exc: BaseException) -> bool:
    """A write that may have landed although it failed (timeout, cut connection, 5xx): reconcile, never resend."""
    return isinstance(exc, ServerError | ConnectionFailed)


def create_once(ctx: Context, name: str, op: str, rec: Mapping[str, Any], remote: Mapping[str, Any]) -> str:
    """Create one row exactly once: journaled first; a lost answer is looked for by re-reading before a resend."""
    key, unit = journal_key(ctx, rec), str(rec[ctx.caps.unit])
    ctx.put(name, op, "pending", rowkey=key, unit=unit, before=before_ids(ctx, remote, unit, key))
    row = pd.DataFrame([rec])
    try:
        new_id = str(ctx.backend.create_rows(ctx.dataset, row)[0][0])
    except BackendError as exc:
        if not outcome_unknown(exc):
            raise
        entry = ctx.journal.get(ctx.place, ctx.owner, name)
        found = find_created(ctx, entry or {"data": {}}, ctx.read([unit]), set())
        new_id = found if found is not None else str(ctx.backend.create_rows(ctx.dataset, row)[0][0])
    ctx.put(name, op, "created", new_id=new_id)
    return new_id
