"""The gallery in a real JupyterLab: thumbnails carry label names and a legend, a click on a picture opens the
editor where the user is looking, and "back to the gallery" shows the grid again with filters that follow edits."""

from __future__ import annotations

import pytest

from .conftest import Lab
from .editor_page import EditorPage

pytestmark = pytest.mark.slow


def test_gallery_click_opens_the_editor_in_view(nb: Lab) -> None:
    page = nb.page
    nb.show("anns = conn.assets('shapes').annot.load()\nw = anns.annot.browse(per_page=12)")
    thumbs = page.locator(".annotebook-gallery canvas.annotebook-thumb")
    thumbs.nth(11).wait_for(state="visible", timeout=60_000)
    legend = page.locator(".annotebook-legend")
    for name in ("circle", "square", "triangle", "star"):
        assert name in legend.inner_text()
    page.wait_for_timeout(500)  # the thumbnails' images are drawn once their bytes arrive
    nb.shot("after_gallery")
    last = thumbs.nth(10)
    last.scroll_into_view_if_needed()
    last.click()  # the picture itself, not its caption
    nb.wait("w.editor is not None and w.editor.state.asset", "shapes_010", timeout=30)
    ed = EditorPage(nb, "w.editor")
    bb, view = ed.box(), page.viewport_size
    assert bb["y"] < view["height"] and bb["y"] + bb["height"] / 2 > 0, bb  # the editor is on screen
    nb.shot("after_gallery_editor")
    nb.run("w.editor.state.pick_label('rhombus'); w.editor.state.confirm_label()")
    nb.run("w.editor.state.select(next(iter(w.editor.state.regions))); w.editor.state.assign_label('rhombus')")
    page.get_by_role("button", name="back to the gallery").click()
    thumbs.first.wait_for(state="visible", timeout=30_000)
    nb.wait("'rhombus' in w._label.options", True)
    options = page.locator(".annotebook-gallery select").first.locator("option").all_inner_texts()
    assert "rhombus" in options
