"""The ``replace`` strategy: one write replaces every row of a unit (Vi, Pictograph, SuperAnnotate, Label Studio).

Per touched unit (``capabilities.unit``: the asset, or Label Studio's annotation) the engine re-reads the unit,
checks every row of it against the lineage (`annotebook.sync.conflicts`), and builds the unit's new rows: the
re-read plus the frame's changes, so rows outside the frame survive. The write is journaled (the planned rows by
key), then ``backend.replace_units`` uploads and calls back ``recheck`` right before the request that replaces,
where the units are read again and must not have moved since the check. After the write the units are read once
more and must hold exactly the planned rows (matched by ``row_key``, which is how the rows' new ids are learned);
rows that differ are failures of that unit, never "ok".

Without a conditional write on the platform one window is left: another writer's replace that lands after our
re-check and before our own is overwritten; if it lands after ours, our verification sees it. Units with
deletions only are deleted row by row where the backend can (``delete_rows``), which re-ids nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pandas as pd

from ..errors import BackendError
from .conflicts import Check, check, raise_conflicts
from .engine import Context, _text, journal_key, records
from .patch import SERVER_FILLED, _as_stored

__all__ = ["run"]


def run(ctx: Context) -> None:
    units = ctx.units()
    raw = ctx.read(units)
    view = _reconcile(ctx, raw)
    found = check(ctx.changes, view, ctx.caps, ctx.key, ctx.explained, set(units))
    raise_conflicts(found, ctx.title, ctx.result)
    ctx.result.timings["checked"] = time.time()
    plans, deletes = _plan(ctx, view)
    try:
        _delete_rows(ctx, deletes)
        if plans:
            _replace(ctx, plans, raw)
    except BackendError as exc:
        if getattr(exc, "conflicts", None) is not None:
            raise
        raise ctx.fail(exc, ctx.title) from exc


def _by_unit(ctx: Context, rows: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row_id, row in rows.items():
        out.setdefault(str(row.get(ctx.caps.unit)), []).append((row_id, row))
    return out


def _reconcile(ctx: Context, raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Units this owner replaced whose answer was lost: if they hold exactly the planned rows, take the new ids.

    Returns the remote rows as this load knows them: rows a landed write re-id'd carry their lineage id again.
    """
    r, view = ctx.result, dict(raw)
    per_unit = _by_unit(ctx, raw)
    for e in ctx.entries():
        if e["op"] == "delete":
            if e["key"] not in raw:
                r.deleted.append(e["key"])
                ctx.explained.add(e["key"])
                ctx.landed(e["key"])
            continue
        unit, planned = e["data"]["unit"], e["data"]["planned"]
        here = per_unit.get(unit, [])
        pool: dict[str, list[str]] = {}
        for row_id, row in here:
            pool.setdefault(_text(journal_key(ctx, row)), []).append(row_id)
        if Counter(_text(k) for _, k, _ in planned) != Counter({k: len(v) for k, v in pool.items()}):
            ctx.journal.done(ctx.place, ctx.owner, [e["key"]])  # it did not land (or the unit moved since)
            continue
        creates = {str(x["id"]): x for x in records(ctx.changes.creates)}
        for old, key, sent in planned:
            new = pool[_text(key)].pop(0)
            r.revs[new] = str(raw[new].get("rev"))
            (r.ids if sent else r.moved)[old] = new
            if sent and old in creates:
                _take_stored(r, new, creates[old], raw[new], True)
            ctx.renamed[new] = old
            ctx.explained.add(old)
            view.pop(new, None)
            view[old] = {**raw[new], "id": old}
        for x in records(ctx.changes.deletes):  # a deletion carried by that replace (no delete_rows) landed with it
            row_id = str(x["id"])
            if str(x.get(ctx.caps.unit)) == unit and row_id not in raw and row_id not in r.deleted:
                r.deleted.append(row_id)
                ctx.explained.add(row_id)
        ctx.landed(e["key"])
    if ctx.renamed:
        for row in view.values():
            if row.get("parent") in ctx.renamed:
                row["parent"] = ctx.renamed[row["parent"]]
    return view


def _plan(
    ctx: Context, view: dict[str, dict[str, Any]]
) -> tuple[dict[str, list[tuple[str, dict[str, Any], bool]]], list[dict[str, Any]]]:
    """Per unit to replace, its new rows as ``(id, row, sent by the frame)``; and the rows deleted one by one."""
    ch, r, col = ctx.changes, ctx.result, ctx.caps.unit
    creates = [x for x in records(ch.creates) if str(x["id"]) not in r.ids]
    updates = [x for x in records(ch.updates) if str(x["id"]) not in r.ids]
    deletes = [x for x in records(ch.deletes) if str(x["id"]) not in r.deleted]
    edited = {str(x["id"]): x for x in updates}
    gone = {str(x["id"]) for x in deletes}
    writing = {str(x[col]) for x in [*creates, *updates]}
    if not hasattr(ctx.backend, "delete_rows"):
        writing |= {str(x.get(col)) for x in deletes}
    plans: dict[str, list[tuple[str, dict[str, Any], bool]]] = {}
    for unit, rows in _by_unit(ctx, view).items():
        if unit in writing:
            plans[unit] = [(i, edited.get(i, row), i in edited) for i, row in rows if i not in gone]
    for x in creates:
        plans.setdefault(str(x[col]), []).append((str(x["id"]), x, True))
    for unit in writing - set(plans):
        plans[unit] = []
    singles = [x for x in deletes if str(x.get(col)) not in writing]
    return plans, singles


def _delete_rows(ctx: Context, deletes: list[dict[str, Any]]) -> None:
    col, conflicts = ctx.caps.unit, Check()
    for x in deletes:
        key = str(x["id"])
        ctx.put(key, "delete", "deleting", unit=str(x.get(col)))
        gone = ctx.backend.delete_rows(ctx.dataset, pd.DataFrame({"id": [key], col: [x.get(col)]}))
        if key in set(gone):  # deleted or re-id'd by another writer since the check: cannot tell which
            conflicts.problems.append({"id": key, "field": "deleted", "base": False, "remote": True, "local": True})
            continue
        ctx.result.deleted.append(key)
        ctx.landed(key)
    raise_conflicts(conflicts, ctx.title, ctx.result)


def _replace(
    ctx: Context, plans: dict[str, list[tuple[str, dict[str, Any], bool]]], raw: dict[str, dict[str, Any]]
) -> None:
    r, units = ctx.result, sorted(plans)
    for unit, rows in plans.items():
        planned = [(i, journal_key(ctx, row), sent) for i, row, sent in rows]
        ctx.put(f"unit:{unit}", "replace", "pending", unit=unit, planned=planned)
    seen = {i: str(row.get("rev")) for i, row in raw.items() if str(row.get(ctx.caps.unit)) in plans}

    def recheck() -> None:
        r.timings["checked"] = time.time()  # when the re-read was sent: what it sees is at least as new as this
        now = ctx.read(units)
        moved = sorted(set(seen) ^ set(now) | {i for i in set(seen) & set(now) if str(now[i].get("rev")) != seen[i]})
        raise_conflicts(Check(problems=[{"id": ctx.renamed.get(i, i), "field": "rev", "base": seen.get(i),
                                         "remote": (now.get(i) or {}).get("rev"), "local": seen.get(i)}
                                        for i in moved]), ctx.title, r)  # fmt: skip

    frames = {u: pd.DataFrame([{**row, "id": i} for i, row, _ in rows]) for u, rows in plans.items()}
    rejected = ctx.backend.replace_units(ctx.dataset, frames, recheck) or {}
    r.timings["written"] = time.time()
    after = _by_unit(ctx, ctx.read([u for u in units if u not in rejected]))
    deleted_here = {str(x["id"]): str(x.get(ctx.caps.unit)) for x in records(ctx.changes.deletes)}
    for unit, rows in plans.items():
        if unit in rejected:
            r.failed += [{"id": i, "op": "write", "error": f"{ctx.title} refused {unit}: {rejected[unit]}"}
                         for i, _, sent in rows if sent]  # fmt: skip
            continue
        if _map_back(ctx, unit, rows, after.get(unit, [])):
            r.deleted += [i for i, u in deleted_here.items() if u == unit]
            ctx.landed(f"unit:{unit}")


def _map_back(
    ctx: Context, unit: str, rows: list[tuple[str, dict[str, Any], bool]], after: list[tuple[str, dict[str, Any]]]
) -> bool:
    """Learn each planned row's new id by its key; the unit must hold exactly the planned rows."""
    r = ctx.result
    pool: dict[str, list[str]] = {}
    for row_id, row in after:
        pool.setdefault(_text(journal_key(ctx, row)), []).append(row_id)
    planned = Counter(_text(journal_key(ctx, row)) for _, row, _ in rows)
    if planned != Counter({k: len(v) for k, v in pool.items()}):
        r.failed += [{"id": i, "op": "write", "error": f"{unit}: after the write it does not hold exactly the rows "
                      "sent (another writer replaced it at the same time, or the platform changed a row); reload"}
                     for i, _, sent in rows if sent]  # fmt: skip
        ctx.put(f"unit:{unit}", "replace", "mismatch")
        return False
    revs = {i: str(row.get("rev")) for i, row in after}
    now = dict(after)
    created = {str(i) for i in ctx.changes.creates["id"]}
    for old, row, sent in rows:
        new = pool[_text(journal_key(ctx, row))].pop(0)
        r.revs[new] = revs[new]
        if sent:
            r.ids[old] = new
            _take_stored(r, new, row, now[new], old in created)
        elif old != new or str(row.get("rev")) != revs[new]:  # re-id'd, or re-revised with its unit (Label Studio)
            r.moved[old] = new
    return True


def _take_stored(r: Any, new: str, sent: dict[str, Any], now: dict[str, Any], created: bool) -> None:
    """Record what the platform filled in on a written row (its author, status). Coordinates are left as sent:
    a platform that stores another unit (percent, pixels) gives them back within an ulp, and the lineage must
    keep the value the frame pushed, so another frame of the load that carried the same edit fast-forwards."""
    stored = {k: v for k, v in _as_stored(sent, now, created).items() if k in SERVER_FILLED}
    if stored:
        r.stored[new] = stored
