"""The versions annotebook supports, and what differs between them that annotebook must not lean on.

CI runs the fast suite (``-m "not slow"``) on the oldest pins of `.ci/oldest.txt` on Python 3.11 and the whole
suite on the newest on Python 3.13. Before pandas 3, copy-on-write is off: a frame's columns can be views of one
another, and ``Series.to_numpy()`` of a column writes through into the frame. The tests here edit frames in every
in-place way pandas offers and check that the diff sees exactly those edits (so no base snapshot shares memory
with the user's frame) and that a push's write-back lands in the user's own frame object.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import annotebook as ab

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: the packages whose oldest supported version CI pins (the issue's list)
PINNED = ("pandas", "numpy", "ipywidgets", "httpx")


def _floors() -> dict[str, str]:
    """name -> lower bound, from the dependencies and extras of pyproject.toml."""
    extras = PYPROJECT["project"]["optional-dependencies"].values()
    reqs = [*PYPROJECT["project"]["dependencies"], *(r for extra in extras for r in extra)]
    out = {}
    for text in reqs:
        req = Requirement(text)
        for spec in req.specifier:
            if spec.operator == ">=":
                out[req.name.lower()] = spec.version
    return out


def _oldest_pins() -> dict[str, str]:
    lines = (ROOT / ".ci" / "oldest.txt").read_text().splitlines()
    pairs = [line.split("#")[0].strip().split("==") for line in lines]
    return {name.lower(): version for name, version in (p for p in pairs if len(p) == 2)}


def test_oldest_pins_are_the_declared_floors() -> None:
    """.ci/oldest.txt pins each package to the floor pyproject.toml declares, so CI tests what users may have."""
    floors, pins = _floors(), _oldest_pins()
    assert set(PINNED) <= set(pins)
    for name, version in pins.items():
        assert Version(floors[name]) == Version(version), f"{name}: pyproject says >={floors[name]}, pinned {version}"


def test_python_classifiers_match_the_tested_range() -> None:
    """requires-python and the classifiers name the Pythons CI runs (3.11 to 3.13)."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    shown = {c.rsplit(" ", 1)[-1] for c in PYPROJECT["project"]["classifiers"] if re.fullmatch(r".*:: 3\.\d+", c)}
    assert shown == {"3.11", "3.12", "3.13"}
    ci = (ROOT / ".ci" / "run").read_text()
    assert "3.11" in ci and "3.13" in ci


def test_installed_metadata_names_licence_and_links() -> None:
    """What ``pip show annotebook`` reads: the licence (an SPDX expression), the project's links, the LICENSE."""
    meta = metadata("annotebook")
    assert meta["License-Expression"] == "MIT"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert "Programming Language :: Python :: 3.13" in (meta.get_all("Classifier") or [])
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert meta["Version"] == ab.__version__


def test_version_flag() -> None:
    run = subprocess.run([sys.executable, "-m", "annotebook", "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"annotebook {ab.__version__} (Python ")
    assert f"pandas {pd.__version__}" in run.stdout and f"numpy {np.__version__}" in run.stdout


def test_copy_on_write_is_what_this_pandas_says() -> None:
    """The tests below run on both sides of copy-on-write: off on pandas 2.3 (the oldest pin), always on in 3."""
    cow = pd.options.mode.copy_on_write if Version(pd.__version__).major < 3 else True
    assert cow is (Version(pd.__version__).major >= 3) or cow == "warn"


def _changed(changes: ab.Changeset) -> set[tuple[str, str]]:
    return {(str(i), str(f)) for i, f in zip(changes.changes["id"], changes.changes["field"], strict=True)}


def test_in_place_edits_are_seen_by_diff(anns: pd.DataFrame) -> None:
    """Every in-place way to edit a loaded frame shows in its diff, exactly, with or without copy-on-write."""
    ids = anns["id"].tolist()
    anns.loc[anns["id"] == ids[0], "label"] = "wolf"  # .loc
    anns.at[anns.index[1], "x0"] = 0.05  # .at
    anns.iloc[2, anns.columns.get_loc("y1")] = 0.7  # .iloc
    x1 = anns["x1"].to_numpy()  # a view without copy-on-write: writing it edits the frame itself
    if np.shares_memory(x1, anns["x1"].to_numpy()) and x1.flags.writeable:
        x1[3] = 0.45
        expected_x1 = {(ids[3], "x1")}
    else:
        anns.loc[anns.index[3], "x1"] = 0.45
        expected_x1 = {(ids[3], "x1")}
    anns["score"] = anns["score"].where(anns["id"] != ids[4], 0.5)  # a whole column replaced
    changes = anns.annot.diff()
    assert _changed(changes) == {
        (ids[0], "label"),
        (ids[1], "x0"),
        (ids[2], "y1"),
        *expected_x1,
        (ids[4], "score"),
    }
    assert len(changes.added) == len(changes.deleted) == 0


def test_an_edit_of_a_copy_leaves_the_frame_and_its_diff_alone(anns: pd.DataFrame) -> None:
    """``frame.copy()`` then an edit of the copy: the copy's diff has it, the original's does not."""
    other = anns.copy()
    other.loc[other.index[0], "label"] = "wolf"
    assert len(other.annot.diff().modified) == 1
    assert len(anns.annot.diff()) == 0


def test_push_writes_back_into_the_users_frame(anns: pd.DataFrame, conn: ab.Connection) -> None:
    """After a push the same object holds the new revisions and a new row's id (R-14), and diffs empty."""
    anns.loc[anns.index[0], "label"] = "wolf"
    anns.annot.add_box("a0", "cat", (0.1, 0.1, 0.2, 0.2))
    before = id(anns)
    new_id = anns["id"].iloc[-1]
    anns.annot.push()
    assert id(anns) == before and anns["id"].iloc[-1] != new_id and not anns["id"].str.startswith("new-").any()
    assert len(anns.annot.diff()) == 0
    again = conn.annotations("t")
    assert (again["label"] == "wolf").sum() == 1 and len(again) == len(anns)


@pytest.mark.parametrize("column", ["label", "x0", "attributes"])
def test_a_view_of_a_column_edited_through_numpy(anns: pd.DataFrame, column: str) -> None:
    """Without copy-on-write ``df[col].values`` writes through; whatever this pandas does, the diff agrees with
    what the frame holds afterwards."""
    values = anns[column].to_numpy()
    row = 0 if column != "attributes" else int(np.flatnonzero(anns["kind"] == "polygon")[0])
    new = {"label": "wolf", "x0": 0.01, "attributes": {"occluded": False}}[column]
    try:
        values[row] = new
    except (ValueError, TypeError):  # a read-only view (copy-on-write) or an Arrow-backed string column
        return
    changed = anns[column].iloc[row] == new
    fields = _changed(anns.annot.diff())
    assert ((str(anns["id"].iloc[row]), column) in fields) is bool(changed)


def test_a_slice_pushed_without_copy_gets_its_ids_and_no_warning(anns: pd.DataFrame) -> None:
    """``sub = anns[mask]`` (no ``.copy()``) then a push: the ids land in ``sub`` itself, and pandas 2's
    SettingWithCopyWarning, which is for a user's chained assignment, is not raised by annotebook's write-back."""
    import warnings

    sub = anns[anns["kind"] == "box"]
    new = sub.annot.add_box("a0", "cat", (0.1, 0.1, 0.2, 0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sub.annot.push()
    assert new not in set(sub["id"]) and not sub["id"].str.startswith("new-").any()
    assert len(sub.annot.diff()) == 0
