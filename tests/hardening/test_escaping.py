"""Issue 16: text is text in every rich output outside the widgets (diff, push report, transfer reports)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import annotebook as ab

PAYLOAD = "<img src=x onerror=alert(1)>"


def _store(tmp_path: Path) -> ab.Connection:
    conn = ab.connect("local", path=str(tmp_path / "store"))
    assets = ab.assets_frame([{"dataset": PAYLOAD, "asset": PAYLOAD, "name": PAYLOAD, "width": 10, "height": 10}])
    anns = ab.annotations_frame(
        [{"dataset": PAYLOAD, "asset": PAYLOAD, "label": PAYLOAD, "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1,
          "attributes": {PAYLOAD: PAYLOAD}}]
    )  # fmt: skip
    conn.backend.write_dataset(PAYLOAD, assets, anns)  # type: ignore[attr-defined]
    return conn


def test_changeset_and_push_report_html_escape_every_text(tmp_path: Path) -> None:
    conn = _store(tmp_path)
    anns = conn.assets(PAYLOAD).annot.load()
    anns.loc[:, "label"] = PAYLOAD + "2"
    anns = pd.concat([anns, anns.annot.new_box(PAYLOAD, PAYLOAD, (0.1, 0.1, 0.2, 0.2))])
    changes = anns.annot.diff()
    html = changes._repr_html_()
    assert PAYLOAD not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    report = anns.annot.push(dry_run=True)
    assert "<img" not in report._repr_html_()
