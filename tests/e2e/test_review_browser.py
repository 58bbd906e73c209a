"""The review queue in a real JupyterLab: accept one finding by its button, fix one by dragging its box with the
mouse, skip one by its key; the frame's diff, the statuses and the progress text follow."""

from __future__ import annotations

import pytest

from .conftest import Lab
from .editor_page import EditorPage

pytestmark = pytest.mark.slow


def test_review_accept_fix_skip(nb: Lab) -> None:
    page = nb.page
    nb.show(
        "anns = conn.assets('shapes').annot.load()\nrassets = conn.assets('shapes')\nrassets['status'] = 'NotStarted'\n"
        "findings = anns.annot.qa()\nr = anns.annot.review(findings, assets=rassets)\nw = r.editor"
    )
    total = nb.eval("len(r.items)")
    first, second, third = nb.eval("r.items.asset[:3].tolist()")
    progress = page.locator(".annotebook-review-progress").last
    progress.wait_for(state="visible", timeout=60_000)
    assert progress.inner_text().strip() == f"1 / {total}"
    reason = page.locator(".annotebook-review-reason").last
    assert nb.eval("r.items.details[0][0]") in reason.inner_text()
    ed = EditorPage(nb)
    nb.wait("w.state.asset", first, timeout=30)

    # 1. accept: the button in the header
    page.locator(".annotebook-review-accept").last.click()
    nb.wait("r.position", 1, timeout=30)
    nb.wait("w.state.asset", second, timeout=30)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('.annotebook-review-progress')].pop().innerText.trim() === '2 / {total}'"
    )

    # 2. fix: drag the selected finding's box by 40 canvas pixels with the mouse, then "fix"
    target = nb.eval("w.state.selected().id")
    before = nb.eval(f"tuple(map(float, anns.set_index('id').loc[{target!r}, ['x0', 'y0']]))")
    ed.focus()
    ed.key("v")
    # a point inside the box near its lower right corner: the star polygon and the duplicate lie elsewhere
    x0, y0, x1, y1 = nb.eval(f"tuple(map(float, anns.set_index('id').loc[{target!r}, ['x0', 'y0', 'x1', 'y1']]))")
    w, h = nb.eval("(w.state.info.width, w.state.info.height)")
    cx, cy = ed.image((x0 + 0.82 * (x1 - x0)) * w, (y0 + 0.82 * (y1 - y0)) * h)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 40, cy + 25, steps=8)
    page.mouse.up()
    nb.wait("len(anns.annot.diff().modified)", 1, timeout=30)
    moved = nb.eval("anns.annot.diff().modified.id.astype(str).tolist()")
    assert moved == [target]
    after = nb.eval(f"tuple(map(float, anns.set_index('id').loc[{target!r}, ['x0', 'y0']]))")
    assert after[0] > before[0] and after[1] > before[1]
    nb.shot("review_fixing")
    page.locator(".annotebook-review-fix").last.click()
    nb.wait("r.position", 2, timeout=30)

    # 3. skip: the key "s" in the canvas
    ed.focus()
    ed.key("s")
    nb.wait("r.position", 3, timeout=30)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('.annotebook-review-progress')].pop().innerText.trim() === '4 / {total}'"
    )
    assert nb.eval("r.decisions.decision.astype(str).tolist()") == ["accept", "fix", "skip"]
    assert nb.eval("r.decisions.asset.tolist()") == [first, second, third]
    statuses = nb.eval(f"rassets.set_index('asset').status[[{first!r}, {second!r}]].tolist()")
    assert statuses == ["Completed", "Completed"]
    changes = nb.eval("(len(anns.annot.diff().added), len(anns.annot.diff().modified), len(anns.annot.diff().deleted))")
    assert changes == (0, 1, 0)
    nb.shot("review_after_skip")
