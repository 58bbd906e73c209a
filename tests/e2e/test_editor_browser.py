"""The editor in a real JupyterLab and a real headless Chromium: draw, drag a vertex, delete, zoom.

The session's notebook shows the editor on one asset of the sample dataset; Playwright moves a real mouse over
the canvas and presses real keys; the kernel's DataFrame is read through jupyter_client after each gesture.
Screenshots go to tests/e2e/artifacts/ (look at them). Run by CI (which installs Debian's chromium); see
conftest.py for when it skips.
"""

from __future__ import annotations

import json

import pytest

from .conftest import ARTIFACTS, Lab
from .editor_page import EditorPage

pytestmark = pytest.mark.slow

ASSET = "shapes_010"


def test_editor_end_to_end(nb: Lab) -> None:
    """Box drawn, polygon vertex dragged, region deleted by key, wheel zoom: each lands in the kernel's frame."""
    nb.show(f"anns = conn.assets('shapes').annot.load()\nw = anns.annot.edit({ASSET!r})\nn0 = len(anns)")
    nb.wait("w.state.asset", ASSET, timeout=60)
    ed = EditorPage(nb)
    page = nb.page
    timings: dict[str, float] = {}
    width, height = ed.size

    # 1. draw a box with the box tool (key "b" once the canvas has the focus)
    ed.focus()
    ed.key("b")
    nb.wait("w.state.tool", "box")
    page.mouse.move(*ed.at(60, 300))
    page.mouse.down()
    page.mouse.move(*ed.at(160, 380), steps=8)
    page.mouse.up()
    timings["mouse_up_to_new_row_s"] = nb.wait("len(anns) - n0", 1)
    new = json.loads(nb.value("anns.iloc[-1][['kind', 'x0', 'x1']].to_json()").strip("'"))
    assert new["kind"] == "box" and 0 <= new["x0"] < new["x1"] <= 1

    # 2. drag the first vertex of the star polygon by 20 canvas pixels
    ed.key("v")
    nb.wait("w.state.tool", "select")
    pid = ed.stack[2]
    vx, vy = nb.eval(f"tuple(w.state.regions[{pid!r}].points[0][:2])")
    page.mouse.click(*ed.centre_of(pid))  # select the star (the polygon is on top of its boxes)
    nb.wait("w.state.selection", pid)
    before = nb.value(f"w.state.regions[{pid!r}].points[0][:2]")
    px, py = ed.image(vx, vy)
    page.mouse.move(px, py)
    page.mouse.down()
    scale = float(nb.eval("float(w.state.viewport.scale)"))
    k = ed.box()["width"] / width
    page.mouse.move(px + 20 * k, py + 10 * k, steps=6)
    page.mouse.up()
    nb.wait(f"w.state.regions[{pid!r}].points[0][:2] != {before}", True)
    moved = nb.eval(f"tuple(w.state.regions[{pid!r}].points[0][:2])")
    assert moved == pytest.approx((vx + 20 / scale, vy + 10 / scale), abs=1.5 / scale)
    nb.shot("editor_after_vertex_drag")

    # 3. select the circle's box and delete it with the Delete key
    page.mouse.click(*ed.centre_of(ed.circle))
    nb.wait("w.state.selection", ed.circle)
    ed.key("Delete")
    nb.wait(f"bool(anns.set_index('id').loc[{ed.circle!r}, 'deleted'])", True)

    # 4. the wheel zooms about the mouse
    zoom0 = float(nb.eval("float(w.state.viewport.scale)"))
    page.mouse.move(*ed.at(width / 2, height / 2))
    page.mouse.wheel(0, -400)
    nb.wait(f"w.state.viewport.scale > {zoom0}", True)

    # the frame's diff holds exactly these edits
    summary = nb.eval("anns.annot.diff().summary()")
    assert "1 added" in summary and "1 modified" in summary and "1 deleted" in summary, summary
    nb.shot("editor_end")
    nb.shot("editor_canvas_end", ed.canvas)
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings))
    print("\nE2E TIMINGS " + json.dumps(timings))
