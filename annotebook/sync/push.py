"""Push a frame's changeset through its backend and write the backend's ids and revisions back in place.

Order of a push: diff (R-3, R-4) -> conflicts refuse the push -> validation of the whole frame refuses it (R-12)
-> journal the intent (R-11) -> the sync engine (`annotebook.sync.engine`: re-read, reconcile, check conflicts
once, write by the backend's strategy, R-13) -> record history and move the lineage on -> settle the engine's
journal entries -> write ids, revs, load tokens and fast-forwards into the frame object (R-14).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from .._pandas import writing_into_frame
from ..backends.base import ApplyResult, Backend, Changes
from ..errors import ConflictError, PushError
from . import engine
from .diff import Changeset, diff
from .engine import place_of
from .journal import WriteJournal
from .registry import Registry, registry

__all__ = ["PushReport", "push"]


@dataclass
class PushReport:
    """What a push did: ``created`` maps client ids to the backend's, ``updated`` / ``deleted`` list ids."""

    dataset: str | None
    dry_run: bool
    changeset: Changeset
    created: dict[str, str] = field(default_factory=dict)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    fast_forwarded: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: rows this push meant to delete that another writer had already deleted (they count as deleted)
    gone: list[str] = field(default_factory=list)
    #: ``checked`` (the last re-check before the last write) and ``written`` (when it was answered), time.time()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        if self.dry_run:
            return "dry run, nothing written: " + self.changeset.summary()
        parts = [
            f"{len(self.created)} created",
            f"{len(self.updated)} updated",
            f"{len(self.deleted)} deleted",
        ]
        if self.gone:
            parts.append(f"{len(self.gone)} already deleted elsewhere")
        if self.fast_forwarded:
            parts.append(f"{len(self.fast_forwarded)} fast-forwarded")
        if self.failed:
            parts.append(f"{len(self.failed)} FAILED")
        return f"Pushed to {self.changeset.backend}:{self.dataset}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "fast_forwarded": self.fast_forwarded,
            "failed": self.failed,
            "gone": self.gone,
        }

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return f"<p><b>{html.escape(self.summary())}</b></p>"


def _strip(df: pd.DataFrame) -> pd.DataFrame:
    return df[list(schema.ANNOTATION_COLUMNS)].reset_index(drop=True)


def _changes(cs: Changeset, reg: Registry, whole_units: bool = True) -> Changes:
    updates = _strip(cs.modified).assign(id=cs.modified["_lid"].to_numpy(), rev=cs.modified["_lrev"].to_numpy())
    gone = cs.deleted
    deletes = pd.DataFrame({"id": gone["_lid"].to_numpy(), "asset": gone["asset"].to_numpy()})
    deletes["rev"] = gone["_lrev"].to_numpy()
    deletes["annotation"] = gone["annotation"].to_numpy()  # the unit of Label Studio's replace
    creates = _strip(cs.added).assign(dataset=cs.dataset)
    # what the engine compares with: the rows pushed, and for replace backends every row of the touched assets
    if whole_units:
        touched = set(creates["asset"]) | set(updates["asset"]) | set(deletes["asset"])
        pick = [ln.current[ln.current["asset"].isin(touched)] for ln in (reg.lineage(t) for t in cs.tokens)]
    else:
        wanted = pd.Index([*updates["id"], *deletes["id"]], dtype=object)
        pick = [ln.current[ln.current.index.isin(wanted)] for ln in (reg.lineage(t) for t in cs.tokens)]
    known = pick
    known = [k for k in known if len(k)]
    return Changes(
        dataset=str(cs.dataset),
        creates=creates,
        updates=updates,
        deletes=deletes,
        known=pd.concat(known) if known else pd.DataFrame(columns=["rev", *schema.CONTENT_COLUMNS, "gone"]),
        owner=",".join(sorted(cs.tokens)),
    )


def push(
    frame: pd.DataFrame,
    *,
    dry_run: bool = False,
    backend: Backend | None = None,
    connect: Callable[[str, dict[str, Any]], Backend] | None = None,
    reg: Registry | None = None,
    assets: Callable[[str], pd.DataFrame] | None = None,
) -> PushReport:
    """Apply ``frame``'s changes to its backend; ``frame`` then holds the backend's ids and revisions.

    ``assets(dataset)`` gives the assets table validation checks rows against (a connection's cached one); it
    is listed again once when a row names an asset the cached table lacks.
    """
    reg = reg or registry()
    cs = diff(frame, reg)
    if len(cs.conflicts):
        raise ConflictError(
            f"{cs.conflicts['id'].nunique()} row(s) of this frame were pushed differently from another frame "
            "of the same load; nothing was written",
            cs.conflicts,
        )
    if backend is None and cs.backend is not None and connect is not None:
        backend = connect(cs.backend, cs.spec)
    _validate(frame, cs, backend, assets)
    report = PushReport(dataset=cs.dataset, dry_run=dry_run, changeset=cs)
    if dry_run:
        return report
    if len(cs):
        if backend is None:
            raise PushError("this frame has no load token: push it with conn.push(frame)")
        if not cs.tokens:  # traceless additions join a new load, which owns their journal entries
            cs.tokens = [reg.new_load(backend.name, backend.spec(), str(cs.dataset), schema.annotations_frame())]
        try:
            result = _apply(backend, cs, reg)
        except (PushError, ConflictError) as exc:  # part of it landed: trace that part, then say what did not
            partial = getattr(exc, "report", None)
            if not isinstance(partial, ApplyResult):
                raise
            _land(cs, partial, backend, frame, reg, report)
            exc.report = report
            raise
        _land(cs, result, backend, frame, reg, report)
    else:
        report.fast_forwarded = [str(i) for i in cs.fast_forward["id"]]
        _write_back(frame, cs, reg, report, ApplyResult())
    return report


def _land(
    cs: Changeset, result: ApplyResult, backend: Backend, frame: pd.DataFrame, reg: Registry, report: PushReport
) -> None:
    """Record what landed in the registry and write it into the frame; rows that did not land stay as they were."""
    _record(cs, result, backend, frame, reg)
    added = set(cs.added["id"])
    report.created = {k: v for k, v in result.ids.items() if k in added}
    report.updated = [str(i) for i in cs.modified["_lid"] if _landed(result, str(i))]
    report.deleted = list(result.deleted)
    report.failed = list(result.failed)
    report.gone = list(result.gone)
    report.timings = dict(result.timings)
    report.fast_forwarded = [str(i) for i in cs.fast_forward["id"]]
    with writing_into_frame():
        _write_back(frame, cs, reg, report, result)
    if result.settle:  # recorded in the history now: the engine's journal entries have done their work
        _journal(reg).done(place_of(backend, str(cs.dataset)), ",".join(sorted(cs.tokens)), result.settle)


def _landed(result: ApplyResult, lid: str) -> bool:
    """An edit landed when the backend gave its row a revision (under its new id, if the id changed)."""
    return result.ids.get(lid, lid) in result.revs


def _validate(
    frame: pd.DataFrame, cs: Changeset, backend: Backend | None, assets: Callable[[str], pd.DataFrame] | None
) -> None:
    """R-12 on the whole frame; the assets table is read once per connection, again only for an unknown asset."""
    from ..validation import check

    if backend is None or not cs.dataset or not len(cs):
        check(frame, None)
        return
    dataset = str(cs.dataset)
    table = assets(dataset) if assets is not None else backend.assets(dataset)
    wanted = set(cs.added["asset"].dropna()) | set(cs.modified["asset"].dropna())
    if assets is not None and not wanted <= set(table["asset"]):
        table = backend.assets(dataset)
    check(frame, table)


_JOURNALS: dict[Path, WriteJournal] = {}


def _journal(reg: Registry) -> WriteJournal:
    """The engine's journal beside ``reg`` (one object per registry: its table is made and pruned once)."""
    if reg.path not in _JOURNALS:
        _JOURNALS[reg.path] = WriteJournal(reg.path)
    return _JOURNALS[reg.path]


def _apply(backend: Backend, cs: Changeset, reg: Registry) -> ApplyResult:
    changes = _changes(cs, reg, whole_units=backend.capabilities.replace_per_asset)
    intent = {
        "creates": changes.creates["id"].tolist(),
        "updates": changes.updates["id"].tolist(),
        "deletes": changes.deletes["id"].tolist(),
    }
    journal = reg.journal_open(str(cs.dataset), cs.tokens, intent)
    try:
        result = engine.apply(backend, changes, _journal(reg))
    except ConflictError as exc:
        reg.journal_close(journal, "conflict", {"error": str(exc)})
        raise
    except Exception as exc:
        reg.journal_close(journal, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    reg.journal_close(journal, "failed" if result.failed else "done", {"ids": result.ids, "failed": result.failed})
    return result


def _record(cs: Changeset, result: ApplyResult, backend: Backend, frame: pd.DataFrame, reg: Registry) -> None:
    """Write the pushed rows into each load's history; traceless additions join the frame's (or a new) load."""
    tokens = list(cs.tokens)
    if not tokens:
        tokens = [reg.new_load(backend.name, backend.spec(), str(cs.dataset), schema.annotations_frame())]
        cs.tokens = tokens
    by_token: dict[str, list[dict[str, Any]]] = {t: [] for t in tokens}
    for rec in cs.added.to_dict("records"):
        new_id = result.ids.get(rec["id"])
        if new_id is None:
            continue
        token = rec["load"] if isinstance(rec["load"], str) else tokens[0]
        entry = {"id": new_id, "rev": result.revs.get(new_id), "prev_id": rec["id"], "prev_rev": None}
        content = {str(k): v for k, v in rec.items()} | result.stored.get(new_id, {})  # as the platform holds it
        by_token.setdefault(token, []).append({**entry, "content": content, "deleted": False})
    for rec in cs.modified.to_dict("records"):
        if not _landed(result, rec["_lid"]):
            continue
        new_id = result.ids.get(rec["_lid"], rec["_lid"])
        entry = {
            "id": new_id,
            "rev": result.revs.get(new_id),
            "prev_id": rec["_lid"],
            "prev_rev": rec["_lrev"],
        }
        content = {str(k): v for k, v in rec.items()} | result.stored.get(new_id, {})
        by_token[rec["load"]].append({**entry, "content": content, "deleted": False})
    landed = set(result.deleted) | set(result.gone)  # a row deleted elsewhere is deleted here too
    for rec in cs.deleted.to_dict("records"):
        if rec["_lid"] in landed:
            rev = deletion_rev(rec["_lrev"])
            entry = {"id": rec["_lid"], "rev": rev, "prev_id": rec["_lid"], "prev_rev": rec["_lrev"]}
            by_token[rec["load"]].append({**entry, "content": None, "deleted": True})
    for token, entries in _moved_entries(cs, result, reg).items():
        by_token.setdefault(token, []).extend(entries)
    renamed = {**result.moved, **result.ids}
    for token, entries in by_token.items():
        if entries:
            reg.record(token, [{**e, "content": _content(e["content"], renamed)} for e in entries])


def _moved_entries(cs: Changeset, result: ApplyResult, reg: Registry) -> dict[str, list[dict[str, Any]]]:
    """History entries for rows the push did not touch whose id changed (a whole asset written at once)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for token in cs.tokens:
        lineage = reg.lineage(token)
        for old, new in result.moved.items():
            lid = lineage.resolve([old])[0]
            if lid not in lineage.current.index:
                continue
            cur = lineage.current.loc[lid]
            content = {c: schema.normal_value(c, cur[c]) for c in schema.CONTENT_COLUMNS}
            entry = {"id": new, "rev": result.revs.get(new), "prev_id": lid, "prev_rev": cur["rev"]}
            out.setdefault(token, []).append({**entry, "content": content, "deleted": False})
    return out


def deletion_rev(rev: Any) -> str:
    """The revision a pushed deletion leaves on its row (R-7): distinct from every revision the row had."""
    return f"{'' if pd.isna(rev) else rev}~deleted"


def _content(rec: dict[str, Any] | None, ids: dict[str, str]) -> dict[str, Any] | None:
    if rec is None:
        return None
    out = {c: schema.normal_value(c, rec.get(c)) for c in schema.CONTENT_COLUMNS}
    out["parent"] = ids.get(out["parent"], out["parent"]) if out["parent"] is not None else None
    return out


def _write_back(frame: pd.DataFrame, cs: Changeset, reg: Registry, report: PushReport, result: ApplyResult) -> None:
    """Put the backend's ids and revisions (and fast-forwarded content) into the same frame object."""
    ids = frame["id"].to_numpy(dtype=object, copy=True)
    revs = frame["rev"].to_numpy(dtype=object, copy=True)
    loads = frame["load"].to_numpy(dtype=object, copy=True)
    fill_token = cs.tokens[0] if cs.tokens else None
    content_updates: list[tuple[int, dict[str, Any]]] = []
    for rec in cs.added.to_dict("records"):
        new_id = report.created.get(rec["id"])
        if new_id is not None:
            pos = rec["_pos"]
            ids[pos] = new_id
            revs[pos] = result.revs.get(new_id)
            loads[pos] = rec["load"] if isinstance(rec["load"], str) else fill_token
            if new_id in result.stored:
                content_updates.append((pos, result.stored[new_id]))
    for rec in cs.modified.to_dict("records"):
        if not _landed(result, rec["_lid"]):
            continue
        pos = rec["_pos"]
        ids[pos] = result.ids.get(rec["_lid"], rec["_lid"])
        revs[pos] = result.revs.get(ids[pos])
        if ids[pos] in result.stored:
            content_updates.append((pos, result.stored[ids[pos]]))
    if result.moved:  # rows of this frame the push did not send whose id changed with their asset
        sent = set(cs.modified["_pos"]) | set(cs.added["_pos"]) | set(cs.deleted["_pos"])
        for pos, row_id in enumerate(frame["id"].tolist()):
            if pos not in sent and row_id in result.moved:
                ids[pos] = result.moved[row_id]
                revs[pos] = result.revs.get(ids[pos])
    landed = set(result.deleted) | set(result.gone)  # a row deleted elsewhere is deleted here too
    for rec in cs.deleted.to_dict("records"):
        if rec["_lid"] in landed:
            revs[rec["_pos"]] = deletion_rev(rec["_lrev"])
    gone: list[int] = []
    for rec in cs.fast_forward.to_dict("records"):
        lineage = reg.lineage(rec["load"])
        pos = rec["_pos"]
        ids[pos] = rec["_lid"]
        revs[pos] = lineage.current.loc[rec["_lid"], "rev"]
        loads[pos] = rec["load"]
        if rec["_update"]:
            content_updates.append((pos, lineage.current.loc[rec["_lid"]].to_dict()))
        if rec.get("_gone") is True:
            gone.append(pos)
    frame["id"] = pd.array(ids, dtype=schema.STR)
    renamed = {**result.moved, **{k: v for k, v in result.ids.items() if k != v}}
    if frame["parent"].notna().any():  # captions re-id'd elsewhere in this load (fast-forwarded here) too
        parents = set(frame["parent"].dropna())
        for token in cs.tokens:
            lineage = reg.lineage(token)
            renamed |= {p: lineage.resolve([p])[0] for p in parents if p in lineage.alias and p not in renamed}
    hit = frame["parent"].isin(list(renamed)).to_numpy(dtype=bool) if renamed else None
    if hit is not None and hit.any():  # grounding rows follow their caption's new id (not Series.replace: pandas
        follow = frame["parent"].to_numpy(dtype=object, copy=True)  # 2.3 skips it on a str column holding NaN)
        follow[hit] = [renamed[v] for v in follow[hit]]
        frame["parent"] = pd.array(follow, dtype=schema.STR)
    # the frame's own revisions are text already: only the few written above need str(), not every row
    odd = np.flatnonzero([type(v) is not str for v in revs]) if len(revs) < 1000 else _not_text(revs)
    for pos in odd:
        revs[pos] = None if pd.isna(revs[pos]) else str(revs[pos])
    frame["rev"] = pd.array(revs, dtype=schema.STR)
    if fill_token is not None:  # rows the push did not send (a hand-built row flagged deleted) join the load too
        loads[pd.isna(loads)] = fill_token
    frame["load"] = pd.array(loads, dtype=schema.STR)
    if gone:
        flags = frame["deleted"].to_numpy(dtype=bool, copy=True)
        flags[gone] = True
        frame["deleted"] = flags
    if content_updates:
        for col in [c for c in schema.CONTENT_COLUMNS if any(c in content for _, content in content_updates)]:
            values = frame[col].to_numpy(dtype=object, copy=True)
            for pos, content in content_updates:
                if col in content:
                    values[pos] = _cell(col, content[col])
            frame[col] = pd.Series(values, index=frame.index, dtype=object).astype(schema.ANNOTATION_COLUMNS[col])


def _not_text(values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` (objects) that are not str, found by Arrow rather than a Python loop."""
    import pyarrow as pa

    try:
        pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return np.flatnonzero([type(v) is not str for v in values])
    return np.flatnonzero(pd.isna(values))


def _cell(col: str, value: Any) -> Any:
    if col == "points":
        return schema.normal_points(value)  # the frame holds NaN for unlabelled keypoints, not None
    if schema.ANNOTATION_COLUMNS[col] is object:
        return value
    return np.nan if value is None or value is pd.NA else value
