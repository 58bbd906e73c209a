"""Issue 16: a load is traceable from the moment it returns (its snapshot is on disk before the frame is handed
over), so a kernel killed right after a load loses nothing: the frame it saved diffs and pushes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

import annotebook as ab

KILLED = textwrap.dedent(
    """
    import os, sys
    import annotebook as ab
    anns = ab.connect("local", path=sys.argv[1]).assets("big").annot.load()
    print(anns["load"].iloc[0], flush=True)
    os._exit(0)  # killed the moment the load returned: no atexit, no background thread gets to finish
    """
)


def test_a_kernel_killed_right_after_a_load_leaves_its_frames_traceable(tmp_path: Path, ab_home: Path) -> None:
    store = tmp_path / "store"
    conn = ab.connect("local", path=str(store))
    n = 20_000  # a snapshot that takes a while to write: the old background write lost this race
    assets = ab.assets_frame([{"dataset": "big", "asset": f"a{i}", "name": f"a{i}.png", "width": 10, "height": 10}
                              for i in range(100)])  # fmt: skip
    rows = [{"dataset": "big", "asset": f"a{i % 100}", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1,
             "x1": 0.2 + i / (4 * n), "y1": 0.3} for i in range(n)]  # fmt: skip
    conn.backend.write_dataset("big", assets, ab.annotations_frame(rows))
    env = {**os.environ, "ANNOTEBOOK_HOME": str(ab_home)}
    proc = subprocess.run([sys.executable, "-c", KILLED, str(store)], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    # what that kernel had saved of its frame: the store's rows under the load's token, as a parquet file
    frame = conn.backend.annotations("big").assign(load=token)
    frame.to_parquet(tmp_path / "frame.parquet")
    anns = pd.read_parquet(tmp_path / "frame.parquet")
    anns.loc[anns.index[0], "label"] = "edited"
    changes = anns.annot.diff()
    assert len(changes.modified) == 1 and changes.changes["new"].tolist() == ["edited"]
    assert len(anns.annot.push().updated) == 1
    assert "edited" in set(ab.connect("local", path=str(store)).annotations("big")["label"])
