"""Issue 17 in a real JupyterLab and Chromium: each trap a new user met, driven with a real mouse and keyboard,
and what the kernel's DataFrame holds afterwards. Screenshots go to tests/e2e/artifacts/ (after_*.png).

Asset shapes_010 of the sample holds a circle, a square, a triangle whose box is labelled "square", and a star
whose box is there twice: the polygon and the two boxes are stacked on one spot.
"""

from __future__ import annotations

import pytest

from .conftest import Lab
from .editor_page import EditorPage

pytestmark = pytest.mark.slow

ASSET = "shapes_010"
OPEN = f"anns = conn.assets('shapes').annot.load()\nw = anns.annot.edit({ASSET!r})"


@pytest.fixture
def ed(nb: Lab) -> EditorPage:
    nb.show(OPEN)
    nb.wait("w.state.asset", ASSET, timeout=60)
    return EditorPage(nb)


def test_layout_help_cursor_and_size(nb: Lab, ed: EditorPage) -> None:
    """The side panel stays beside the canvas with the file browser open; the canvas fits the cell; "?" shows
    every shortcut; the cursor follows the tool; edit(width=, height=) sets the canvas's pixels."""
    page = nb.page
    assert page.locator(".jp-FileBrowser").first.is_visible()  # the file browser is open (the case)
    canvas, right = ed.box(), ed.root.locator(".annotebook-list").last.bounding_box()
    cell = page.locator(".jp-OutputArea-output").last.bounding_box()
    assert right is not None and cell is not None
    assert right["x"] >= canvas["x"] + canvas["width"] - 1 and right["y"] < canvas["y"] + canvas["height"]
    assert canvas["x"] + canvas["width"] <= cell["x"] + cell["width"] + 1
    assert right["x"] + right["width"] <= cell["x"] + cell["width"] + 1  # nothing overflows the cell
    long_tag = "AssetRow('', 'tag', 'a-rather-long-tag-name-for-the-panel', True)"
    nb.run(f"from annotebook.widgets.regions import AssetRow\nw.run(lambda: w.state.add({long_tag}))")
    tag = ed.root.locator(".widget-checkbox", has_text="a-rather-long-tag-name").first
    tag.wait_for(state="visible")
    panel = ed.root.locator(".annotebook-list").last.bounding_box()  # the right column's region list
    tag_box = tag.bounding_box()
    assert panel is not None and tag_box is not None
    assert tag_box["x"] + tag_box["width"] <= right["x"] + right["width"] + 40  # the tag row stays in the column
    nb.shot("after_editor")
    ed.focus()
    assert ed.canvas.evaluate("c => getComputedStyle(c).cursor") == "default"
    ed.key("b")
    nb.wait("w.state.tool", "box")
    page.wait_for_function("c => getComputedStyle(c).cursor === 'crosshair'", arg=ed.canvas.element_handle())
    ed.key("h")
    page.wait_for_function("c => getComputedStyle(c).cursor === 'grab'", arg=ed.canvas.element_handle())
    ed.key("?")
    overlay = ed.root.locator(".annotebook-help")
    overlay.wait_for(state="visible")
    text = overlay.inner_text()
    for keys in ("Ctrl+Z / Ctrl+Y", "1-9, 0", "Tab", "Del / Backspace", "n / p"):
        assert keys in text
    nb.shot("after_editor_help")
    ed.key("?")
    overlay.wait_for(state="hidden")
    nb.show(f"w = anns.annot.edit({ASSET!r}, width=480, height=320)")
    small = EditorPage(nb)
    assert small.canvas.evaluate("c => [c.width, c.height]") == [480, 320]
    assert small.box()["width"] <= 481


def test_label_list_and_the_selected_regions_label(nb: Lab, ed: EditorPage) -> None:
    """A digit picks the next shape's label; the panel shows the selected region's own label; a new name
    waits for a yes; a digit pressed after drawing leaves the new shape's label alone."""
    page = nb.page
    ed.focus()
    ed.key("4")  # next shape: star
    nb.wait("w.state.label", "star")
    page.mouse.click(*ed.centre_of(ed.circle))  # the circle
    nb.wait("w.state.selection", ed.circle)
    label_box = ed.root.locator(".annotebook-region-label input")
    label_box.wait_for(state="visible")
    assert label_box.input_value() == "circle"  # the selection's label, not the next shape's
    assert "next shape: star" in ed.root.locator(".annotebook-where").inner_text()
    badges = ed.root.locator(".annotebook-list button").all_inner_texts()
    assert any(t.strip().startswith("1") and "circle" in t for t in badges)
    label_box.fill("triangel")
    label_box.press("Enter")
    confirm = ed.root.locator(".annotebook-confirm")
    confirm.wait_for(state="visible")
    assert "triangel" in confirm.inner_text() and "not a label yet" in confirm.inner_text()
    assert ed.field(ed.circle, "label") == "circle"  # nothing changed yet
    nb.shot("after_new_label_confirm")
    ed.root.get_by_role("button", name="use 'triangle'").click()
    nb.wait(f"w.frame.set_index('id').loc[{ed.circle!r}, 'label']", "triangle")
    assert nb.eval("'triangel' in w.state.labels.names") is False

    ed.focus()
    ed.key("Escape")
    ed.key("l")  # polyline
    nb.wait("w.state.tool", "polyline")
    for cx, cy in ((40, 200), (140, 260), (200, 220)):
        page.mouse.click(*ed.at(cx, cy))
    ed.key("Enter")
    new = nb.wait_for_value("w.state.selection", lambda v: v not in (None, ed.circle))
    assert ed.field(new, "label") == "star"
    ed.key("5")  # star-tips for the next shape: the polyline just drawn keeps "star"
    nb.wait("w.state.label", "star-tips")
    assert ed.field(new, "label") == "star"
    ed.key("a")  # explicit: now it is relabelled
    nb.wait(f"w.frame.set_index('id').loc[{new!r}, 'label']", "star-tips")

    ed.key("Escape")
    ed.key("k")  # keypoints of "star-tips": the hint names the next point on a dark plate, readable on any image
    nb.wait("w.state.tool", "keypoints")
    page.mouse.click(*ed.at(80, 420))
    page.mouse.move(*ed.at(88, 428), steps=3)
    nb.wait("getattr(w.state.gesture, 'pointer', None) is not None", True)
    x0, y0 = ed.at(100, 440)
    x1, y1 = ed.at(220, 456)
    for _ in range(50):  # the overlay's redraw may still be on its way
        dark = _dark_pixels(page.screenshot(clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}))
        if dark > 150:
            break
        page.wait_for_timeout(100)
    assert dark > 150, f"the keypoint hint is hard to see ({dark} dark pixels)"
    nb.shot("after_keypoint_hint")
    ed.key("Escape")


def test_editing_traps(nb: Lab, ed: EditorPage) -> None:
    """A click on a selected polygon's edge adds nothing; a right click leaves no box; Ctrl+Z in a polygon takes
    back its last point; a box dragged past the image's edge stores exactly 0."""
    page = nb.page
    ed.focus()
    page.mouse.click(*ed.centre_of(ed.triangle))  # the triangle's polygon (above its box)
    nb.wait("w.state.selection", ed.triangle)
    tri = f"w.state.regions[{ed.triangle!r}]"
    pts = nb.eval(f"tuple({tri}.points[0][:4])")
    page.mouse.click(*ed.image((pts[0] + pts[2]) / 2, (pts[1] + pts[3]) / 2))  # a plain click on an edge
    page.wait_for_timeout(300)
    nb.wait("w.state.gesture is None", True)
    assert len(nb.eval(f"{tri}.points[0]")) == 6  # still a triangle
    assert nb.eval("len(w.state.undo_stack)") == 0 and nb.eval("len(anns.annot.diff())") == 0

    n0 = nb.eval("len(anns)")
    ed.key("b")
    nb.wait("w.state.tool", "box")
    page.mouse.click(*ed.at(300, 300), button="right")
    page.keyboard.press("Escape")  # closes JupyterLab's menu, if it opened
    page.mouse.click(*ed.at(330, 330))  # a later plain click
    page.mouse.move(*ed.at(360, 360))
    nb.wait("w.state.gesture is None", True)
    assert nb.eval("len(anns)") == n0  # no box from the right click, none from the click after it

    ed.focus()
    ed.key("v")
    page.mouse.click(*ed.centre_of(ed.circle))
    nb.wait("w.state.selection", ed.circle)
    ed.key("ArrowRight")  # an edit before the drawing
    nb.wait("len(w.state.undo_stack)", 1)
    ed.key("g")
    for cx, cy in ((50, 40), (150, 40), (150, 140)):
        page.mouse.click(*ed.at(cx, cy))
    nb.wait("len(getattr(w.state.gesture, 'points', ()))", 3)
    page.keyboard.press("Control+z")
    nb.wait("len(getattr(w.state.gesture, 'points', ()))", 2)
    assert nb.eval("len(w.state.undo_stack)") == 1  # the nudge is still there
    ed.key("Escape")

    ed.key("b")
    x0, y0 = ed.image(0, 0)
    page.mouse.move(x0 + 60, y0 + 60)
    page.mouse.down()
    page.mouse.move(x0 - 15, y0 - 15, steps=6)  # past the image's top-left corner, still on the canvas
    page.mouse.up()
    nb.wait("len(anns)", n0 + 1)
    assert nb.eval("(float(anns.iloc[-1].x0), float(anns.iloc[-1].y0))") == (0.0, 0.0)
    nb.shot("after_editing_traps")


def test_region_list_stacked_hide_lock_and_unpushed_count(nb: Lab, ed: EditorPage) -> None:
    """The region list reaches each of the three stacked star regions; hide and lock act on the canvas; the
    header counts the unpushed changes."""
    page = nb.page
    unpushed = ed.root.locator(".annotebook-unpushed")
    assert unpushed.inner_text() == "no unpushed changes"
    box, copy, poly = ed.stack
    for rid in ed.stack:  # the stacked ones: each reachable from its row
        ed.root.locator(f".annotebook-region-{rid} button").first.click()
        nb.wait("w.state.selection", rid)
    ed.root.locator(f".annotebook-region-{poly} button").nth(1).click()  # hide the star polygon
    nb.wait(f"{poly!r} in w.state.hidden_ids", True)
    ed.root.locator(f".annotebook-region-{copy} button").nth(2).click()  # lock the duplicate box
    nb.wait(f"{copy!r} in w.state.locked", True)
    page.mouse.click(*ed.centre_of(box))  # the click goes through both to the box beneath
    nb.wait("w.state.selection", box)
    page.keyboard.press("Delete")
    nb.wait(f"bool(anns.set_index('id').loc[{box!r}, 'deleted'])", True)
    page.wait_for_function(  # the span is rewritten on each change: look it up each time
        "() => [...document.querySelectorAll('.annotebook-unpushed')].some(e => e.innerText === '1 unpushed change')",
        timeout=10_000,
    )
    nb.shot("after_region_list")
    ed.root.locator(f".annotebook-region-{copy} button").first.click()
    nb.wait("w.state.selection", copy)
    ed.canvas.focus()
    page.keyboard.press("Delete")
    message = ed.root.locator("span.annotebook-error")
    message.wait_for(state="visible")
    assert "is locked" in message.inner_text()
    assert nb.eval(f"bool(anns.set_index('id').loc[{copy!r}, 'deleted'])") is False


def test_busy_sign_while_the_kernel_runs_a_cell(nb: Lab, ed: EditorPage) -> None:
    """While another cell runs, the header says the kernel is busy (clicks wait); it goes when the kernel does."""
    busy = ed.root.locator(".annotebook-busy")
    assert not busy.is_visible()
    msg_id = nb.kc.execute("import time; time.sleep(4)", silent=False)
    busy.wait_for(state="visible", timeout=10_000)
    nb.shot("after_busy")
    reply = nb.kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = nb.kc.get_shell_msg(timeout=30)
    busy.wait_for(state="hidden", timeout=10_000)


def test_dark_theme_text_is_light(nb: Lab, ed: EditorPage) -> None:
    """In JupyterLab Dark the editor's text takes the theme's colours (no grey on near-black)."""
    page = nb.page
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    try:
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        rgb = ed.root.locator(".annotebook-where").evaluate("e => getComputedStyle(e).color")
        r, g, b = (int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 150, rgb  # light text on the dark theme
        nb.shot("after_editor_dark")
    finally:
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
        page.wait_for_function("document.body.dataset.jpThemeLight === 'true'", timeout=30_000)


def _dark_pixels(png: bytes) -> int:
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    return int(((rgb @ [0.2126, 0.7152, 0.0722]) < 70).sum())
