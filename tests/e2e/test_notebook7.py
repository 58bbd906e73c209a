"""The editor's browser flow in Jupyter Notebook 7 (the classic single-document front end), as in JupyterLab.

Notebook 7 renders outputs with JupyterLab's widgets manager, but its page, shell and URL are its own
(``/notebooks/NAME``), so the widgets are checked there too: a box drawn, a polygon vertex dragged, a region deleted
and a wheel zoom, each read back from the kernel's DataFrame through jupyter_client. Tools are picked with the
toolbar's buttons here: Notebook 7 handles keys in the capture phase (``bubblingKeydown`` is off), so its
command-mode shortcuts (``b`` inserts a cell) take the editor's tool keys first; `test_tool_keys_in_notebook7`
states that gap. The ``nb7`` fixture of
this module starts Notebook 7; the tests open their own tab in the e2e session's browser (conftest's ``page``).
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from .conftest import ARTIFACTS, idle_kernel, kernel_eval, require_browser, serve_jupyter

pytestmark = pytest.mark.slow

ASSET = "shapes_010"
CELL = f"""\
import annotebook as ab
conn = ab.connect()
anns = conn.assets("shapes").annot.load()
editor = anns.annot.edit({ASSET!r})
n0 = len(anns)
editor"""


@pytest.fixture(scope="module")
def nb7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Jupyter Notebook 7 serving ``tmp_path/root``, a kernel whose ANNOTEBOOK_HOME is ``tmp_path/home``."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("notebook7")
    yield from serve_jupyter(
        tmp_path,
        "notebook",
        [
            "--JupyterNotebookApp.expose_app_in_browser=True",
            f"--JupyterNotebookApp.user_settings_dir={tmp_path / 'settings'}",
            f"--JupyterNotebookApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        "notebook7-server.log",
    )


@pytest.fixture
def tab(page: Any) -> Iterator[Any]:
    """A tab of its own in the e2e session's Chromium (one Playwright per process), closed after the test."""
    pg = page.context.browser.new_page(viewport={"width": 1500, "height": 1000})  # a context of its own
    pg.console_lines = []
    pg.on("console", lambda m: pg.console_lines.append(f"{m.type}: {m.text}"))
    try:
        yield pg
    finally:
        pg.close()


def _open(page: Any, lab: dict[str, Any], name: str) -> str:
    """Open the notebook in Notebook 7's own page, run it; the kernel's id."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(lab["root"] / name))
    page.goto(f"{lab['base']}/notebooks/{name}?token={lab['token']}")
    kernel_id = idle_kernel(page)
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"  # not JupyterLab
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return kernel_id


def _client(lab: dict[str, Any], kernel_id: str) -> Any:
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_file(str(lab["runtime"] / f"kernel-{kernel_id}.json"))
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return kc


def _wait(kc: Any, expr: str, want: str, timeout: float = 20) -> None:
    start = time.monotonic()
    while (got := kernel_eval(kc, expr)) != want:
        assert time.monotonic() - start < timeout, f"{expr} stayed {got}, wanted {want}"
        time.sleep(0.02)


def test_editor_in_notebook7(nb7: dict[str, Any], tab: Any) -> None:
    """Box drawn, vertex dragged, region deleted, wheel zoom: each lands in the kernel's frame."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        kc = _client(nb7, _open(tab, nb7, "edit.ipynb"))
        canvas = tab.locator(".jp-OutputArea-output canvas").last  # the top (overlay) layer gets the events
        canvas.wait_for(state="visible", timeout=60_000)
        canvas.scroll_into_view_if_needed()
        _wait(kc, "editor.state.asset", repr(ASSET), timeout=60)
        bb = canvas.bounding_box()
        width, height = ast.literal_eval(kernel_eval(kc, "tuple(editor.state.canvas_size)"))

        def at(cx: float, cy: float) -> tuple[float, float]:
            return bb["x"] + cx * bb["width"] / width, bb["y"] + cy * bb["height"] / height

        def canvas_xy(ix: float, iy: float) -> tuple[float, float]:
            x, y = ast.literal_eval(kernel_eval(kc, f"tuple(map(float, editor.state.viewport.to_canvas({ix}, {iy})))"))
            return x, y

        w, h = ast.literal_eval(kernel_eval(kc, "(editor.state.info.width, editor.state.info.height)"))

        def centre_of(row: str) -> tuple[float, float]:
            b = ast.literal_eval(kernel_eval(kc, f"tuple(map(float, {row}[['x0','y0','x1','y1']]))"))
            return at(*canvas_xy((b[0] + b[2]) / 2 * w, (b[1] + b[3]) / 2 * h))

        # 1. a box drawn with the box tool (its toolbar button: Notebook 7 takes the tool keys, see below)
        tab.locator("button[title='box (b)']").click()
        _wait(kc, "editor.state.tool", "'box'")
        tab.mouse.move(*at(60, 300))
        tab.mouse.down()
        tab.mouse.move(*at(160, 380), steps=8)
        tab.mouse.up()
        _wait(kc, "len(anns) - n0", "1")
        new = json.loads(kernel_eval(kc, "anns.iloc[-1][['kind', 'x0', 'x1']].to_json()").strip("'"))
        assert new["kind"] == "box" and 0 <= new["x0"] < new["x1"] <= 1

        # 2. the star polygon's first vertex dragged by (20, 10) canvas pixels
        tab.locator("button[title='select (v)']").click()
        _wait(kc, "editor.state.tool", "'select'")
        poly = f"anns[(anns.asset == {ASSET!r}) & (anns.kind == 'polygon')].iloc[0]"
        pid = ast.literal_eval(kernel_eval(kc, f"{poly}.id"))
        vx, vy = ast.literal_eval(kernel_eval(kc, f"tuple(editor.state.regions[{pid!r}].points[0][:2])"))
        tab.mouse.click(*centre_of(poly))
        _wait(kc, "editor.state.selection", repr(pid))
        px, py = canvas_xy(vx, vy)
        tab.mouse.move(*at(px, py))
        tab.mouse.down()
        tab.mouse.move(*at(px + 20, py + 10), steps=6)
        tab.mouse.up()
        scale = ast.literal_eval(kernel_eval(kc, "float(editor.state.viewport.scale)"))
        _wait(kc, f"editor.state.regions[{pid!r}].points[0][0] != {vx}", "True")
        moved = ast.literal_eval(kernel_eval(kc, f"tuple(editor.state.regions[{pid!r}].points[0][:2])"))
        assert moved == pytest.approx((vx + 20 / scale, vy + 10 / scale), abs=1.5 / scale)

        # 3. the circle's box selected and deleted with the trash button
        circle = f"anns[(anns.asset == {ASSET!r}) & (anns.label == 'circle')].iloc[0]"
        cid = ast.literal_eval(kernel_eval(kc, f"{circle}.id"))
        tab.mouse.click(*centre_of(circle))
        _wait(kc, "editor.state.selection", repr(cid))
        tab.locator("button[title='delete (Del)']").click()
        _wait(kc, f"bool(anns.set_index('id').loc[{cid!r}, 'deleted'])", "True")

        # 4. the wheel zooms
        zoom0 = float(kernel_eval(kc, "editor.state.viewport.scale"))
        tab.mouse.move(*at(width / 2, height / 2))
        tab.mouse.wheel(0, -400)
        _wait(kc, f"editor.state.viewport.scale > {zoom0}", "True")

        summary = ast.literal_eval(kernel_eval(kc, "anns.annot.diff().summary()"))
        assert "1 added" in summary and "1 modified" in summary and "1 deleted" in summary, summary
        tab.screenshot(path=str(ARTIFACTS / "notebook7_end.png"))
        kc.stop_channels()
    except Exception:
        tab.screenshot(path=str(ARTIFACTS / "notebook7_failure.png"))
        (ARTIFACTS / "notebook7_console.log").write_text("\n".join(tab.console_lines))
        raise


@pytest.mark.xfail(
    strict=True,
    reason="Notebook 7 takes keys in the capture phase: 'b' inserts a cell, never reaching "
    "the canvas (JupyterLab lets widgets have them); the editor's tool keys need a fix in widgets/",
)
def test_tool_keys_in_notebook7(nb7: dict[str, Any], tab: Any) -> None:
    """A tool key pressed on the focused canvas picks the tool, as it does in JupyterLab."""
    page = tab
    kc = _client(nb7, _open(page, nb7, "keys.ipynb"))
    canvas = page.locator(".jp-OutputArea-output canvas").last
    canvas.wait_for(state="visible", timeout=60_000)
    _wait(kc, "editor.state.asset", repr(ASSET), timeout=60)
    canvas.click(position={"x": 5, "y": 5})
    page.keyboard.press("b")
    try:
        _wait(kc, "editor.state.tool", "'box'", timeout=5)
    finally:
        kc.stop_channels()
