"""The editor in a real JupyterLab and a real headless Chromium: draw, drag a vertex, delete, zoom.

A notebook opens the editor on one asset of the sample dataset; Playwright moves a real mouse over the canvas and
presses real keys; the kernel's DataFrame is read through jupyter_client after each gesture. Screenshots go to
tests/e2e/artifacts/ (look at them). Run by CI (which installs Debian's chromium); see conftest.py for when it skips.
"""

from __future__ import annotations

import ast
import json
import time
from typing import Any

import nbformat
import pytest

from .conftest import ARTIFACTS, kernel_eval

pytestmark = pytest.mark.slow

ASSET = "shapes_010"
CELL = f"""\
import annotebook as ab
conn = ab.connect()
anns = conn.assets("shapes").annot.load()
editor = anns.annot.edit({ASSET!r})
n0 = len(anns)
editor"""


def _notebook(path: Any) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _open(page: Any, lab: dict[str, Any]) -> str:
    page.goto(f"{lab['base']}/lab/tree/edit.ipynb?token={lab['token']}")
    page.wait_for_function(
        "window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=90_000,
    )
    kernel_id: str = page.evaluate(
        """async () => {
        const app = window.jupyterapp; await app.restored;
        const nb = app.shell.currentWidget; await nb.context.ready; await nb.sessionContext.ready;
        const k = nb.sessionContext.session.kernel;
        while (k.status !== 'idle') { await new Promise(r => setTimeout(r, 100)); }
        return k.id; }"""
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return kernel_id


def _client(lab: dict[str, Any], kernel_id: str) -> Any:
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_file(str(lab["runtime"] / f"kernel-{kernel_id}.json"))
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return kc


def _wait(kc: Any, expr: str, want: str, timeout: float = 20) -> float:
    """Poll ``expr`` in the kernel until it reads ``want``; seconds it took."""
    start = time.monotonic()
    while (got := kernel_eval(kc, expr)) != want:
        assert time.monotonic() - start < timeout, f"{expr} stayed {got}, wanted {want}"
        time.sleep(0.02)
    return time.monotonic() - start


def test_editor_end_to_end(lab: dict[str, Any], page: Any) -> None:
    """Box drawn, polygon vertex dragged, region deleted by key, wheel zoom: each lands in the kernel's frame."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _notebook(lab["root"] / "edit.ipynb")
    timings: dict[str, float] = {}
    try:
        kernel_id = _open(page, lab)
        kc = _client(lab, kernel_id)
        canvas = page.locator(".jp-OutputArea-output canvas").last  # the top (overlay) layer gets the events
        canvas.wait_for(state="visible", timeout=60_000)
        canvas.scroll_into_view_if_needed()
        _wait(kc, "editor.state.asset", repr(ASSET), timeout=60)
        bb = canvas.bounding_box()
        width, height = ast.literal_eval(kernel_eval(kc, "tuple(editor.state.canvas_size)"))
        sx, sy = bb["width"] / width, bb["height"] / height

        def at(cx: float, cy: float) -> tuple[float, float]:
            return bb["x"] + cx * sx, bb["y"] + cy * sy

        def canvas_xy(ix: float, iy: float) -> tuple[float, float]:
            x, y = ast.literal_eval(kernel_eval(kc, f"tuple(map(float, editor.state.viewport.to_canvas({ix}, {iy})))"))
            return x, y

        # 1. draw a box with the box tool (key "b" once the canvas has the focus)
        page.mouse.click(*at(5, 5))
        page.keyboard.press("b")
        _wait(kc, "editor.state.tool", "'box'")
        page.mouse.move(*at(60, 300))
        page.mouse.down()
        page.mouse.move(*at(160, 380), steps=8)
        page.mouse.up()
        timings["mouse_up_to_new_row_s"] = _wait(kc, "len(anns) - n0", "1")
        new = json.loads(kernel_eval(kc, "anns.iloc[-1][['kind', 'x0', 'x1']].to_json()").strip("'"))
        assert new["kind"] == "box" and 0 <= new["x0"] < new["x1"] <= 1

        # 2. drag the first vertex of the star polygon by 20 canvas pixels
        page.keyboard.press("v")
        _wait(kc, "editor.state.tool", "'select'")
        poly = f"anns[(anns.asset == {ASSET!r}) & (anns.kind == 'polygon')].iloc[0]"
        pid = ast.literal_eval(kernel_eval(kc, f"{poly}.id"))
        vx, vy = ast.literal_eval(kernel_eval(kc, f"tuple(editor.state.regions[{pid!r}].points[0][:2])"))
        box = ast.literal_eval(kernel_eval(kc, f"tuple(map(float, {poly}[['x0','y0','x1','y1']]))"))
        w, h = ast.literal_eval(kernel_eval(kc, "(editor.state.info.width, editor.state.info.height)"))
        centre = canvas_xy((box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h)
        page.mouse.click(*at(*centre))  # select the star (the polygon is on top of its box)
        _wait(kc, "editor.state.selection", repr(pid))
        before = kernel_eval(kc, f"{poly}.points[0][:2]")
        px, py = canvas_xy(vx, vy)
        page.mouse.move(*at(px, py))
        page.mouse.down()
        page.mouse.move(*at(px + 20, py + 10), steps=6)
        page.mouse.up()
        _wait(kc, f"{poly}.points[0][:2] != {before}", "True")
        moved = ast.literal_eval(kernel_eval(kc, f"tuple(editor.state.regions[{pid!r}].points[0][:2])"))
        scale = ast.literal_eval(kernel_eval(kc, "float(editor.state.viewport.scale)"))
        assert moved == pytest.approx((vx + 20 / scale, vy + 10 / scale), abs=1.5 / scale)
        page.screenshot(path=str(ARTIFACTS / "editor_after_vertex_drag.png"))

        # 3. select the circle's box and delete it with the Delete key
        circle = f"anns[(anns.asset == {ASSET!r}) & (anns.label == 'circle')].iloc[0]"
        cid = ast.literal_eval(kernel_eval(kc, f"{circle}.id"))
        cb = ast.literal_eval(kernel_eval(kc, f"tuple(map(float, {circle}[['x0','y0','x1','y1']]))"))
        page.mouse.click(*at(*canvas_xy((cb[0] + cb[2]) / 2 * w, (cb[1] + cb[3]) / 2 * h)))
        _wait(kc, "editor.state.selection", repr(cid))
        page.keyboard.press("Delete")
        _wait(kc, f"bool(anns.set_index('id').loc[{cid!r}, 'deleted'])", "True")

        # 4. the wheel zooms about the mouse
        zoom0 = float(kernel_eval(kc, "editor.state.viewport.scale"))
        page.mouse.move(*at(width / 2, height / 2))
        page.mouse.wheel(0, -400)
        _wait(kc, f"editor.state.viewport.scale > {zoom0}", "True")

        # the frame's diff holds exactly these edits
        summary = ast.literal_eval(kernel_eval(kc, "anns.annot.diff().summary()"))
        assert "1 added" in summary and "1 modified" in summary and "1 deleted" in summary, summary
        page.screenshot(path=str(ARTIFACTS / "editor_end.png"))
        canvas.screenshot(path=str(ARTIFACTS / "editor_canvas_end.png"))
        kc.stop_channels()
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "failure.png"))
        (ARTIFACTS / "console.log").write_text("\n".join(page.console_lines))
        raise
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings))
    print("\nE2E TIMINGS " + json.dumps(timings))
