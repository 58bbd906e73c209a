"""Load every page; create, edit and delete; a subset pushed before its parent (R-3, R-4, R-14)."""

from __future__ import annotations

import pandas as pd
import pytest

from annotebook.errors import ConflictError

from .conftest import Platform, contents, ids_and_revs
from .edits import Content, content_of, count, ids_of, live


def test_a_load_reads_every_page(platform: Platform) -> None:
    whole = platform.fresh()
    conn = platform.connect()
    if hasattr(conn.backend, "page_size"):
        conn.backend.page_size = 3
    paged = platform.load(conn)
    assert len(whole) > 3 * 2 and len(paged) == len(whole)
    assert sorted(paged["id"]) == sorted(whole["id"]) and paged["id"].is_unique
    assert contents(paged, platform.digits) == contents(whole, platform.digits)


def test_create_edit_delete_then_a_fresh_load_shows_exactly_that(platform: Platform) -> None:
    frame = platform.fresh()
    before = len(live(frame))
    x = platform.pick(frame)
    y = platform.pick(frame, not_on=(frame.loc[frame.id == x, "asset"].iloc[0],))
    edited = platform.edit(frame, x, 1)
    gone = content_of(frame, y)
    frame.annot.delete(frame.id == y)
    added = content_of(frame, platform.add(frame))
    report = frame.annot.push()
    assert report.ok, report
    assert (len(report.created), len(report.updated), len(report.deleted)) == (1, 1, 1), report
    assert len(frame.annot.diff()) == 0  # a second diff is empty
    fresh = platform.fresh()
    assert count(fresh, edited) == 1 and count(fresh, added) == 1 and count(fresh, gone) == 0
    assert len(live(fresh)) == before
    assert contents(fresh, platform.digits) == contents(frame, platform.digits)
    assert ids_and_revs(fresh) == ids_and_revs(frame)  # the frame holds the platform's ids and revisions


def _subset_pushed(platform: Platform) -> tuple[pd.DataFrame, pd.DataFrame, str, Content]:
    """The parent frame, its subset (X's asset), X, and X's content after the subset pushed an edit of X."""
    parent = platform.fresh()
    x = platform.pick(parent)
    asset = parent.loc[parent.id == x, "asset"].iloc[0]
    subset = parent[parent.asset == asset].copy()
    edited = platform.edit(subset, x, 1)
    assert subset.annot.push().ok
    return parent, subset, x, edited


def test_a_subset_pushed_first_fast_forwards_its_parent(platform: Platform) -> None:
    parent, subset, x, edited = _subset_pushed(platform)
    writes = platform.faults.writes if platform.faults is not None else None
    report = parent.annot.push()
    assert report.ok and not report.created and not report.updated and not report.deleted, report
    assert x in report.fast_forwarded, report
    if writes is not None:
        assert platform.faults.writes == writes, "the parent's push wrote again what its subset had pushed"
    assert count(parent, edited) == 1  # the parent holds the subset's edit now, under the platform's id
    assert set(subset.id) <= set(parent.id) and len(parent.annot.diff()) == 0
    fresh = platform.fresh()
    assert count(fresh, edited) == 1 and contents(fresh, platform.digits) == contents(parent, platform.digits)


def test_a_different_edit_in_the_parent_is_a_conflict_for_that_row_only(platform: Platform) -> None:
    parent, subset, x, edited = _subset_pushed(platform)
    mine = platform.edit(parent, x, 2)
    asset = parent.loc[parent.id == x, "asset"].iloc[0]
    other = platform.pick(parent, not_on=(asset,))
    platform.edit(parent, other, 3)  # an edit elsewhere that is not in conflict
    x_now = ids_of(subset, edited)  # X's id since the subset's push (a platform may re-id an edited row)
    with pytest.raises(ConflictError) as info:
        parent.annot.push()
    named = set(info.value.conflicts["id"].astype(str))
    assert named and named <= {x, *x_now}, f"conflicts name other rows than X: {named - {x, *x_now}}"
    fresh = platform.fresh()
    assert count(fresh, edited) == 1 and count(fresh, mine) == 0
