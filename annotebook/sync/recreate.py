"""The ``recreate`` strategy: an edit is a create of the new row, then a delete of the old one (Datature Nexus).

Per edit the journal moves ``pending`` (create sent) -> ``created`` (its id known) -> ``deleting`` (its copy
confirmed by a re-read, the old row's delete sent); the edit has landed only once the old row is gone. The delete
of the old row is the conditional write: it succeeds once. A writer whose delete finds the old row already gone
(HTTP 404 at the first attempt) lost a race or met a colleague's delete: its copy is deleted again (``rollback``)
and the row is a `ConflictError`, so the platform keeps exactly one edit. A copy that does not carry every field
of the frame's row (``row_key`` differs) stays beside the old row and is reported; the next push replaces it.

Reconciliation (this owner's entries) takes an unanswered create that landed by re-reading its unit for the planned
key on a row that was not there before; a started delete whose old row is gone has landed. The old rows of
confirmed edits of any owner (``deleting``) and left-over copies (``rollback``) are deleted by the next push at the
same place, so a cut never leaves a duplicate.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pandas as pd

from .. import schema
from ..errors import BackendError, NotFound
from .conflicts import Check, check, raise_conflicts
from .engine import Context, create_once, find_created, records

__all__ = ["run"]

_SHOWN = ("label", "x0", "y0", "x1", "y1", "rotation", "points", "visibility", "attributes", "value", "frame")


def run(ctx: Context) -> None:
    _sweep(ctx)
    remote = ctx.read(ctx.units())
    pending_deletes = _reconcile(ctx, remote)
    found = check(ctx.changes, remote, ctx.caps, ctx.key, ctx.explained)
    raise_conflicts(found, ctx.title, ctx.result)
    ctx.result.timings["checked"] = time.time()
    try:
        _write(ctx, remote, pending_deletes)
    except BackendError as exc:
        if getattr(exc, "conflicts", None) is not None:
            raise
        raise ctx.fail(exc, ctx.title) from exc


def _delete(ctx: Context, row_id: str, unit: str) -> bool:
    """Delete one row; False when it was already gone at the first attempt (someone else deleted it)."""
    gone = ctx.backend.delete_rows(ctx.dataset, pd.DataFrame({"id": [row_id], ctx.caps.unit: [unit]}))
    return row_id not in set(gone)


def _sweep(ctx: Context) -> None:
    """Finish what any owner started here: old rows of confirmed edits, copies of refused ones."""
    mine = _pushed(ctx)
    for e in ctx.journal.entries(ctx.place, None, ("deleting", "rollback")):
        data = e["data"]
        with contextlib.suppress(NotFound):
            if e["state"] == "deleting" and (e["owner"] != ctx.owner or e["key"] not in mine):
                _delete(ctx, e["key"], str(data.get("unit")))
            elif e["state"] == "rollback":
                _delete(ctx, str(data["new_id"]), str(data.get("unit")))
                ctx.journal.done(ctx.place, e["owner"], [e["key"]])


def _pushed(ctx: Context) -> set[str]:
    ch = ctx.changes
    return {str(i) for f in (ch.creates, ch.updates, ch.deletes) for i in f["id"]}


def _reconcile(ctx: Context, remote: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Take this owner's unanswered writes of this push's rows that landed; returns old id -> new id of edits whose
    delete is left. Entries of rows this push does not carry wait for the frame that does (the sweep finishes
    their deletes)."""
    r, claimed, left, mine = ctx.result, set[str](), dict[str, str](), _pushed(ctx)
    for e in ctx.entries(("pending", "created", "deleting", "mismatch")):
        key, data, state = e["key"], e["data"], e["state"]
        if key not in mine:
            continue
        if state == "mismatch":  # a short copy of an earlier push: remove it, the edit is sent again
            if data.get("new_id") in remote:
                _delete(ctx, str(data["new_id"]), str(data.get("unit")))
                remote.pop(str(data["new_id"]), None)
            ctx.journal.done(ctx.place, ctx.owner, [key])
            continue
        if e["op"] == "delete":
            if key not in remote:
                r.deleted.append(key)
                ctx.explained.add(key)
                ctx.landed(key)
            continue
        new_id = find_created(ctx, e, remote, claimed)
        if new_id is None:
            ctx.journal.done(ctx.place, ctx.owner, [key])  # it did not land: plan afresh
            continue
        ctx.put(key, e["op"], "created" if state == "pending" else state, new_id=new_id)
        if e["op"] == "create":
            r.ids[key], r.revs[new_id] = new_id, str(remote[new_id].get("rev"))
            ctx.landed(key)
            continue
        ctx.explained.add(new_id)
        if key in remote:
            left[key] = new_id
            ctx.explained.add(key)
        elif state == "deleting":
            r.ids[key], r.revs[new_id] = new_id, str(remote[new_id].get("rev"))
            ctx.explained.add(key)
            ctx.landed(key)
        else:  # our copy was made, but the old row went before our delete: another writer's; the copy goes
            _delete(ctx, new_id, str(data.get("unit")))
            remote.pop(new_id, None)
            ctx.journal.done(ctx.place, ctx.owner, [key])  # the check now names the row a conflict
    return left


def _write(ctx: Context, remote: dict[str, dict[str, Any]], left: dict[str, str]) -> None:
    ch, r, unit_col = ctx.changes, ctx.result, ctx.caps.unit
    rows = {str(rec["id"]): rec for f in (ch.creates, ch.updates) for rec in records(f)}
    edits = set(ch.updates["id"].astype(str))
    todo = {k: rec for k, rec in rows.items() if k not in r.ids and k not in left}
    if ctx.caps.creates_labels and hasattr(ctx.backend, "create_labels") and todo:
        ctx.backend.create_labels(ctx.dataset, sorted({str(v) for v in pd.DataFrame(list(todo.values()))["label"]
                                                        .dropna()}))  # fmt: skip
    made = ctx.copies
    made.update(left)
    for key, rec in todo.items():
        made[key] = create_once(ctx, key, "recreate" if key in edits else "create", rec, remote)
    stored = ctx.read(sorted({str(rows[k][unit_col]) for k in made})) if made else {}
    conflicts = Check()
    for key, new_id in made.items():
        rec = rows[key]
        if new_id not in stored or ctx.key(stored[new_id]) != ctx.key(rec):
            _short_copy(ctx, key, new_id, rec, stored.get(new_id))
            continue
        if key in edits:
            ctx.put(key, "recreate", "deleting")
            if not _delete(ctx, key, str(rec[unit_col])):  # the old row went under us: another writer won
                ctx.put(key, "recreate", "rollback")
                _delete(ctx, new_id, str(rec[unit_col]))
                ctx.journal.done(ctx.place, ctx.owner, [key])
                conflicts.problems.append({"id": key, "field": "deleted", "base": False, "remote": True,
                                           "local": "edited"})  # fmt: skip
                continue
        r.ids[key], r.revs[new_id] = new_id, str(stored[new_id].get("rev"))
        ctx.landed(key)
    for rec in records(ch.deletes):
        key = str(rec["id"])
        if key in r.deleted:
            continue
        ctx.put(key, "delete", "deleting", unit=str(rec.get(unit_col)))
        if not _delete(ctx, key, str(rec.get(unit_col))):
            conflicts.problems.append({"id": key, "field": "deleted", "base": False, "remote": True, "local": True})
            continue
        r.deleted.append(key)
        ctx.landed(key)
    r.timings["written"] = time.time()
    raise_conflicts(conflicts, ctx.title, r)


def _short_copy(ctx: Context, key: str, new_id: str, rec: dict[str, Any], stored: dict[str, Any] | None) -> None:
    """A created copy that does not carry the frame's row: it stays (nothing lost) and is named; next push redoes."""
    ctx.put(key, "create", "mismatch")
    fields: list[str] = []
    if stored is None:
        what = f"{ctx.title} does not list the row it created as {new_id}"
    else:
        fields = schema.changed_fields(stored, rec, _SHOWN)
        shown = "; ".join(f"{c}: sent {_short(rec.get(c))}, stored {_short(stored.get(c))}" for c in fields)
        what = f"the copy stored as {new_id} differs in {', '.join(fields) or 'its content'} ({shown})"
    edit = key in set(ctx.changes.updates["id"].astype(str))
    kept = (f"the old row {key} was not deleted, so both are on {ctx.title} (reload to see them)" if edit
            else f"{new_id} stays on {ctx.title} (reload to see it)")  # fmt: skip
    ctx.result.failed.append({"id": key, "op": "update" if edit else "create", "new_id": new_id, "fields": fields,
                              "error": f"row {key}: {what}; {kept}; push again to replace the copy"})  # fmt: skip


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
