"""Issue 16: text is text in every rich output, in a real JupyterLab in headless Chromium.

A dataset whose labels, asset, dataset and attribute names are script payloads is read from a COCO file (its stem is
the dataset), imported into the store, loaded, edited and pushed (dry run); the notebook shows the ImportReport, the
Changeset, the PushReport, the frame itself and its summary, then the editor and the gallery. Chromium clicks every
region of the editor and every picture of the gallery. No payload may run: ``window.__xss`` stays unset and no
dialog opens, while the payload's text is on the page (it was shown, as text).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Lab
from .editor_page import EditorPage

pytestmark = pytest.mark.slow

PAYLOAD = "<img src=x onerror=window.__xss=(window.__xss||0)+1>"

SETUP = f"""\
import json, pathlib
import pandas as pd
from PIL import Image
from IPython.display import display
P = {PAYLOAD!r}
root = pathlib.Path("xss-data"); root.mkdir(exist_ok=True)
Image.new("RGB", (64, 48), "white").save(root / (P + ".png"))
doc = {{"images": [{{"id": 1, "file_name": P + ".png", "width": 64, "height": 48}}],
       "annotations": [{{"id": i + 1, "image_id": 1, "category_id": 1 + i % 2, "bbox": [4 + 20 * i, 4, 16, 16],
                        "area": 256, "iscrowd": 0, "attributes": {{P: P}}}} for i in range(3)],
       "categories": [{{"id": 1, "name": P}}, {{"id": 2, "name": P + "2"}}]}}
path = root / (P + ".json")
path.write_text(json.dumps(doc))
xreport = conn.import_files([str(path)], dataset=P)
xanns = conn.assets(P).annot.load()
xanns.loc[xanns.index[0], "label"] = P + "3"
xanns = pd.concat([xanns, xanns.annot.new_box(xanns.asset.iloc[0], P, (0.5, 0.5, 0.9, 0.9), attributes={{P: P}})])
xchanges = xanns.annot.diff()"""
REPRS = """\
w = widgets.Output()
for shown in (xreport, xchanges, xanns.annot.push(dry_run=True), xanns, xanns.annot.summary()):
    w.append_display_data(shown)  # each as JupyterLab renders an output: its text/html"""


def _ran(nb: Lab) -> Any:
    return nb.page.evaluate("() => window.__xss === undefined ? 0 : window.__xss")


def _shown(nb: Lab) -> bool:
    return "onerror=window.__xss" in nb.page.inner_text("body")


@pytest.fixture
def xss(nb: Lab) -> Lab:
    dialogs: list[str] = []
    nb.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    nb.dialogs = dialogs  # type: ignore[attr-defined]
    nb.run(SETUP, timeout=120)
    return nb


def test_reports_diff_and_frame_run_no_script(xss: Lab) -> None:
    xss.show(REPRS)
    xss.page.wait_for_function("document.body.innerText.includes('onerror=window.__xss')", timeout=60_000)
    xss.page.wait_for_timeout(1000)  # an <img src=x> errors within milliseconds; give it every chance
    xss.shot("injection_reprs")
    assert _shown(xss), "the payload's text is not on the page: the outputs were not shown"
    assert _ran(xss) == 0 and not xss.dialogs  # type: ignore[attr-defined]
    assert "<img" not in xss.eval("xchanges._repr_html_()")


def test_editor_and_gallery_run_no_script_when_every_region_is_clicked(xss: Lab) -> None:
    xss.show("w = xanns.annot.edit()")
    ed = EditorPage(xss, "w")
    ids = ed.rows("f.asset == f.asset")
    assert len(ids) >= 4
    for rid in ids:  # every region: the side panel, the region list and the title show its label and attributes
        xss.page.mouse.click(*ed.centre_of(rid))
        xss.page.wait_for_timeout(200)
    xss.shot("injection_editor")
    shown_in_editor = _shown(xss)
    xss.show("w = xanns.annot.browse()")
    thumbs = xss.page.locator(".annotebook-gallery canvas.annotebook-thumb")
    thumbs.first.wait_for(state="visible", timeout=60_000)
    xss.page.wait_for_timeout(500)
    shown_in_gallery = _shown(xss)
    for i in range(thumbs.count()):  # every picture: a click opens the editor on it
        thumbs.nth(i).click()
        xss.page.wait_for_timeout(500)
    xss.page.wait_for_timeout(1000)
    xss.shot("injection_gallery")
    assert shown_in_editor and shown_in_gallery, "the payload's text is not on the page: the widgets did not show it"
    assert _ran(xss) == 0 and not xss.dialogs, f"a payload ran {_ran(xss)} time(s) in the editor or gallery"  # type: ignore[attr-defined]
