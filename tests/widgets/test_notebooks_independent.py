"""The sample notebooks do not depend on each other or on earlier runs: quickstart twice, then relabel, in one
store (one ANNOTEBOOK_HOME), each runs clean, and the second quickstart shows what the first showed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent.parent / "notebooks"


def _run(name: str, cwd: Path) -> list[str]:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    last = nb.cells[-1].outputs
    return [str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in last]


@pytest.mark.slow
def test_quickstart_twice_then_relabel_in_one_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTEBOOK_HOME", str(tmp_path / "home"))
    first = _run("quickstart", tmp_path)
    second = _run("quickstart", tmp_path)
    assert first == second  # the same summary: no extra circle per run
    _run("relabel", tmp_path)  # after quickstart fixed the planted mistakes, relabel still finds them
