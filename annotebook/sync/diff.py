"""Diff an edited frame against its lineage: the `Changeset`, a value to print, filter and push.

Pure pandas; the only I/O is reading the registry (R-2). Contract rules: R-3 (scope), R-4 (fast-forward), R-5
(concatenation), R-7 (deleted markers), R-8 (extra columns), R-10 (normal form).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import TraceError, ValidationError
from .registry import Lineage, Registry, registry

__all__ = ["Changeset", "diff"]

_CHANGE_COLUMNS = ["id", "field", "old", "new"]
_CONFLICT_COLUMNS = ["id", "field", "base", "remote", "local"]


@dataclass
class Changeset:
    """What a push would do: rows ``added``, ``modified`` (field by field in ``changes``), ``deleted``;
    rows to ``fast_forward`` (R-4) and ``conflicts`` (id, field, base, remote, local).

    The row frames carry the frame's contract columns plus ``_pos`` (the row's position in the frame), ``_lid``
    (its id in the lineage) and ``_lrev`` (the revision the lineage expects the backend to hold).
    """

    dataset: str | None
    backend: str | None
    spec: dict[str, Any]
    added: pd.DataFrame
    modified: pd.DataFrame
    deleted: pd.DataFrame
    changes: pd.DataFrame
    fast_forward: pd.DataFrame
    conflicts: pd.DataFrame
    tokens: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.modified) + len(self.deleted)

    def summary(self) -> str:
        """One line: counts of each kind of change."""
        parts = [
            f"{len(self.added)} added",
            f"{len(self.modified)} modified ({len(self.changes)} fields)",
            f"{len(self.deleted)} deleted",
        ]
        if len(self.fast_forward):
            parts.append(f"{len(self.fast_forward)} already pushed (fast-forward)")
        if len(self.conflicts):
            parts.append(f"{self.conflicts['id'].nunique()} in conflict")
        where = f" on {self.backend}:{self.dataset}" if self.dataset else ""
        return f"Changeset{where}: " + ", ".join(parts)

    def to_frame(self) -> pd.DataFrame:
        """One row per change: op (add / modify / delete / conflict), id, label, asset, field, old, new."""

        def rows(df: pd.DataFrame, op: str) -> pd.DataFrame:
            return pd.DataFrame({"op": op, "id": df["id"], "label": df["label"], "asset": df["asset"]})

        mod = self.changes.merge(self.modified[["id", "label", "asset"]], on="id", how="left")
        mod.insert(0, "op", "modify")
        con = self.conflicts.rename(columns={"local": "new", "base": "old"}).drop(columns="remote")
        con.insert(0, "op", "conflict")
        parts = [rows(self.added, "add"), mod, rows(self.deleted, "delete"), con]
        out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
        cols = ["op", "id", "label", "asset", "field", "old", "new"]
        return pd.DataFrame(columns=cols) if out is None else out.reindex(columns=cols)

    def only(self, **where: Any) -> Changeset:
        """The part of this changeset whose rows match every ``column=value`` (e.g. ``only(label="star")``)."""

        def keep(df: pd.DataFrame) -> pd.DataFrame:
            mask = pd.Series(True, index=df.index)
            for col, value in where.items():
                mask &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
            return df[mask]

        modified = keep(self.modified)
        return replace(
            self,
            added=keep(self.added),
            modified=modified,
            deleted=keep(self.deleted),
            changes=self.changes[self.changes["id"].isin(modified["id"])],
        )

    def __repr__(self) -> str:
        frame = self.to_frame()
        body = "" if frame.empty else "\n" + frame.head(20).to_string(index=False)
        more = f"\n... {len(frame) - 20} more" if len(frame) > 20 else ""
        return self.summary() + body + more

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        # text is text: labels, ids and dataset names come from files and colleagues (issue 16)
        return f"<p><b>{html.escape(self.summary())}</b></p>" + frame.head(50).to_html(
            index=False, na_rep="", escape=True
        )


def _empty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [*schema.ANNOTATION_COLUMNS, "_pos", "_lid", "_lrev"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def check_columns(frame: pd.DataFrame) -> None:
    """Raise a named `ValidationError` for missing contract columns, naming merge collisions (R-8)."""
    missing = [c for c in schema.ANNOTATION_COLUMNS if c not in frame.columns]
    if not missing:
        return
    problems = []
    for col in missing:
        stand_ins = [c for c in frame.columns if isinstance(c, str) and c.startswith(col + "_")]
        hint = (
            f"hidden by a merge collision ({', '.join(stand_ins)}): merge with suffixes=('', '_asset') "
            "or use anns.annot.merge_assets(assets)"
            if stand_ins
            else "missing contract column"
        )
        problems.append({"id": None, "column": col, "problem": hint})
    raise ValidationError(f"{len(missing)} contract column(s) missing", pd.DataFrame(problems))


def _eq_column(col: str, a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality of two aligned columns in normal form (NaN == NaN)."""
    if col in schema.OBJECT_COLUMNS:
        xs, ys = a.to_numpy(dtype=object), b.to_numpy(dtype=object)
        try:  # numpy's object == is C's rich compare, which takes identity first: unchanged cells cost next to nothing
            same = np.asarray(np.equal(xs, ys), dtype=bool)
        except (ValueError, TypeError):  # a cell whose == is not a truth value (an array): cell by cell below
            same = np.zeros(len(xs), dtype=bool)
        norm = schema.normal_value
        for pos in np.flatnonzero(~same):
            x, y = xs[pos], ys[pos]
            same[pos] = x is y or (type(x) is type(y) and _same_cell(x, y)) or norm(col, x) == norm(col, y)
        return same
    sa, sb = a.reset_index(drop=True), b.reset_index(drop=True)
    if sa.dtype != sb.dtype:
        sa, sb = sa.astype(object), sb.astype(object)
    both_na = (sa.isna() & sb.isna()).to_numpy(dtype=bool)
    try:
        same = (sa == sb).fillna(False).to_numpy(dtype=bool)
    except TypeError:
        same = np.array([x == y for x, y in zip(sa, sb, strict=True)], dtype=bool)
    return same | both_na


def _same_cell(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except (ValueError, TypeError):
        return False


def _row_content(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {c: schema.normal_value(c, row[c]) for c in schema.CONTENT_COLUMNS}


def diff(frame: pd.DataFrame, reg: Registry | None = None) -> Changeset:
    """Compare ``frame`` with the lineage of its load(s), by id; rows absent from the frame are out of scope."""
    reg = reg or registry()
    check_columns(frame)
    frame = frame[list(schema.ANNOTATION_COLUMNS)].reset_index(drop=True)
    frame["_pos"] = np.arange(len(frame))
    tokens = sorted(frame["load"].dropna().unique().tolist())
    lineages = [reg.lineage(t) for t in tokens]
    backend, spec, dataset = _one_place(frame, lineages)
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("added", "modified", "deleted", "ff", "changes", "conf")}
    _trace_pushed_additions(frame, lineages)
    untraced = frame[frame["load"].isna()]
    _check_untraced(untraced)
    parts["added"].append(untraced[~untraced["deleted"].to_numpy(dtype=bool)])
    for lineage in lineages:
        _diff_load(frame[(frame["load"] == lineage.token).to_numpy(dtype=bool)], lineage, parts)

    def cat(key: str, empty: pd.DataFrame) -> pd.DataFrame:
        got = [p for p in parts[key] if len(p)]
        return pd.concat(got, ignore_index=True) if got else empty

    rows = _empty_rows(frame)
    return Changeset(
        dataset=dataset,
        backend=backend,
        spec=spec,
        added=cat("added", rows).assign(_lid=lambda d: d["id"], _lrev=None) if parts["added"] else rows,
        modified=cat("modified", rows),
        deleted=cat("deleted", rows),
        changes=cat("changes", pd.DataFrame(columns=_CHANGE_COLUMNS)),
        fast_forward=cat("ff", rows.assign(_update=pd.Series(dtype=bool), _gone=pd.Series(dtype=bool))),
        conflicts=cat("conf", pd.DataFrame(columns=_CONFLICT_COLUMNS)),
        tokens=tokens,
    )


def _trace_pushed_additions(frame: pd.DataFrame, lineages: list[Lineage]) -> None:
    """Rows with no load whose client id a push of one of these loads already created join that load (R-4, R-5)."""
    untraced = frame["load"].isna().to_numpy()
    if not untraced.any() or not any(ln.alias for ln in lineages):
        return
    loads = frame["load"].to_numpy(dtype=object, copy=True)
    ids = frame["id"].to_numpy(dtype=object)
    for pos in np.flatnonzero(untraced):
        for ln in lineages:
            if str(ids[pos]) in ln.alias:
                loads[pos] = ln.token
                break
    frame["load"] = pd.array(loads, dtype=schema.STR)


def _one_place(frame: pd.DataFrame, lineages: list[Lineage]) -> tuple[str | None, dict[str, Any], str | None]:
    places = {(ln.backend, repr(sorted(ln.spec.items()))) for ln in lineages}
    datasets = set(frame["dataset"].dropna().unique().tolist()) | {ln.dataset for ln in lineages}
    if len(places) > 1 or len(datasets) > 1:
        what = sorted({f"{ln.backend}:{ln.dataset}" for ln in lineages} | {str(d) for d in datasets})
        raise ValidationError(
            f"one push goes to one dataset on one backend; this frame holds rows of {', '.join(what)}",
            pd.DataFrame([{"id": None, "column": "dataset", "problem": f"rows of {len(what)} places"}]),
        )
    first = lineages[0] if lineages else None
    dataset = next(iter(datasets)) if datasets else None
    return (first.backend if first else None), (dict(first.spec) if first else {}), dataset


def _check_untraced(rows: pd.DataFrame) -> None:
    claims = rows[rows["rev"].notna()]
    if len(claims):
        raise TraceError(
            f"{len(claims)} row(s) carry a revision but no load token (ids {claims['id'].head(5).tolist()}): "
            "they cannot be traced to a load; load them again, or clear `rev` to add them as new rows"
        )


def _diff_load(rows: pd.DataFrame, lineage: Lineage, parts: dict[str, list[pd.DataFrame]]) -> None:
    ids = rows["id"].to_numpy(dtype=object)
    lids = np.asarray(lineage.resolve(ids), dtype=object) if lineage.alias else ids
    rows = rows.assign(_lid=lids)
    index = lineage.current.index
    whole = len(index) == len(lids) and np.array_equal(index.to_numpy(dtype=object), lids)
    # the frame as loaded, in its order: no look-up by id
    at = np.arange(len(lids)) if whole else index.get_indexer(pd.Index(lids, dtype=object))
    known = at >= 0
    new = rows[~known]
    bad = new[new["rev"].notna()]
    if len(bad):
        raise TraceError(
            f"{len(bad)} row(s) claim a revision that load {lineage.token} never saw"
            f" (ids {bad['id'].head(5).tolist()}): was `id` edited? A row keeps the id it was loaded with;"
            " to add a copy, use anns.annot.new_rows(...)"
        )
    parts["added"].append(new[~new["deleted"].to_numpy(dtype=bool)])
    rows = rows[known]
    cur = lineage.current if whole else lineage.current.iloc[at[known]]
    rows = rows.assign(_lrev=cur["rev"].to_numpy())
    gone = cur["gone"].to_numpy(dtype=bool)
    deleted = rows["deleted"].to_numpy(dtype=bool)
    same = (rows["id"].to_numpy() == rows["_lid"].to_numpy()) & _eq_column("rev", rows["rev"], cur["rev"])
    # a pushed deletion gives the row a deletion revision: the frame that pushed it holds that revision,
    # another frame of the load still holds the older one and is fast-forwarded instead
    revived = gone & same & ~deleted
    if revived.any():
        r = rows[revived]
        raise ValidationError(
            "rows whose deletion was pushed cannot be revived by clearing `deleted`; add a new row instead",
            pd.DataFrame({"id": r["id"], "column": "deleted", "problem": "deletion already pushed"}),
        )
    fresh = ~gone & same
    parts["deleted"].append(rows[fresh & deleted])
    _modified(rows[fresh & ~deleted], cur[fresh & ~deleted], parts)
    _stale(rows[~same], lineage, parts)


def _modified(rows: pd.DataFrame, cur: pd.DataFrame, parts: dict[str, list[pd.DataFrame]]) -> None:
    changed = np.zeros(len(rows), dtype=bool)
    per_col = {}
    for col in schema.CONTENT_COLUMNS:
        ne = ~_eq_column(col, rows[col], cur[col])
        if ne.any():
            per_col[col] = ne
            changed |= ne
    if not changed.any():
        return
    parts["modified"].append(rows[changed])
    ids = rows["id"].to_numpy()
    for col, ne in per_col.items():
        parts["changes"].append(
            pd.DataFrame({"id": ids[ne], "field": col, "old": cur[col].to_numpy()[ne], "new": rows[col].to_numpy()[ne]})
        )


def _follow_parent(content: dict[str, Any], lineage: Lineage) -> dict[str, Any]:
    """A grounding row's ``parent`` as the caption's current id: a caption re-id'd by a push is the same caption."""
    parent = content.get("parent")
    if parent is None or parent not in lineage.alias:
        return content
    return {**content, "parent": lineage.resolve([parent])[0]}


def _stale(rows: pd.DataFrame, lineage: Lineage, parts: dict[str, list[pd.DataFrame]]) -> None:
    """Rows older than their lineage: fast-forward what was pushed elsewhere, name real conflicts (R-4)."""
    ff: list[dict[Any, Any]] = []
    update: list[bool] = []
    conflicts: list[dict[str, Any]] = []
    for rec in rows.to_dict("records"):
        latest = lineage.current.loc[rec["_lid"]]
        now = _row_content(latest.to_dict())
        mine = _follow_parent(_row_content(rec), lineage)
        rev = None if pd.isna(rec["rev"]) else str(rec["rev"])
        then = lineage.content_at(rec["id"], rev)
        then = None if then is None else _follow_parent(then, lineage)
        unedited = then is not None and mine == then
        if latest["gone"] and (rec["deleted"] or unedited or mine == now):
            ff.append({**rec, "_gone": True})  # deleted elsewhere in this load: the row becomes a marker here
            update.append(False)
        elif not rec["deleted"] and mine == now:
            ff.append(rec)
            update.append(False)
        elif not rec["deleted"] and unedited:
            ff.append(rec)
            update.append(True)
        else:
            fields = ["deleted"] if rec["deleted"] or latest["gone"] else schema.changed_fields(mine, now)
            conflicts.extend(
                {
                    "id": rec["id"],
                    "field": f,
                    "base": (then or {}).get(f),
                    "remote": now.get(f),
                    "local": True if f == "deleted" else mine.get(f),
                }
                for f in fields
            )
    if ff:
        parts["ff"].append(pd.DataFrame(ff).assign(_update=update).reindex(columns=[*rows.columns, "_gone", "_update"]))
    if conflicts:
        parts["conf"].append(pd.DataFrame(conflicts, columns=_CONFLICT_COLUMNS))
