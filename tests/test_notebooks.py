"""Every notebook in notebooks/ runs top to bottom on a fresh store and shows pictures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_pictures(path: Path, tmp_path: Path) -> None:
    """The notebook executes without error (ANNOTEBOOK_HOME is a fresh folder) and shows at least one image."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    shown = "\n".join(
        str(o.get("text", "")) + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
        for o in outputs
    )
    for secret in ("dtvi_", "Bearer ", "Secret-Key", "Authorization"):  # keys never reach a notebook's output
        assert secret not in shown, f"{path.name} shows {secret!r}"


def test_quickstart_is_there() -> None:
    """The README points at notebooks/quickstart.ipynb."""
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)
