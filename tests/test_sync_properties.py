"""Property tests of diff and push on random edit sequences (R-3, R-4, R-5, R-6, R-9, R-10, R-14).

Two library bugs these properties found (a new row deleted before its push got the rev 'nan'; a hand-built row pushed
through a subset was created again by its parent) are fixed, and pinned by the regression tests at the end.

Each example builds its own store and annotebook home (hypothesis runs many examples in one test call, so the
function-scoped fixtures of conftest.py cannot be shared between them). An `Edited` frame carries, next to the
DataFrame, a model of what each row should hold, built from the edits themselves and never read back from the
frame: the properties compare the library's diff, push and store with that model.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annotebook as ab
from annotebook import schema
from annotebook.backends.local import LocalBackend
from annotebook.sync import registry as registry_module

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

CONTENT = schema.CONTENT_COLUMNS
ASSETS = ("a0", "a1", "a2")
LABELS = ("cat", "dog", "lion", "tri")
#: attribute values keep one type per key: pyarrow cannot write a struct field holding bools and ints (R-10)
ATTRIBUTES: tuple[dict[str, Any] | None, ...] = (
    None,
    {"occluded": True},
    {"occluded": False},
    {"occluded": True, "note": None},  # equal to {"occluded": True}
    {"n": 1},
    {"n": 1.0},  # equal to {"n": 1}
    {"n": 2},
    {"note": "x"},
    {"note": None},  # equal to None
    {},  # equal to None; pyarrow cannot write a struct column whose only dicts are empty
)
NO_EMPTY_DICT = tuple(a for a in ATTRIBUTES if a != {})  # for frames written to parquet


# ---------------------------------------------------------------------------------------------------------------
# A fresh store and home per example


_TEMPLATE: list[Path] = []  # one store with dataset "t", copied for every example


@contextmanager
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ab.Connection]:
    """A new local store with dataset "t" and its own ANNOTEBOOK_HOME, for one hypothesis example."""
    if not _TEMPLATE:
        template = tmp_path_factory.mktemp("template") / "store"
        LocalBackend(template, samples=False).write_dataset("t", *tiny_tables())
        _TEMPLATE.append(template)
    root = tmp_path_factory.mktemp("world")
    shutil.copytree(_TEMPLATE[0], root / "store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANNOTEBOOK_HOME", str(root / "home"))
        yield ab.connect("local", path=str(root / "store"))


def content(row: Any) -> dict[str, Any]:
    """A row's content columns in the one normal form (R-10)."""
    return {c: schema.normal_value(c, row[c]) for c in CONTENT}


def stored(conn: ab.Connection) -> dict[str, dict[str, Any]]:
    """id -> content of every row the store holds, through a fresh load."""
    return {r["id"]: content(r) for r in conn.annotations("t").to_dict("records")}


def box_content(asset: str, label: str, box: tuple[float, float, float, float], **extra: Any) -> dict[str, Any]:
    """What a new box row holds, in normal form, written down without asking the library."""
    out: dict[str, Any] = dict.fromkeys(CONTENT)
    x0, y0, x1, y1 = box
    out.update(asset=asset, label=label, kind="box", x0=x0, y0=y0, x1=x1, y1=y1, rotation=0.0, attributes={})
    out.update(extra)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Edits: drawn as plain tuples, applied to a frame and to its model side by side

pick = st.integers(0, 1_000_000)  # which candidate row, modulo their number (shrinks to the first)
unit = st.floats(0.0, 1.0)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    a, b, c, d = draw(unit), draw(unit), draw(unit), draw(unit)
    return (min(a, b), min(c, d), max(a, b), max(c, d))


def edits(attributes: tuple[dict[str, Any] | None, ...] = ATTRIBUTES) -> st.SearchStrategy[tuple[Any, ...]]:
    """One content edit or deletion of an existing row."""
    return st.one_of(
        st.tuples(st.just("label"), pick, st.sampled_from(LABELS)),
        st.tuples(st.just("move"), pick, unit, unit),
        st.tuples(st.just("vertex"), pick, pick, pick, unit, unit),
        st.tuples(st.just("score"), pick, st.one_of(st.just(math.nan), unit)),
        st.tuples(st.just("attrs"), pick, st.sampled_from(range(len(attributes))).map(lambda i: attributes[i])),
        st.tuples(st.just("delete"), pick),
    )


def additions(hand: bool = True) -> st.SearchStrategy[tuple[Any, ...]]:
    """A new row: in place, concatenated from new_box, or (``hand``) hand-built without a load token."""
    kinds = [
        st.tuples(st.just("add_box"), st.sampled_from(ASSETS), st.sampled_from(LABELS), boxes()),
        st.tuples(st.just("concat_box"), st.sampled_from(ASSETS), st.sampled_from(LABELS), boxes()),
    ]
    if hand:
        kinds.append(st.tuples(st.just("concat_hand"), st.sampled_from(ASSETS), st.sampled_from(LABELS), boxes(), unit))
    return st.one_of(kinds)


subsets = st.tuples(st.just("subset"), st.lists(st.booleans(), min_size=32, max_size=32))


def ops(
    attributes: tuple[dict[str, Any] | None, ...] = ATTRIBUTES, subset: bool = True, hand: bool = True
) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """A sequence of edits, additions and (``subset``) switches to a subset copy."""
    kinds = [edits(attributes), additions(hand), *([subsets] if subset else [])]
    return st.lists(st.one_of(kinds), max_size=8)


@dataclass
class Edited:
    """A frame being edited, with the model of what each of its rows holds (by the row's id in the frame)."""

    frame: pd.DataFrame
    base: dict[str, dict[str, Any]]  # id -> content at load, every row of the load
    model: dict[str, dict[str, Any]]  # id -> expected content, every row of the frame
    deleted: set[str]
    new: set[str]  # client ids of added rows
    delete_new: bool = True  # False: deletions pick loaded rows only (see test_known_deleted_new_row_rev)

    @classmethod
    def load(cls, conn: ab.Connection) -> Edited:
        frame = conn.annotations("t")
        base = {r["id"]: content(r) for r in frame.to_dict("records")}
        return cls(frame, base, {i: dict(c) for i, c in base.items()}, set(), set())

    # -- what the model says ------------------------------------------------------------------------------------
    def live(self) -> list[str]:
        return [i for i in self.frame["id"] if i not in self.deleted]

    def expected_changes(self) -> set[tuple[str, str]]:
        """(id, field) of every loaded, live row whose content differs from its load."""
        return {
            (i, c) for i in self.live() if i not in self.new for c in CONTENT if self.model[i][c] != self.base[i][c]
        }

    def expected_added(self) -> set[str]:
        return {i for i in self.live() if i in self.new}

    def expected_deleted(self) -> set[str]:
        return {i for i in self.frame["id"] if i in self.deleted and i not in self.new}

    # -- edits ----------------------------------------------------------------------------------------------------
    def _mask(self, row_id: str) -> pd.Series:
        return self.frame["id"] == row_id

    def _choose(self, k: int, kinds: tuple[str, ...] | None = None, among: set[str] | None = None) -> str | None:
        rows = [
            i
            for i in self.live()
            if (kinds is None or self.model[i]["kind"] in kinds) and (among is None or i in among)
        ]
        return rows[k % len(rows)] if rows else None

    def apply(self, op: tuple[Any, ...], among: set[str] | None = None) -> None:
        """Apply ``op`` to the frame and to the model; ``among`` limits content edits to these ids."""
        name = op[0]
        if name in ("add_box", "concat_box", "concat_hand"):
            self._add(op)
        elif name == "subset":
            self.subset(op[1])
        else:
            self._edit(op, among)

    def _edit(self, op: tuple[Any, ...], among: set[str] | None) -> None:
        name, k = op[0], op[1]
        kinds = {"move": ("box",), "vertex": ("polygon", "keypoints")}.get(name)
        if name == "delete" and not self.delete_new:
            among = (among if among is not None else set(self.model)) - self.new
        row_id = self._choose(k, kinds, among)
        if row_id is None:
            return
        mask, model = self._mask(row_id), self.model[row_id]
        if name == "label":
            self.frame.loc[mask, "label"] = op[2]
            model["label"] = op[2]
        elif name == "move":  # keep the box's size, put its corner at a fraction of the room left
            x0, y0, x1, y1 = (model[c] for c in ("x0", "y0", "x1", "y1"))
            w, h = x1 - x0, y1 - y0
            nx0, ny0 = op[2] * (1 - w), op[3] * (1 - h)
            new = (nx0, ny0, min(nx0 + w, 1.0), min(ny0 + h, 1.0))
            self.frame.loc[mask, ["x0", "y0", "x1", "y1"]] = list(new)
            model.update(zip(("x0", "y0", "x1", "y1"), new, strict=True))
        elif name == "vertex":
            pos = int(np.flatnonzero(mask.to_numpy())[0])
            parts = [list(p) for p in self.frame["points"].iloc[pos]]
            ring = parts[op[2] % len(parts)]
            v = op[3] % (len(ring) // 2)
            ring[2 * v], ring[2 * v + 1] = op[4], op[5]
            points = tuple(tuple(p) for p in parts)
            self.frame.iat[pos, self.frame.columns.get_loc("points")] = points
            extent = schema.part_extent(points)
            self.frame.loc[mask, ["x0", "y0", "x1", "y1"]] = list(extent)
            model["points"] = schema.normal_value("points", points)
            model.update(zip(("x0", "y0", "x1", "y1"), extent, strict=True))
        elif name == "score":
            self.frame.loc[mask, "score"] = op[2]
            model["score"] = None if math.isnan(op[2]) else op[2]
        elif name == "attrs":
            pos = int(np.flatnonzero(mask.to_numpy())[0])
            value = None if op[2] is None else dict(op[2])
            self.frame.iat[pos, self.frame.columns.get_loc("attributes")] = value
            model["attributes"] = schema.normal_attributes(op[2])
        elif name == "delete":
            assert self.frame.annot.delete(mask) == 1
            self.deleted.add(row_id)

    def _add(self, op: tuple[Any, ...]) -> None:
        name, asset, label, box = op[:4]
        if name == "add_box":
            row_id = self.frame.annot.add_box(asset, label, box)
            self.model[row_id] = box_content(asset, label, box)
        elif name == "concat_box":
            rows = self.frame.annot.new_box(asset, label, box)
            row_id = rows["id"].iloc[0]
            self.frame = pd.concat([self.frame, rows])
            self.model[row_id] = box_content(asset, label, box)
        else:  # a hand-built prediction: no load token
            extra = {"author": "model:p", "score": op[4]}
            corners = dict(zip(("x0", "y0", "x1", "y1"), box, strict=True))
            rows = ab.annotations_frame(
                [{"dataset": "t", "asset": asset, "label": label, "kind": "box", **corners, **extra}]
            )
            assert rows["load"].isna().all()
            row_id = rows["id"].iloc[0]
            self.frame = pd.concat([self.frame, rows], ignore_index=True)
            self.model[row_id] = box_content(asset, label, box, **extra)
        self.new.add(row_id)

    def pushed(self, report: Any) -> None:
        """After a push: rows are known by the backend's ids, and what was pushed is the new base."""
        for client, backend_id in report.created.items():
            self.model[backend_id] = self.model.pop(client)
            self.new.discard(client)
        for i in self.live():
            self.base[i] = dict(self.model[i])

    def subset(self, bits: list[bool]) -> Edited:
        """Continue on a boolean subset ``.copy()`` of the frame (kept traceable: at least one loaded row)."""
        mask = np.array([bits[i % len(bits)] for i in range(len(self.frame))], dtype=bool)
        loaded = self.frame["load"].notna().to_numpy()
        if not (mask & loaded).any():
            mask[int(np.flatnonzero(loaded)[0])] = True
        self.frame = self.frame[mask].copy()
        ids = set(self.frame["id"])
        self.model = {i: c for i, c in self.model.items() if i in ids}
        return self

    def split(self, bits: list[bool]) -> Edited:
        """A subset ``.copy()`` as its own `Edited`, this one left as it is (the parent)."""
        model = {i: dict(c) for i, c in self.model.items()}
        child = Edited(self.frame, self.base, model, set(self.deleted), set(self.new), self.delete_new)
        return child.subset(bits)


def canonical(cs: Any) -> dict[str, Any]:
    """A changeset as plain values in normal form, compared with ``==`` (so 1 == 1.0, R-10)."""
    return {
        "dataset": cs.dataset,
        "added": {r["id"]: content(r) for r in cs.added.to_dict("records")},
        "modified": sorted(cs.modified["id"]),
        "deleted": sorted(cs.deleted["id"]),
        "changes": {
            (r["id"], r["field"]): (
                schema.normal_value(r["field"], r["old"]),
                schema.normal_value(r["field"], r["new"]),
            )
            for r in cs.changes.to_dict("records")
        },
        "n_changes": len(cs.changes),
        "fast_forward": sorted(cs.fast_forward["id"]),
        "conflicts": len(cs.conflicts),
    }


# ---------------------------------------------------------------------------------------------------------------
# 1. diff / apply


@SETTINGS
@given(steps=ops())
def test_push_lands_exactly_the_edits(tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]) -> None:
    """After any edit sequence a push makes the store hold the frame's live rows, leaves rows outside the frame
    untouched, and leaves nothing to diff."""
    with world(tmp_path_factory) as conn:
        ed = Edited.load(conn)
        for op in steps:
            ed.apply(op)
        frame = ed.frame
        client_ids, live_ids = list(frame["id"]), ed.live()
        added, deleted = ed.expected_added(), ed.expected_deleted()
        report = frame.annot.push()
        assert set(report.created) == added
        assert set(report.deleted) == deleted
        after = stored(conn)
        in_frame = set(client_ids)
        expected = {report.created.get(i, i): ed.model[i] for i in live_ids}
        expected |= {i: c for i, c in ed.base.items() if i not in in_frame}  # out of scope: untouched
        assert after == expected
        # the same frame object now holds the backend's ids; its live rows equal the store
        assert list(frame["id"]) == [report.created.get(i, i) for i in client_ids]
        live = frame[~frame["deleted"].to_numpy(dtype=bool)]
        assert {r["id"]: content(r) for r in live.to_dict("records")} == {i: after[i] for i in live["id"]}
        assert live["rev"].notna().all() and frame["load"].notna().all()
        again = frame.annot.diff()
        assert len(again) == 0 and again.conflicts.empty and again.fast_forward.empty


# ---------------------------------------------------------------------------------------------------------------
# 2. diff is exactly the edits


@SETTINGS
@given(steps=ops())
def test_diff_is_exactly_the_edits(tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]) -> None:
    """The changeset names exactly the (id, field) pairs whose value the edits changed, the rows added and the rows
    flagged deleted; an edit that leaves a value equal in normal form is not a change."""
    with world(tmp_path_factory) as conn:
        ed = Edited.load(conn)
        for op in steps:
            ed.apply(op)
        cs = ed.frame.annot.diff()
        expected = ed.expected_changes()
        assert set(zip(cs.changes["id"], cs.changes["field"], strict=True)) == expected
        assert len(cs.changes) == len(expected)
        assert set(cs.modified["id"]) == {i for i, _ in expected} and cs.modified["id"].is_unique
        for r in cs.changes.to_dict("records"):
            assert schema.normal_value(r["field"], r["old"]) == ed.base[r["id"]][r["field"]]
            assert schema.normal_value(r["field"], r["new"]) == ed.model[r["id"]][r["field"]]
        assert len(cs.added) == len(ed.expected_added()) and set(cs.added["id"]) == ed.expected_added()
        assert {r["id"]: content(r) for r in cs.added.to_dict("records")} == {
            i: ed.model[i] for i in ed.expected_added()
        }
        assert set(cs.deleted["id"]) == ed.expected_deleted() and len(cs.deleted) == len(ed.expected_deleted())
        assert cs.conflicts.empty and cs.fast_forward.empty


# ---------------------------------------------------------------------------------------------------------------
# 3. parquet round trip


def _round_trip(frame: pd.DataFrame, path: Any, restart: bool) -> pd.DataFrame:
    frame.to_parquet(path)
    if restart:  # a kernel restart: the exit hook waits for snapshot writes, then only the disk remains
        registry_module.registry().wait()
        registry_module._REGISTRIES.clear()
    return pd.read_parquet(path)


@SETTINGS
@given(
    steps=ops(NO_EMPTY_DICT),
    push_first=st.booleans(),
    more=ops(NO_EMPTY_DICT, subset=False),
    restart=st.booleans(),
)
def test_parquet_round_trip_keeps_the_changeset(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[Any, ...]],
    push_first: bool,
    more: list[tuple[Any, ...]],
    restart: bool,
) -> None:
    """A frame written to parquet and read back (in the same kernel or after a restart) diffs exactly as before,
    whether or not part of its edits was pushed first; a freshly loaded frame read back diffs empty."""
    with world(tmp_path_factory) as conn:
        tmp = tmp_path_factory.mktemp("parquet")
        fresh = conn.annotations("t")
        back = _round_trip(fresh, tmp / "fresh.parquet", restart)
        cs = back.annot.diff()
        assert len(cs) == 0 and cs.conflicts.empty and cs.fast_forward.empty

        ed = Edited.load(conn)
        for op in steps:
            ed.apply(op)
        if push_first:  # the lineage then carries history (new ids, revisions) that a restart reads from disk
            ed.pushed(ed.frame.annot.push())
            for op in more:
                ed.apply(op)
        before = canonical(ed.frame.annot.diff())
        back = _round_trip(ed.frame, tmp / "edited.parquet", restart)
        assert canonical(back.annot.diff()) == before


# ---------------------------------------------------------------------------------------------------------------
# 4. subset pushed before its parent


@SETTINGS
@given(
    shared=ops(subset=False),
    bits=st.lists(st.booleans(), min_size=32, max_size=32),
    subset_only=st.lists(edits().filter(lambda op: op[0] != "delete"), max_size=4),
    other=ops(subset=False),
)
def test_subset_then_parent_fast_forwards(
    tmp_path_factory: pytest.TempPathFactory,
    shared: list[tuple[Any, ...]],
    bits: list[bool],
    subset_only: list[tuple[Any, ...]],
    other: list[tuple[Any, ...]],
) -> None:
    """After a subset's push, its parent (same edits on the subset's rows, other edits elsewhere) pushes its other
    edits, fast-forwards the rows the subset pushed, and reports no conflict (R-4)."""
    with world(tmp_path_factory) as conn:
        parent = Edited.load(conn)
        for op in shared:
            parent.apply(op)
        child = parent.split(bits)
        in_child = set(child.frame["id"])
        # the subset alone edits rows the parent left as loaded: the parent catches up with them
        untouched = {i for i in in_child if i not in parent.new and parent.model[i] == parent.base[i]}
        untouched -= parent.deleted
        for op in subset_only:
            child.apply(op, among=untouched)
        child_ids = list(child.frame["id"])
        # what the parent catches up on: the subset's edits, additions and deletions (the parent's copies of the
        # rows the subset deleted become deleted markers, R-7)
        pushed = {i for i, _ in child.expected_changes()} | child.expected_added() | child.expected_deleted()
        child_report = child.frame.annot.push()
        child_new_id = dict(zip(child_ids, child.frame["id"], strict=True))

        outside = set(parent.frame["id"]) - in_child
        for op in other:  # new rows, and edits of rows the subset does not hold
            added_before = set(parent.new)
            parent.apply(op, among=outside)
            outside |= parent.new - added_before

        parent_ids, live_ids = list(parent.frame["id"]), parent.live()
        created = {i for i in parent.expected_added() if i in outside}
        updated = {i for i, _ in parent.expected_changes() if i in outside}
        deleted = {i for i in parent.expected_deleted() if i in outside}
        report = parent.frame.annot.push()  # a conflict would raise ConflictError
        assert set(report.fast_forwarded) == pushed
        assert set(report.created) == created
        assert set(report.updated) == updated
        assert set(report.deleted) == deleted

        # the store holds the subset's rows as the subset pushed them, and the parent's other edits
        final: dict[str, dict[str, Any]] = {}
        for i in live_ids:
            if i in in_child:
                final[child_new_id[i]] = child.model[i]
            else:
                final[report.created.get(i, i)] = parent.model[i]
        final |= {i: c for i, c in parent.base.items() if i not in set(parent_ids)}
        after = stored(conn)
        assert after == final
        assert child_report.ok
        frame = parent.frame
        live = frame[~frame["deleted"].to_numpy(dtype=bool)]
        assert {r["id"]: content(r) for r in live.to_dict("records")} == {i: after[i] for i in live["id"]}
        again = frame.annot.diff()
        assert len(again) == 0 and again.conflicts.empty and again.fast_forward.empty


# ---------------------------------------------------------------------------------------------------------------
# Regressions, shrunk from the properties above


def test_known_deleted_new_row_rev(anns: pd.DataFrame) -> None:
    """A row added and flagged deleted before a push keeps a missing rev, so the next diff is empty."""
    new_id = anns.annot.add_box("a0", "cat", (0.1, 0.1, 0.2, 0.2))
    anns.annot.delete(anns.id == new_id)
    anns.annot.push()
    assert anns.loc[anns.id == new_id, "rev"].isna().all()
    assert len(anns.annot.diff()) == 0


def test_known_hand_built_row_pushed_twice(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """A hand-built row pushed through a subset is recognised by its client id in the parent, not created again."""
    pred = ab.annotations_frame(
        [{"dataset": "t", "asset": "a0", "label": "star", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.2, "y1": 0.2}]
    )
    both = pd.concat([anns, pred], ignore_index=True)
    both[both.label.isin(["star", "cat"])].copy().annot.push()
    report = both.annot.push()
    assert not report.created
    assert (conn.annotations("t").label == "star").sum() == 1


def test_hand_built_row_deleted_before_any_push_joins_the_load(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """A hand-built row flagged deleted is not sent, yet after the push it carries the frame's load like every row."""
    pred = ab.annotations_frame(
        [{"dataset": "t", "asset": "a0", "label": "cat", "kind": "box", "x0": 0.0, "y0": 0.0, "x1": 0.0, "y1": 0.0}]
    )
    both = pd.concat([anns.iloc[:1], pred], ignore_index=True)
    both.loc[1, "deleted"] = True
    report = both.annot.push()
    assert not report.created and both["load"].notna().all()
    assert len(both.annot.diff()) == 0
