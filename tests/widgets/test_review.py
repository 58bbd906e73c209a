"""`review` and `gallery(findings=...)`: the editor walking findings, and the clickable grid of the worst ones."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook.qa import worklist
from annotebook.qa.review import Review
from annotebook.samples import make_predictions
from annotebook.widgets.gallery import FindingsGallery, thumbnail_jpeg

from .conftest import Clock, Front


@pytest.fixture
def shapes(samples: ab.Connection) -> tuple[pd.DataFrame, pd.DataFrame]:
    return samples.annotations("shapes"), samples.assets("shapes")


def test_review_walks_the_worklist_accepts_fixes_and_skips(shapes) -> None:
    anns, assets = shapes
    assets["status"] = "NotStarted"  # so that a status set is a change
    findings = anns.annot.qa()
    items = worklist(findings)
    review = anns.annot.review(findings, assets=assets, clock=Clock())
    _editor, state = review.editor, review.editor.state
    assert state.walk == items["asset"].tolist()
    assert f"1 / {len(items)}" in review._progress.value
    assert state.asset == items.asset[0] and state.selected().id == items.ids[0][0]
    assert review._reason.value.count("<li>") == len(items.details[0])

    review.accept_button.click()  # keep: the status is set, nothing else changes
    assert assets.set_index("asset").status[items.asset[0]] == "Completed"
    assert len(anns.annot.diff()) == 0
    assert state.asset == items.asset[1] and f"2 / {len(items)}" in review._progress.value

    region = state.selected()  # fix: move the finding's box, then "fix"
    x0, y0, x1, y1 = region.box
    state.commit(region, replace(region, box=(x0 + 10, y0 + 5, x1 + 10, y1 + 5)))
    review.fix_button.click()
    changes = anns.annot.diff()
    assert changes.modified.id.astype(str).tolist() == [region.id]
    assert assets.set_index("asset").status[items.asset[1]] == "Completed"

    before = assets.set_index("asset").status[items.asset[2]]
    review.skip_button.click()  # skip: no status, no edit
    assert assets.set_index("asset").status[items.asset[2]] == before
    assert review.decisions.decision.tolist() == ["accept", "fix", "skip"]
    assert review.decisions.id.tolist() == [items.ids[i][0] for i in range(3)]
    assert review.decisions.asset.tolist() == items.asset[:3].tolist()


def test_keys_in_the_canvas_decide(shapes) -> None:
    anns, assets = shapes
    findings = anns.annot.qa()
    review = anns.annot.review(findings, assets=assets, clock=Clock())
    front = Front(review.editor, Clock())
    front.key("c")
    front.key("e")
    front.key("s")
    front.key("s", ctrl=True)  # a modifier: not a decision
    assert review.decisions.decision.tolist() == ["accept", "fix", "skip"]
    for _ in range(len(review.items)):
        front.key("s")
    assert review.done and review.accept_button.disabled
    assert f"{len(review.items)} / {len(review.items)}" in review._progress.value
    assert len(review.decisions) == len(review.items)  # no decision past the end


def test_add_creates_the_proposed_box_of_a_missing_suspect(shapes) -> None:
    anns, assets = shapes
    suspects = anns.annot.mistakes(make_predictions())
    missing = suspects[suspects["id"].isna()]
    assert len(missing) >= 1
    review = Review(anns, suspects, assets=assets, status="Reviewed", clock=Clock())
    assert review.status == "Reviewed" and Review(anns, suspects, clock=Clock()).status == "Completed"
    target = str(missing.asset.iloc[0])
    while str(review.items.asset[review.position]) != target:
        assert review.add_button.layout.display == "none" or review._missing.get(review.editor.state.asset)
        review.skip_button.click()
    assert review.add_button.layout.display is None
    review.add_button.click()
    added = anns.annot.diff().added
    assert len(added) == len(missing[missing.asset == target])
    row = added.iloc[0]
    want = missing[missing.asset == target].iloc[0]
    assert row.label == want.label and row.asset == target
    assert np.allclose(row[["x0", "y0", "x1", "y1"]].astype(float), want[["x0", "y0", "x1", "y1"]].astype(float))
    assert review.editor.state.selected().id == str(row.id)
    review.accept_button.click()
    assert assets.set_index("asset").status[target] == "Reviewed"


def test_review_without_assets_sets_no_status_and_refuses_an_empty_table(shapes) -> None:
    anns, _assets = shapes
    findings = anns.annot.qa()
    review = anns.annot.review(findings, clock=Clock())
    review.accept_button.click()
    assert review.decisions.decision.tolist() == ["accept"]
    assert len(anns.annot.diff()) == 0
    with pytest.raises(ValueError, match="no findings"):
        anns.annot.review(findings.iloc[:0])
    with pytest.raises(ValueError, match="decision"):
        review.decide("maybe")


def test_reasons_are_escaped(shapes) -> None:
    anns, _assets = shapes
    findings = anns.annot.qa().iloc[:1].assign(detail="<img src=x onerror=alert(1)>")
    review = anns.annot.review(findings)
    assert "<img" not in review._reason.value and "&lt;img" in review._reason.value
    gallery = anns.annot.gallery(findings=findings)
    caption = gallery._grid.children[0].children[-1].value
    assert "<img" not in caption and "&lt;img" in caption


def test_findings_gallery_worst_first_highlights_and_opens_the_row(shapes) -> None:
    anns, _assets = shapes
    findings = anns.annot.qa()
    items = worklist(findings)
    gallery = anns.annot.gallery(findings=findings, n=4)
    assert isinstance(gallery, FindingsGallery)
    assert gallery.filtered() == items.asset.tolist()
    assert len(gallery._grid.children) == 4
    assert items.details[0][0] in gallery._grid.children[0].children[-1].value
    gallery._grid.children[1].children[1].click()
    editor = gallery.editor
    assert editor is not None and editor.state.asset == items.asset[1]
    assert editor.state.selected().id == items.ids[1][0]


def test_thumbnails_dim_others_and_dash_proposed_boxes(shapes) -> None:
    from PIL import Image

    anns, assets = shapes
    first = assets.iloc[0]
    rows = anns[anns["asset"] == first["asset"]]
    args = (rows, first["uri"], first["width"], first["height"])
    plain = np.asarray(Image.open(io.BytesIO(thumbnail_jpeg(*args, show_labels=False))), dtype=int)
    marked = np.asarray(
        Image.open(io.BytesIO(thumbnail_jpeg(*args, show_labels=False, highlight=[str(rows.id.iloc[0])]))), dtype=int
    )
    assert np.abs(plain - marked).max() > 60  # the other regions grey and thin, the finding's thick
    box = (0.1, 0.1, 0.5, 0.5)
    dashed = np.asarray(
        Image.open(io.BytesIO(thumbnail_jpeg(rows.iloc[:0], first["uri"], first["width"], first["height"],
                                             show_labels=False, proposed=[box]))),
        dtype=int,
    )  # fmt: skip
    bare = np.asarray(
        Image.open(io.BytesIO(thumbnail_jpeg(rows.iloc[:0], first["uri"], first["width"], first["height"]))), dtype=int
    )
    h, w = bare.shape[:2]
    y = int(0.1 * h)  # the top edge: dashes and gaps, across the box's width
    top = np.abs(dashed - bare)[y - 1 : y + 2, int(0.12 * w) : int(0.48 * w)].max(axis=(0, 2))
    assert (top > 60).sum() >= 10 and (top < 30).sum() >= 10


def test_gallery_of_suspects_shows_missing_assets(shapes) -> None:
    anns, _assets = shapes
    suspects = anns.annot.mistakes(make_predictions())
    gallery = anns.annot.gallery(findings=suspects, n=50)
    missing_asset = str(suspects[suspects["id"].isna()].asset.iloc[0])
    assert missing_asset in gallery.filtered()
    assert gallery.items.loc[missing_asset, "boxes"]
