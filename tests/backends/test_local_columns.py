"""The local store's column copy: stores of the previous layout open, and a load from the copy plus the rows
written since always equals a load of the rows themselves, whoever wrote them (another process included)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
import annotebook.backends.local as local
from annotebook.backends.local import LocalBackend

# the store's layout before the column copy (annotebook 6a414b4), as users have it on disk
_CONTENT = [c for c in ab.annotations_frame().columns if c not in ("dataset", "id", "rev", "deleted", "load")]
OLD_DDL = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE datasets (name TEXT PRIMARY KEY, description TEXT, created TEXT);
CREATE TABLE assets (
    dataset TEXT NOT NULL, asset TEXT NOT NULL, name TEXT, width INTEGER, height INTEGER, uri TEXT,
    status TEXT, frames INTEGER, rev INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dataset, asset));
CREATE TABLE labels (
    dataset TEXT NOT NULL, name TEXT NOT NULL, "index" INTEGER, color TEXT, keypoints TEXT, skeleton TEXT,
    PRIMARY KEY (dataset, name));
CREATE TABLE annotations (
    pk INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, rev INTEGER NOT NULL,
    {", ".join(f'"{c}"' for c in _CONTENT)});
CREATE INDEX annotations_asset ON annotations(dataset, asset);
CREATE INDEX annotations_dataset ON annotations(dataset);
"""


def _old_store(root: Path) -> Path:
    """A store file as the previous layout wrote it: three rows (a box, a polygon, a keypoints row)."""
    root.mkdir(parents=True)
    db = sqlite3.connect(root / "store.sqlite")
    db.executescript(OLD_DDL)
    db.execute("INSERT INTO meta VALUES ('rev', '4')")
    db.execute("INSERT INTO datasets VALUES ('d', '', datetime('now'))")
    for a in ("a1", "a2"):
        db.execute("INSERT INTO assets VALUES ('d', ?, ?, 100, 80, NULL, NULL, NULL, 0)", (a, a + ".png"))
    db.execute("INSERT INTO labels VALUES ('d', 'cat', 0, NULL, NULL, NULL)")
    rows = [
        {"asset": "a1", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.2, "x1": 0.5, "y1": 0.6, "rotation": 0.0,
         "attributes": json.dumps({"occluded": True})},
        {"asset": "a1", "label": "cat", "kind": "polygon", "x0": 0.1, "y0": 0.1, "x1": 0.4, "y1": 0.3,
         "points": json.dumps([[0.1, 0.1, 0.4, 0.1, 0.2, 0.3], [0.15, 0.12, 0.2, 0.12, 0.18, 0.15]])},
        {"asset": "a2", "label": "cat", "kind": "keypoints", "x0": 0.3, "y0": 0.3, "x1": 0.3, "y1": 0.3,
         "points": json.dumps([[0.3, 0.3, None, None]]), "visibility": json.dumps([2, 0]), "score": 0.5},
    ]  # fmt: skip
    for rev, row in enumerate(rows, start=2):
        cols = ", ".join(f'"{c}"' for c in row)
        db.execute(
            f"INSERT INTO annotations (dataset, rev, {cols}) VALUES ('d', ?, {', '.join('?' for _ in row)})",
            (rev, *row.values()),
        )
    db.commit()
    db.close()
    return root


def _from_rows(store: LocalBackend, dataset: str) -> pd.DataFrame:
    """The dataset read from its rows alone (the copy set aside)."""
    cols = ", ".join(f'"{c}"' for c in local._ANN_COLS)
    with store._db() as db:
        rows = db.execute(
            f"SELECT dataset, CAST(pk AS TEXT), CAST(rev AS TEXT), {cols} FROM annotations WHERE dataset = ? "
            "ORDER BY pk",
            (dataset,),
        ).fetchall()
    return local._rows_to_frame(rows)


def _copies(path: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(path / "store.sqlite") as db:
        return db.execute("SELECT dataset, rev, gone FROM columns ORDER BY dataset, part").fetchall()


def test_a_store_of_the_previous_layout_opens_loads_and_pushes(tmp_path: Path) -> None:
    path = _old_store(tmp_path / "old")
    store = LocalBackend(path)
    anns = store.annotations("d")
    assert anns["id"].tolist() == ["1", "2", "3"] and anns["rev"].tolist() == ["2", "3", "4"]
    assert anns.loc[0, "attributes"] == {"occluded": True}
    assert anns.loc[1, "points"] == ((0.1, 0.1, 0.4, 0.1, 0.2, 0.3), (0.15, 0.12, 0.2, 0.12, 0.18, 0.15))
    assert anns.loc[2, "visibility"] == (2, 0) and anns.loc[2, "score"] == 0.5
    assert _copies(path) == [("d", 4, 0)]  # the first load wrote the copy
    pd.testing.assert_frame_equal(store.annotations("d"), anns)  # and the second reads it

    conn = ab.connect("local", path=str(path))
    frame = conn.annotations("d")
    frame.loc[0, "label"] = "dog"
    frame.annot.delete(frame["kind"] == "keypoints")
    frame.annot.add_box("a2", "cat", (0.1, 0.1, 0.2, 0.2))
    report = frame.annot.push()
    assert len(report.updated) == 1 and len(report.deleted) == 1 and len(report.created) == 1
    again = store.annotations("d")
    pd.testing.assert_frame_equal(again, _from_rows(store, "d"))
    assert again["label"].tolist() == ["dog", "cat", "cat"] and again["id"].tolist() == ["1", "2", "4"]


def test_a_copy_of_another_format_is_ignored_and_rewritten(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "s")
    first = store.annotations("shapes")
    with sqlite3.connect(store.path / "store.sqlite") as db:
        db.execute("UPDATE columns SET format = 'arrow-ipc/marshal-0/py2.7', data = x'00'")
    pd.testing.assert_frame_equal(store.annotations("shapes"), first)
    with sqlite3.connect(store.path / "store.sqlite") as db:
        assert db.execute("SELECT DISTINCT format FROM columns").fetchall() == [(local._FORMAT,)]


def test_a_loaded_frame_is_its_own_writable_copy(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "s")
    store.annotations("shapes")
    anns = store.annotations("shapes")  # from the copy
    anns.loc[0, "x1"] = 0.75
    anns.loc[0, "frame"] = 3
    anns.loc[0, "label"] = "changed"
    fresh = store.annotations("shapes")
    assert fresh.loc[0, "x1"] != 0.75 and pd.isna(fresh.loc[0, "frame"]) and fresh.loc[0, "label"] != "changed"


_OTHER_KERNEL = """
import os, sys
import annotebook as ab
conn = ab.connect("local", path=sys.argv[1])
anns = conn.annotations("shapes")
anns.loc[anns.index[1], "label"] = "from-the-other-kernel"
anns.annot.delete(anns.index == anns.index[2])
anns.annot.add_box(anns["asset"].iloc[0], "added-elsewhere", (0.1, 0.1, 0.3, 0.3))
report = anns.annot.push()
print(len(report.updated), len(report.deleted), len(report.created))
"""


@pytest.mark.parametrize("refresh", [100_000, 1])
def test_rows_written_by_another_process_since_the_copy_are_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refresh: int
) -> None:
    monkeypatch.setattr(local, "_REFRESH_ROWS", refresh)
    monkeypatch.setattr(local, "_REFRESH_SHARE", 0.0)
    store = LocalBackend(tmp_path / "s")
    before = store.annotations("shapes")
    held = _copies(store.path)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OTHER_KERNEL), str(store.path)],
        env={**os.environ, "ANNOTEBOOK_HOME": str(tmp_path / "other-home")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["1", "1", "1"]
    after = store.annotations("shapes")
    pd.testing.assert_frame_equal(after, _from_rows(store, "shapes"))
    assert len(after) == len(before)
    assert "from-the-other-kernel" in set(after["label"]) and "added-elsewhere" in set(after["label"])
    assert before["id"].iloc[2] not in set(after["id"])
    if refresh == 1:  # three rows since the copy: more than the threshold, so the load rewrote it
        assert _copies(store.path) != held
    else:
        assert _copies(store.path) == held


def test_write_dataset_replaces_the_copy(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "s")
    anns = store.annotations("shapes")
    assets = store.assets("shapes")
    store.write_dataset("shapes", assets, anns.iloc[:5].assign(id=None, rev=None))
    again = store.annotations("shapes")
    assert len(again) == 5
    pd.testing.assert_frame_equal(again, _from_rows(store, "shapes"))
