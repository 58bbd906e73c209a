"""Issue 16: a full disk is a named error (`DiskFull`, naming the file) and leaves nothing half-written.

The disk is real: a 4 MiB tmpfs mounted in a user namespace (``unshare -rm``), where a child Python fills it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import annotebook as ab

CHILD = textwrap.dedent(
    """
    import json, os, sys
    import pandas as pd
    import annotebook as ab
    mnt, case = sys.argv[1], sys.argv[2]
    out = {}
    def rows(n, asset="a0", pad=0):
        return [{"dataset": "d", "asset": asset, "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.5,
                 "y1": 0.5, "attributes": {"note": "x" * pad}} for _ in range(n)]
    assets = ab.assets_frame([{"dataset": "d", "asset": f"a{i}", "name": f"a{i}.png", "width": 10, "height": 10}
                              for i in range(400)])
    if case == "store":
        conn = ab.connect("local", path=os.path.join(mnt, "store"))
        conn.backend.write_dataset("d", assets, ab.annotations_frame(rows(3)))
        anns = conn.assets("d").annot.load()
        before = sorted(anns["id"])
        more = pd.concat([anns, *[anns.annot.new_box("a0", "dog", (0.1, 0.1, 0.2, 0.2), attributes={"n": "y" * 30000})
                                  for _ in range(400)]])
        try:
            more.annot.push()
            out["error"] = None
        except Exception as exc:
            out["error"], out["message"] = type(exc).__name__, str(exc)
        out["after"] = sorted(ab.connect("local", path=os.path.join(mnt, "store")).annotations("d")["id"])
        out["before"] = before
    else:
        anns = ab.annotations_frame([{**r, "asset": f"a{i % 400}"} for i, r in enumerate(rows(1200, pad=4000))])
        target = os.path.join(mnt, "sa")
        try:
            from annotebook.formats import save
            save(anns, target, "superannotate", assets=assets)
            out["error"] = None
        except Exception as exc:
            out["error"], out["message"] = type(exc).__name__, str(exc)
        out["left"] = sorted(os.listdir(mnt))
    print(json.dumps(out))
    """
)


def _run_on_full_disk(tmp_path: Path, case: str) -> dict:
    if shutil.which("unshare") is None:
        pytest.fail("FULL-DISK TEST NOT RUN: no `unshare` (util-linux) to mount a small tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = f"mount -t tmpfs -o size=4m tmpfs {mnt} && {sys.executable} {script} {mnt} {case}"
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "ANNOTEBOOK_HOME": str(tmp_path / "home")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_full_disk_during_a_store_push_is_named_and_changes_nothing(tmp_path: Path) -> None:
    out = _run_on_full_disk(tmp_path, "store")
    assert out["error"] == "DiskFull", out
    assert "store.sqlite" in out["message"] and "cannot rollback" not in out["message"]
    assert out["after"] == out["before"]  # not one of the 400 rows landed


def test_full_disk_during_a_superannotate_save_leaves_no_folder(tmp_path: Path) -> None:
    out = _run_on_full_disk(tmp_path, "superannotate")
    assert out["error"] == "DiskFull", out
    assert out["left"] == [], out  # no half-written folder, no staging folder


def test_disk_full_is_an_os_error_and_ours() -> None:
    assert issubclass(ab.DiskFull, OSError) and issubclass(ab.DiskFull, ab.AnnotebookError)
