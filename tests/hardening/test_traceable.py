"""Issue 16: a load is traceable from the moment it returns (its snapshot is on disk before the frame is handed
over), so a kernel killed right after a load loses nothing: the parquet it saved diffs and pushes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import annotebook as ab

KILLED = textwrap.dedent(
    """
    import os, sys
    import annotebook as ab
    conn = ab.connect("local", path=sys.argv[1])
    anns = conn.assets("shapes").annot.load()
    anns.loc[anns.index[0], "label"] = "edited"
    anns.to_parquet(sys.argv[2])
    os._exit(0)  # SIGKILL-like: no atexit, no thread gets to finish
    """
)


def test_a_kernel_killed_right_after_a_load_leaves_its_frames_traceable(tmp_path: Path, ab_home: Path) -> None:
    store, saved = tmp_path / "store", tmp_path / "frame.parquet"
    env = {**__import__("os").environ, "ANNOTEBOOK_HOME": str(ab_home)}
    for _ in range(3):  # the old background write lost this race most of the time; it must never lose it
        proc = subprocess.run([sys.executable, "-c", KILLED, str(store), str(saved)], env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        import pandas as pd

        anns = pd.read_parquet(saved)
        changes = anns.annot.diff()
        assert len(changes.modified) == 1 and changes.changes["new"].tolist() == ["edited"]
    report = anns.annot.push()
    assert len(report.updated) == 1
    assert "edited" in set(ab.connect("local", path=str(store)).annotations("shapes")["label"])
