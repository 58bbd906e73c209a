"""Issue 16: editor edits are journaled on disk as they happen; ``ab.recover()`` gives them back after the kernel
that made them was killed before its push, as a frame to diff and push."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import annotebook as ab

ROOT = Path(__file__).resolve().parents[2]

EDIT_THEN_DIE = textwrap.dedent(
    """
    import os, sys
    import annotebook as ab
    from tests.widgets.conftest import open_editor
    conn = ab.connect("local", path=sys.argv[1])
    anns = conn.assets("shapes").annot.load()
    front = open_editor(anns)
    box = next(r for r in front.state.regions.values() if r.kind == "box")
    front.state.select(box.id)
    front.key("ArrowRight")               # move a box: a modified row
    front.tool("box")
    front.drag(*front.at(10, 10), *front.at(40, 30))   # draw one: an added row
    front.tool("select")
    front.state.select(box.id)
    front.key("Delete")                    # and delete the moved one
    other = next(r for r in front.state.regions.values() if r.kind in ("box", "polygon") and r.id != box.id)
    front.state.select(other.id)
    front.key("ArrowDown")                 # move another
    changes = anns.annot.diff()
    print(len(changes.added), len(changes.modified), len(changes.deleted), flush=True)
    os._exit(0)                            # the kernel dies before any push
    """
)


def test_editor_edits_survive_a_killed_kernel_and_push_from_recover(tmp_path: Path, ab_home: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "ANNOTEBOOK_HOME": str(ab_home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", EDIT_THEN_DIE, str(store)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    added, modified, deleted = (int(x) for x in proc.stdout.split())
    assert (added, modified, deleted) == (1, 1, 1)

    listed = ab.recover()
    assert len(listed) == 1 and listed["dataset"].iloc[0] == "shapes" and listed["backend"].iloc[0] == "local"
    assert listed["edits"].iloc[0] == 3  # the added row, the deleted one, the moved one

    anns = ab.recover(listed["load"].iloc[0])
    changes = anns.annot.diff()
    assert (len(changes.added), len(changes.modified), len(changes.deleted)) == (1, 1, 1)
    report = anns.annot.push()
    assert (len(report.created), len(report.updated), len(report.deleted)) == (1, 1, 1)
    assert len(ab.recover()) == 0  # pushed: nothing left to recover
    fresh = ab.connect("local", path=str(store)).assets("shapes").annot.load()
    assert set(report.created) <= set(fresh["id"]) or len(fresh) > 0


def test_undone_edits_leave_nothing_to_recover(tmp_path: Path) -> None:
    from tests.widgets.conftest import open_editor

    conn = ab.connect("local", path=str(tmp_path / "store"))
    anns = conn.assets("shapes").annot.load()
    front = open_editor(anns)
    box = next(r for r in front.state.regions.values() if r.kind == "box")
    front.state.select(box.id)
    front.key("ArrowRight")
    assert ab.recover()["edits"].tolist() == [1]
    front.key("z", ctrl=True)
    assert len(ab.recover()) == 0
