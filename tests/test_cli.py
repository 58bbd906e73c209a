"""README command 1: `python -m annotebook demo DIR` runs the flow headlessly and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(out: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ANNOTEBOOK_HOME"}
    run = subprocess.run(
        [sys.executable, "-m", "annotebook", "demo", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return (out / "report.txt").read_text()


@pytest.mark.slow
def test_demo_writes_pictures_and_report_and_repeats_exactly(tmp_path: Path) -> None:
    """The demo exits 0 on a fresh store and leaves its PNGs and a report that names what it pushed; run again
    into the same folder it writes the same rows (no duplicate boxes); before / after differ visibly."""
    import numpy as np
    from PIL import Image

    out = tmp_path / "demo"
    report = _demo(out)
    assert {p.name for p in out.glob("*.png")} == {"before.png", "gallery.png", "labels.png", "after.png"}
    assert "Pushed to local:shapes: 1 created, 2 updated, 5 deleted" in report
    assert "the pushed frame diffs empty" in report
    again = _demo(out)
    rows = [line for line in again.splitlines() if line.startswith("rows of shapes now")]
    assert rows and rows == [line for line in report.splitlines() if line.startswith("rows of shapes now")]
    assert "Pushed to local:shapes: 1 created, 2 updated, 5 deleted" in again
    before = np.asarray(Image.open(out / "before.png").convert("RGB"), dtype=int)
    after = np.asarray(Image.open(out / "after.png").convert("RGB"), dtype=int)
    assert before.shape == after.shape
    changed = int((np.abs(before - after).sum(axis=2) > 60).sum())
    assert changed > 300, f"before and after differ in only {changed} pixels: the fix is not visible"


def test_readme_test_command_is_what_ci_runs() -> None:
    """.ci/run runs README command 2 exactly as written."""
    root = Path(__file__).parent.parent
    readme = root.joinpath("README.md").read_text()
    ci = root.joinpath(".ci", "run").read_text()
    command = next(line.strip() for line in readme.splitlines() if "pytest" in line and "venv" in line)
    assert command in ci.splitlines()
    assert "python -m annotebook demo" in readme
