"""Issue 16: text is text in every rich output, in a real JupyterLab in headless Chromium.

A dataset whose labels, asset, dataset and attribute names are script payloads is read from a COCO file (its stem is
the dataset), imported into the store, loaded, edited and pushed (dry run); the notebook shows the ImportReport, the
Changeset, the PushReport, the frame itself, the editor and the gallery. Chromium then clicks every region of the
editor and every picture of the gallery. No payload may run: ``window.__xss`` stays unset and no dialog opens,
while the payload's text is on the page (it was shown, as text).
"""

from __future__ import annotations

import ast
import time
from typing import Any

import nbformat
import pytest

from .conftest import ARTIFACTS, kernel_eval
from .test_editor_browser import _client, _open, _wait

pytestmark = pytest.mark.slow

PAYLOAD = "<img src=x onerror=window.__xss=(window.__xss||0)+1>"

SETUP = f"""\
import json, pathlib
import pandas as pd
from PIL import Image
import annotebook as ab
P = {PAYLOAD!r}
root = pathlib.Path("data"); root.mkdir(exist_ok=True)
Image.new("RGB", (64, 48), "white").save(root / (P + ".png"))
doc = {{"images": [{{"id": 1, "file_name": P + ".png", "width": 64, "height": 48}}],
       "annotations": [{{"id": i + 1, "image_id": 1, "category_id": 1 + i % 2, "bbox": [4 + 20 * i, 4, 16, 16],
                        "area": 256, "iscrowd": 0, "attributes": {{P: P}}}} for i in range(3)],
       "categories": [{{"id": 1, "name": P}}, {{"id": 2, "name": P + "2"}}]}}
path = root / (P + ".json")
path.write_text(json.dumps(doc))
conn = ab.connect()
report = conn.import_files([str(path)], dataset=P)
report"""
REPRS = """\
anns = conn.assets(P).annot.load()
anns.loc[anns.index[0], "label"] = P + "3"
anns = pd.concat([anns, anns.annot.new_box(anns.asset.iloc[0], P, (0.5, 0.5, 0.9, 0.9), attributes={P: P})])
changes = anns.annot.diff()
changes"""
CELLS = [SETUP, REPRS, "anns.annot.push(dry_run=True)", "anns", "anns.annot.summary()"]
WIDGETS = ["editor = anns.annot.edit()\neditor", "browser = anns.annot.browse()\nbrowser"]


def _notebook(path: Any, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _ran(page: Any) -> Any:
    return page.evaluate("() => window.__xss === undefined ? 0 : window.__xss")


def _shown(page: Any) -> bool:
    return "onerror=window.__xss" in page.inner_text("body")


def _settle(page: Any, kc: Any, n_cells: int) -> None:
    _wait(kc, "'changes' in dir()", "True", timeout=120)
    page.wait_for_function(
        f"document.querySelectorAll('.jp-Cell .jp-InputArea-prompt').length >= {n_cells}"
        " && [...document.querySelectorAll('.jp-InputArea-prompt')].every(p => !p.textContent.includes('*'))",
        timeout=120_000,
    )
    time.sleep(1.0)  # an <img src=x> errors within milliseconds; give it every chance


def test_reports_diff_and_frame_run_no_script(lab: dict[str, Any], page: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _notebook(lab["root"] / "edit.ipynb", CELLS)
    kc = _client(lab, _open(page, lab))
    try:
        _settle(page, kc, len(CELLS))
        page.screenshot(path=str(ARTIFACTS / "injection_reprs.png"), full_page=True)
        assert _shown(page), "the payload's text is not on the page: the outputs were not shown"
        assert _ran(page) == 0 and not dialogs
        html = ast.literal_eval(kernel_eval(kc, "changes._repr_html_()"))
        assert "<img" not in html
    finally:
        kc.stop_channels()


def test_editor_and_gallery_run_no_script_when_every_region_is_clicked(lab: dict[str, Any], page: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _notebook(lab["root"] / "edit.ipynb", [SETUP, REPRS, *WIDGETS])
    kc = _client(lab, _open(page, lab))
    try:
        _settle(page, kc, 4)
        _wait(kc, "'browser' in dir()", "True", timeout=120)
        canvas = page.locator(".jp-OutputArea-output canvas").first
        canvas.wait_for(state="visible", timeout=60_000)
        canvas.scroll_into_view_if_needed()
        bb = canvas.bounding_box()
        width, height = ast.literal_eval(kernel_eval(kc, "tuple(editor.state.canvas_size)"))
        ids = ast.literal_eval(kernel_eval(kc, "list(editor.state.regions)"))
        assert len(ids) >= 4
        centre = (
            "lambda r: tuple(map(float, editor.state.viewport.to_canvas("
            "(anns.set_index('id').loc[r, 'x0'] + anns.set_index('id').loc[r, 'x1']) / 2 * editor.state.info.width, "
            "(anns.set_index('id').loc[r, 'y0'] + anns.set_index('id').loc[r, 'y1']) / 2 * editor.state.info.height)))"
        )
        for rid in ids:  # click every region: the side panel and the region title show its label and attributes
            cx, cy = ast.literal_eval(kernel_eval(kc, f"({centre})({rid!r})"))
            page.mouse.click(bb["x"] + cx * bb["width"] / width, bb["y"] + cy * bb["height"] / height)
            time.sleep(0.3)
        pictures = page.locator(".jp-OutputArea-output img, .jp-OutputArea-output .widget-image")
        for i in range(pictures.count()):  # every picture of the gallery
            pictures.nth(i).click(force=True)
            time.sleep(0.3)
        time.sleep(1.0)
        page.screenshot(path=str(ARTIFACTS / "injection_widgets.png"), full_page=True)
        assert _shown(page), "the payload's text is not on the page: the widgets did not show it"
        assert _ran(page) == 0 and not dialogs, f"a payload ran {_ran(page)} time(s) in the editor or gallery"
    finally:
        kc.stop_channels()
