"""README command 1: `python -m annotebook demo DIR` runs the flow headlessly and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_writes_pictures_and_report(tmp_path: Path) -> None:
    """The demo exits 0 on a fresh store and leaves its PNGs and a report that names what it pushed."""
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "ANNOTEBOOK_HOME"}
    run = subprocess.run(
        [sys.executable, "-m", "annotebook", "demo", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert {p.name for p in out.glob("*.png")} == {"asset.png", "gallery.png", "labels.png", "after.png"}
    report = (out / "report.txt").read_text()
    assert "Pushed to local:shapes: 1 created, 2 updated, 5 deleted" in report
    assert "the pushed frame diffs empty" in report


def test_readme_test_command_is_what_ci_runs() -> None:
    """.ci/run runs README command 2 exactly as written."""
    root = Path(__file__).parent.parent
    readme = root.joinpath("README.md").read_text()
    ci = root.joinpath(".ci", "run").read_text()
    command = next(line.strip() for line in readme.splitlines() if "pytest" in line and "venv" in line)
    assert command in ci.splitlines()
    assert "python -m annotebook demo" in readme
