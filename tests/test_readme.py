"""The README's examples run as written, in order, on a fresh store (a fresh ANNOTEBOOK_HOME and folder).

Every ```python block is preceded by a marker: ``<!-- readme-test: run -->`` (run here, in one interpreter, in
order) or ``<!-- readme-test: skip (why) -->`` (a platform account). A block without a marker fails the test, so a
new example cannot slip in untested.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[str | None, str]]:
    return [(m["mark"], m["code"]) for m in BLOCK.finditer(README.read_text())]


def test_every_python_block_is_marked() -> None:
    unmarked = [code.splitlines()[0] for mark, code in blocks() if mark is None]
    assert not unmarked, f"README python blocks without a readme-test marker: {unmarked}"
    assert sum(mark == "run" for mark, _ in blocks()) >= 2


@pytest.mark.slow
def test_readme_snippets_run_in_order_on_a_fresh_store(tmp_path: Path) -> None:
    code = "\n".join(code for mark, code in blocks() if mark == "run")
    script = tmp_path / "readme.py"
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n" + code)
    env = {"ANNOTEBOOK_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "out.json").exists() and any((tmp_path / "out").rglob("*.txt"))
