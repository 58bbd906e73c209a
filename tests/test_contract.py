"""Every rule of docs/data-model.md, one test (or more) each, named after the rule."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.backends.local import LocalBackend


def fresh(conn: ab.Connection) -> pd.DataFrame:
    return conn.annotations("t")


def test_dtypes_follow_the_contract(anns: pd.DataFrame) -> None:
    """A loaded frame has exactly the contract's columns, each in its declared dtype."""
    assert list(anns.columns) == list(schema.ANNOTATION_COLUMNS)
    for col, dtype in schema.ANNOTATION_COLUMNS.items():
        assert str(anns[col].dtype) == str(pd.Series([], dtype=dtype).dtype), col
    poly = anns[anns.kind == "polygon"].iloc[0]
    assert poly.points == ((0.1, 0.1, 0.9, 0.1, 0.5, 0.9), (0.4, 0.3, 0.6, 0.3, 0.5, 0.5))
    assert (poly.x0, poly.y0, poly.x1, poly.y1) == (0.1, 0.1, 0.9, 0.9)
    kp = anns[anns.kind == "keypoints"].iloc[0]
    assert kp.visibility == (2, 1, 0) and np.isnan(kp.points[0][4])


def test_r1_identity_is_id_not_index(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """Reordering and re-indexing do not change what a push does: rows are matched by id."""
    shuffled = anns.sample(frac=1, random_state=1).set_index(pd.Index(list("abcdefghij")))
    shuffled.loc[shuffled.id == "3", "label"] = "lion"
    cs = shuffled.annot.diff()
    assert cs.modified["id"].tolist() == ["3"]
    shuffled.annot.push()
    assert fresh(conn).set_index("id").loc["3", "label"] == "lion"


def test_r1_duplicate_id_is_refused(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """Two rows with one id in a push are a named ValidationError, and nothing is written."""
    twice = pd.concat([anns, anns[anns.id == "1"].assign(label="x")], ignore_index=True)
    twice.loc[twice.id == "2", "label"] = "changed"
    with pytest.raises(ab.ValidationError, match="1"):
        twice.annot.push()
    assert fresh(conn).set_index("id").loc["2", "label"] != "changed"


def test_r3_rows_absent_from_a_frame_are_never_deleted(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """Pushing a subset leaves every row it does not hold alone."""
    cats = anns[anns.label == "cat"].copy()
    cats["label"] = "lion"
    report = cats.annot.push()
    assert len(report.updated) == 3 and not report.deleted
    after = fresh(conn)
    assert len(after) == len(anns)
    assert (after.label == "dog").sum() == (anns.label == "dog").sum()


def test_r3_common_pandas_operations_keep_the_trace(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """sort_values, reset_index, assign, .loc, copy and boolean filters all diff and push."""
    edited = anns.sort_values("label").reset_index().assign(score=0.5).copy()
    edited = edited[edited.kind == "box"]
    edited.loc[edited.label == "dog", "x1"] = 0.55
    cs = edited.annot.diff()
    assert set(cs.changes.field) == {"score", "x1"}
    edited.annot.push()
    after = fresh(conn)
    assert (after[after.kind == "box"].score == 0.5).all()
    assert edited.annot.diff().summary().endswith("0 deleted")


def test_r4_subset_pushed_before_its_parent_is_fast_forwarded(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """The parent's rows pushed through a subset are neither pushed again nor conflicts."""
    anns.loc[anns.label == "cat", "label"] = "lion"  # the same edit in both frames
    new_id = anns.annot.add_box("a0", "star", (0.1, 0.2, 0.3, 0.4))
    lions = anns[anns.label.isin(["lion", "star"])].copy()
    lions.annot.push()
    lions.loc[lions.label == "star", "x1"] = 0.35  # edited again, and pushed again, in the subset only
    lions.annot.push()
    cs = anns.annot.diff()
    assert len(cs) == 0 and len(cs.conflicts) == 0
    assert len(cs.fast_forward) == 4
    report = anns.annot.push()
    assert report.fast_forwarded and not report.created and not report.updated
    star = anns[anns.label == "star"].iloc[0]
    assert star.id != new_id and star.x1 == 0.35  # the parent caught up with the subset's push
    assert len(anns.annot.diff()) == 0
    assert (fresh(conn).label == "star").sum() == 1


def test_r4_a_row_changed_differently_in_the_parent_is_a_conflict(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """Only the row edited differently conflicts; nothing is written."""
    sub = anns[anns.id.isin(["1", "2"])].copy()
    sub["label"] = "from-subset"
    sub.annot.push()
    anns.loc[anns.id == "1", "label"] = "from-parent"
    anns.loc[anns.id == "4", "label"] = "fine"
    cs = anns.annot.diff()
    assert cs.conflicts["id"].tolist() == ["1"]
    assert cs.conflicts.iloc[0][["base", "remote", "local"]].tolist() == ["dog", "from-subset", "from-parent"]
    with pytest.raises(ab.ConflictError):
        anns.annot.push()
    assert fresh(conn).set_index("id").loc["4", "label"] != "fine"


def test_r5_loads_concatenate_and_hand_built_rows_join_as_additions(conn: ab.Connection) -> None:
    """Disjoint loads of one dataset concatenate; rows with no trace are added with fresh ids."""
    a = conn.assets("t")
    first, second = a.iloc[:1].annot.load(), a.iloc[1:].annot.load()
    preds = ab.annotations_frame(
        [
            {
                "dataset": "t",
                "asset": "a1",
                "label": "cat",
                "kind": "box",
                "x0": 0,
                "y0": 0,
                "x1": 0.2,
                "y1": 0.2,
                "author": "model:yolo",
                "score": 0.9,
            }
        ]
    )
    both = pd.concat([first, second, preds], ignore_index=True)
    both.loc[both.id == "1", "label"] = "lion"
    cs = both.annot.diff()
    assert len(cs.added) == 1 and cs.modified["id"].tolist() == ["1"]
    both.annot.push()
    assert both["load"].notna().all() and both["rev"].notna().all()
    assert len(both.annot.diff()) == 0


def test_r5_two_datasets_in_one_push_are_refused(conn: ab.Connection, store: LocalBackend, anns: pd.DataFrame) -> None:
    """Rows of two datasets (or backends) in one frame: a ValidationError, nothing written."""
    assets, other = (
        schema.assets_frame([{"asset": "z", "width": 10, "height": 10}]),
        schema.annotations_frame(),
    )
    store.write_dataset("u", assets, other)
    mixed = pd.concat([anns, conn.annotations("u"), anns.annot.new_box("a0", "x", (0, 0, 1, 1)).assign(dataset="u")])
    with pytest.raises(ab.ValidationError, match="one dataset"):
        mixed.annot.push()


def test_r6_deletion_is_explicit(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """`delete(mask)` sets the flag in place; the push deletes exactly those rows."""
    n = anns.annot.delete(anns.label == "dog")
    assert n == 3 and anns.deleted.sum() == 3
    report = anns.annot.push()
    assert sorted(report.deleted) == sorted(anns[anns.deleted].id)
    assert "dog" not in set(fresh(conn).label)


def test_r7_deleted_rows_stay_as_markers(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """After a push deleted rows stay flagged, diff ignores them, clearing the flag is a named error."""
    anns.annot.delete(anns.id == "1")
    anns.annot.push()
    assert anns.set_index("id").loc["1", "deleted"]
    assert len(anns.annot.diff()) == 0
    assert "1" not in set(anns.annot.summary().get("id", pd.Series(dtype=str)))
    anns.loc[anns.id == "1", "deleted"] = False
    with pytest.raises(ab.ValidationError, match="deletion already pushed"):
        anns.annot.diff()


def test_r8_extra_columns_are_ignored_and_merge_collisions_named(anns: pd.DataFrame) -> None:
    """Extra columns never reach a push; a suffix collision hiding a contract column is named."""
    extra = anns.assign(my_note="x", area=1.0)
    assert len(extra.annot.diff()) == 0
    assets = extra.annot.assets
    clash = extra.merge(assets, on=["dataset", "asset"])
    with pytest.raises(ab.ValidationError, match="merge collision"):
        clash.annot.diff()
    merged = extra.annot.merge_assets(assets)
    assert "width" in merged and "status_asset" in merged.columns
    merged.loc[merged.width > 100, "label"] = "wide"
    assert set(merged.annot.diff().changes.field) == {"label"}
    merged.annot.push()


def test_r9_rows_added_in_place_keep_dtypes_and_unique_labels(anns: pd.DataFrame) -> None:
    """add_box adds in place with declared dtypes; new_box rows concat without index collisions."""
    dtypes = anns.dtypes.copy()
    new_id = anns.annot.add_box("a0", "star", (0.1, 0.2, 0.3, 0.4))
    assert new_id.startswith("new-") and anns.index.is_unique
    pd.testing.assert_series_equal(anns.dtypes, dtypes)
    extra = anns.annot.new_box("a1", "star", (0.2, 0.2, 0.4, 0.4))
    both = pd.concat([anns, extra])
    assert both.index.is_unique and both.dtypes.equals(dtypes)
    named = anns.set_index("id", drop=False)
    named.annot.add_box("a0", "moon", (0, 0, 0.1, 0.1))
    assert named.index.is_unique and named.iloc[-1].label == "moon"


def test_r10_parquet_round_trip_is_traceable_with_an_empty_diff(
    conn: ab.Connection, anns: pd.DataFrame, tmp_path: Path
) -> None:
    """to_parquet / read_parquet keeps the trace; values compare through one normal form."""
    path = tmp_path / "frame.parquet"
    anns.to_parquet(path)
    back = pd.read_parquet(path)
    assert len(back.annot.diff()) == 0
    from annotebook.sync import registry as registry_module

    registry_module._REGISTRIES.clear()  # as after a kernel restart: only the disk remains
    back = pd.read_parquet(path)
    assert len(back.annot.diff()) == 0
    back.loc[back.kind == "polygon", "label"] = "triangle"
    back.annot.push()
    assert "triangle" in set(fresh(conn).label)


def test_r11_push_intent_is_journaled(anns: pd.DataFrame) -> None:
    """Every push is journaled with its intent and closed with its outcome."""
    from annotebook.sync.registry import registry

    anns.loc[anns.id == "1", "label"] = "x"
    anns.annot.push()
    journal = registry().journal()
    assert journal.state.tolist() == ["done"] and '"1"' in journal.intent.iloc[0]


def test_r12_an_invalid_frame_writes_nothing(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """Out-of-range geometry, a short polygon ring, an unknown asset: all named, nothing written."""
    anns.loc[anns.id == "1", "x1"] = 1.5
    anns.loc[anns.id == "2", "label"] = "changed"
    anns.annot.add_box("nope", "cat", (0.1, 0.1, 0.2, 0.2))
    anns.loc[anns.kind == "polygon", "points"] = pd.Series(
        [((0.1, 0.1, 0.2, 0.2),)], index=anns.index[anns.kind == "polygon"]
    )
    with pytest.raises(ab.ValidationError) as err:
        anns.annot.push()
    problems = err.value.problems
    assert {"x1", "points", "asset"} <= set(problems.column)
    assert fresh(conn).set_index("id").loc["2", "label"] != "changed"


def _push_in_process(path: str, home: str, row: str, label: str, barrier: object) -> str:
    import os

    os.environ["ANNOTEBOOK_HOME"] = home
    import annotebook as ab_

    conn = ab_.connect("local", path=path)
    frame = conn.annotations("t")
    frame.loc[frame.id == row, "label"] = label
    barrier.wait(60)  # type: ignore[attr-defined]
    try:
        frame.annot.push()
        return "ok"
    except ab_.ConflictError:
        return "conflict"
    except Exception:  # the test shows the other side's traceback
        import traceback

        return traceback.format_exc()


def test_r13_two_processes_pushing_at_once(store: LocalBackend, ab_home: Path) -> None:
    """Two kernels pushing the same row: one lands, the other is a conflict; other rows land for both."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        a = pool.apply_async(_push_in_process, (str(store.path), str(ab_home), "1", "from-a", barrier))
        b = pool.apply_async(_push_in_process, (str(store.path), str(ab_home), "1", "from-b", barrier))
        results = sorted([a.get(120), b.get(120)])
    assert results == ["conflict", "ok"]
    label = store.annotations("t").set_index("id").loc["1", "label"]
    assert label in ("from-a", "from-b")


def test_r13_a_row_changed_by_another_kernel_is_a_conflict(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """A row changed in the store since this load is reported by row and field, not overwritten."""
    other = fresh(conn)
    other.loc[other.id == "1", "x0"] = 0.2
    other.annot.push()
    anns.loc[anns.id == "1", "label"] = "mine"
    with pytest.raises(ab.ConflictError) as err:
        anns.annot.push()
    assert err.value.conflicts["id"].tolist()[0] == "1"
    assert fresh(conn).set_index("id").loc["1", "x0"] == 0.2


def test_r14_after_a_push_the_frame_holds_ids_and_revs(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """New ids and revisions are written into the same frame object; the next diff is empty."""
    frame = anns
    loaded_rev = frame.set_index("id").loc["2", "rev"]
    new_id = frame.annot.add_box("a0", "star", (0.1, 0.2, 0.3, 0.4))
    frame.loc[frame.id == "2", "label"] = "lion"
    report = frame.annot.push()
    assert report.created[new_id] in set(frame.id)
    assert frame.set_index("id").loc["2", "rev"] != loaded_rev  # the edited row holds its new revision
    assert frame.rev.notna().all()
    assert len(frame.annot.diff()) == 0
    stored = fresh(conn).set_index("id")
    assert stored.loc[report.created[new_id], "label"] == "star"
    assert stored.loc["2", "rev"] == frame.set_index("id").loc["2", "rev"]


def test_grounding_rows_follow_their_new_caption(conn: ab.Connection, anns: pd.DataFrame) -> None:
    """A caption and its phrase added in one push: the phrase's parent becomes the caption's new id."""
    rows = anns.annot.new_rows(
        [
            {"asset": "a1", "kind": "caption", "id": "c1", "text": "a red cat"},
        ]
    )
    cap_id = rows.iloc[0].id
    phrase = anns.annot.new_rows(
        [
            {
                "asset": "a1",
                "kind": "grounding",
                "text": "red cat",
                "parent": cap_id,
                "span_start": 2,
                "span_end": 9,
                "x0": 0.1,
                "y0": 0.1,
                "x1": 0.3,
                "y1": 0.3,
            }
        ]
    )
    anns.annot.add_rows(rows)
    anns.annot.add_rows(phrase)
    report = anns.annot.push()
    stored = fresh(conn)
    g = stored[stored.kind == "grounding"].iloc[0]
    assert g.parent == report.created[cap_id]
    assert anns[anns.kind == "grounding"].iloc[0].parent == g.parent


def test_r7_a_deletion_pushed_through_a_subset_fast_forwards_the_parent(
    conn: ab.Connection, anns: pd.DataFrame
) -> None:
    """The parent of a subset that pushed a deletion marks that row deleted and pushes its own edits."""
    sub = anns[anns.id == "1"].copy()
    sub.annot.delete(sub.id == "1")
    sub.annot.push()
    anns.loc[anns.id == "2", "label"] = "lion"
    report = anns.annot.push()
    assert report.updated == ["2"] and report.fast_forwarded == ["1"]
    assert anns.set_index("id").loc["1", "deleted"]
    assert len(anns.annot.diff()) == 0
    anns.loc[anns.id == "1", "deleted"] = False
    with pytest.raises(ab.ValidationError, match="deletion already pushed"):
        anns.annot.diff()


def test_r7_a_row_edited_in_the_parent_but_deleted_by_a_subset_conflicts(anns: pd.DataFrame) -> None:
    """Editing a row that another frame of the load deleted is a conflict on `deleted`."""
    sub = anns[anns.id == "1"].copy()
    sub.annot.delete(sub.id == "1")
    sub.annot.push()
    anns.loc[anns.id == "1", "label"] = "lion"
    with pytest.raises(ab.ConflictError, match="1"):
        anns.annot.push()
