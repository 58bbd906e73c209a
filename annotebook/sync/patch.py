"""The ``patch`` strategy: rows are created, patched and deleted in place (local store, Clarifai).

Where the backend is atomic (the local store) the re-read, the conflict check and every write run inside one
``backend.transaction()``: two kernels serialise on it, so the second sees the first's revisions and refuses.
Elsewhere writes go in batches of ``capabilities.batch_size``, each journaled before it is sent; without a
conditional write, the touched rows are re-read after the writes and any that differ from what was sent are
reported, never counted as landed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pandas as pd

from .. import schema
from .conflicts import check, raise_conflicts
from .engine import Context, before_ids, find_created, journal_key, key_index, records

__all__ = ["run"]


def run(ctx: Context) -> None:
    caps = ctx.caps
    scope = ctx.backend.transaction(ctx.dataset) if caps.atomic else contextlib.nullcontext()
    with scope:
        # the re-check sees the platform as it was when its read was sent, not when the check ended: a write of
        # another kernel answered while the read was on the wire may not be in it
        asked = time.time()
        remote = _read(ctx)
        _reconcile(ctx, remote)
        found = check(ctx.changes, remote, caps, ctx.key, ctx.explained)
        raise_conflicts(found, ctx.title, ctx.result)
        ctx.result.gone += found.gone
        ctx.result.timings["checked"] = asked
        _write(ctx, remote, set(found.gone))
    ctx.result.timings["written"] = time.time()
    if not caps.atomic and not caps.conditional_write:
        _verify(ctx)


def _read(ctx: Context) -> dict[str, dict[str, Any]]:
    """The rows this push patches or deletes (by id), and the whole units it creates in (a lost create is found
    there by its key), with those of this owner's unsettled entries."""
    ch, col = ctx.changes, ctx.caps.unit
    entries = ctx.entries()
    ids = [
        *map(str, ch.updates["id"]),
        *map(str, ch.deletes["id"]),
        *(e["key"] for e in entries if e["op"] != "create"),
    ]
    creating = [*map(str, ch.creates["id"]), *(e["key"] for e in entries if e["op"] == "create")]
    chosen = _chosen(ctx)
    if chosen is not None:  # the client chose the ids: a lost create is looked up by its id, not by its unit's rows
        return ctx.read_rows([*ids, *map(chosen, creating)], [])
    units = {str(u) for u in ch.creates[col]} | {str(e["data"].get("unit")) for e in entries if e["op"] == "create"}
    return ctx.read_rows(ids, sorted(units))


def _chosen(ctx: Context) -> Any:
    """``client_row_id`` (client id -> the id its create gets) where the backend chooses ids on the client."""
    return getattr(ctx.backend, "client_row_id", None) if ctx.caps.client_ids else None


def _reconcile(ctx: Context, remote: dict[str, dict[str, Any]]) -> None:
    """Take what this owner's earlier, unanswered writes of this push's rows landed (found by re-reading, never
    sent again). An edit landed when the row holds this push's content; entries of rows this push does not carry
    wait for the frame that does."""
    ch, r, claimed = ctx.changes, ctx.result, set[str]()
    creates = set(map(str, ch.creates["id"]))
    deletes = set(map(str, ch.deletes["id"]))
    updates = {str(i): n for n, i in enumerate(ch.updates["id"])}
    for e in ctx.entries():
        key = e["key"]
        if e["op"] == "create" and key in creates:
            chosen = _chosen(ctx)
            new_id = (
                (chosen(key) if chosen(key) in remote else None) if chosen else find_created(ctx, e, remote, claimed)
            )
            if new_id is not None:
                r.ids[key], r.revs[new_id] = new_id, str(remote[new_id].get("rev"))
                ctx.landed(key)
        elif e["op"] == "update" and key in updates and key in remote:
            sent = records(ch.updates.iloc[[updates[key]]])[0]
            if ctx.key(remote[key]) == ctx.key(sent):
                r.revs[key] = str(remote[key].get("rev"))
                ctx.explained.add(key)
                ctx.landed(key)
        elif e["op"] == "delete" and key in deletes and key not in remote:
            r.deleted.append(key)
            ctx.explained.add(key)
            ctx.landed(key)


def _batches(frame: pd.DataFrame, size: int | None) -> list[pd.DataFrame]:
    if not len(frame):
        return []
    step = size or len(frame)
    return [frame.iloc[i : i + step] for i in range(0, len(frame), step)]


def _write(ctx: Context, remote: dict[str, dict[str, Any]], gone: set[str]) -> None:
    ch, r, b = ctx.changes, ctx.result, ctx.backend
    creates = ch.creates[~ch.creates["id"].isin(list(r.ids))]
    updates = ch.updates[~ch.updates["id"].isin(list(r.revs))]
    deletes = ch.deletes[~ch.deletes["id"].isin([*r.deleted, *gone])]
    planned: list[tuple[str, str, str, dict[str, Any]]] = []
    made: dict[str, dict[str, Any]] = {}
    by_key = _chosen(ctx) is None  # without client-chosen ids a lost create is found by its key on its unit
    index = key_index(ctx, remote) if len(creates) and by_key else {}
    for rec in records(creates):
        key, unit = journal_key(ctx, rec), str(rec[ctx.caps.unit])
        before = before_ids(ctx, remote, unit, key, index) if by_key else []
        made[str(rec["id"])] = {"rowkey": key, "unit": unit, "before": before}
        planned.append((str(rec["id"]), "create", "pending", made[str(rec["id"])]))
    planned += [(str(row_id), "update", "pending", {}) for row_id in updates["id"]]  # the frame's row is the plan
    planned += [(str(row_id), "delete", "pending", {}) for row_id in deletes["id"]]
    ctx.journal.put_many(ctx.place, ctx.owner, planned)  # one transaction, before anything is sent
    if ctx.caps.creates_labels and hasattr(b, "create_labels"):
        labels = sorted({str(v) for part in (creates["label"], updates["label"]) for v in part.dropna()})
        if labels:
            b.create_labels(ctx.dataset, labels)
    try:
        for batch in _batches(creates, ctx.caps.batch_size):
            answered = list(zip(map(str, batch["id"]), b.create_rows(ctx.dataset, batch), strict=True))
            for old, (new, rev) in answered:
                r.ids[old], r.revs[str(new)] = str(new), str(rev)
            created = [(old, "create", "created", {**made[old], "new_id": str(new)}) for old, (new, _) in answered]
            ctx.journal.put_many(ctx.place, ctx.owner, created)
            ctx.landed(*(old for old, _ in answered))
        for batch in _batches(updates, ctx.caps.batch_size):
            r.revs.update({str(k): str(v) for k, v in b.patch_rows(ctx.dataset, batch).items()})
            ctx.landed(*[str(i) for i in batch["id"]])
        for batch in _batches(deletes, ctx.caps.batch_size):
            already = set(b.delete_rows(ctx.dataset, batch))
            r.gone += sorted(already)
            r.deleted += [str(i) for i in batch["id"] if str(i) not in already]
            ctx.landed(*[str(i) for i in batch["id"]])
    except Exception as exc:
        if ctx.caps.atomic:
            raise  # the transaction rolls back: nothing landed
        from ..errors import BackendError

        if isinstance(exc, BackendError):
            if not ctx.caps.conditional_write:  # what did land is checked and taken as stored before the report
                with contextlib.suppress(BackendError):
                    _verify(ctx)
            raise ctx.fail(exc, ctx.title) from exc
        raise


def _verify(ctx: Context) -> None:
    """Without a conditional write: the rows as sent must be what the platform now holds."""
    r = ctx.result
    sent = {**{r.ids[str(i)]: rec for i, rec in zip(ctx.changes.creates["id"], records(ctx.changes.creates),
                                                     strict=True) if str(i) in r.ids},
            **{str(rec["id"]): rec for rec in records(ctx.changes.updates) if str(rec["id"]) in r.revs}}  # fmt: skip
    if not sent:
        return
    if hasattr(ctx.backend, "read_rows"):  # what was written, by id: not the whole units again
        now = ctx.read_rows(list(sent), [])
    else:
        now = ctx.read(sorted({str(rec[ctx.caps.unit]) for rec in sent.values()}))
    created = set(r.ids.values()) - set(map(str, ctx.changes.updates["id"]))
    for row_id, rec in sent.items():
        if row_id not in now or ctx.key(now[row_id]) != ctx.key(rec):
            r.failed.append({"id": row_id, "op": "write", "error": f"row {row_id}: another writer changed it during "
                             "this push (re-read after the write differs from what was sent); reload"})  # fmt: skip
            r.revs.pop(row_id, None)
            continue
        stored = _as_stored(rec, now[row_id], row_id in created)
        if stored:
            r.stored[row_id] = stored


#: columns a platform fills in on a row it creates (who made it, its review status) when the frame left them empty
SERVER_FILLED = ("author", "status")
#: columns a platform keeps at its own precision (Clarifai: 32-bit floats)
GEOMETRY = ("x0", "y0", "x1", "y1", "rotation", "points")


def _as_stored(sent: dict[str, Any], now: dict[str, Any], created: bool) -> dict[str, Any]:
    """What the platform holds of a row that landed, where it differs from what was sent: server-filled fields of
    a new row, coordinates at the platform's precision (equal under the backend's ``row_key``)."""
    out = {c: now.get(c) for c in SERVER_FILLED if created and _empty(sent.get(c)) and not _empty(now.get(c))}
    for c in GEOMETRY:
        if c in now and schema.normal_value(c, now[c]) != schema.normal_value(c, sent.get(c)):
            out[c] = now[c]
    return out


def _empty(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, tuple, dict)) and bool(pd.isna(value)))
