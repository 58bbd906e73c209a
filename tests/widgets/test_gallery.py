"""The `Browser`: pages, filters, thumbnails with overlays, and opening the editor from a thumbnail."""

from __future__ import annotations

import io

import annotebook as ab
from annotebook.widgets.gallery import Browser, thumbnail_jpeg

from .conftest import hand_tables


def test_pages_and_filters(anns) -> None:
    browser = anns.annot.browse(per_page=2)
    assert browser.filtered() == ["a0", "a1", "a2"]
    assert len(browser._grid.children) == 2 and "page 1 / 2" in browser._where.value
    browser._next.click()
    assert browser.page == 1 and len(browser._grid.children) == 1
    browser._next.click()
    assert browser.page == 1  # clipped
    browser._kind.value = "keypoints"
    assert browser.filtered() == ["a1"] and browser.page == 0
    browser._kind.value = "(all)"
    browser._label.value = "tri"
    assert browser.filtered() == ["a0"]


def test_click_opens_the_editor_on_the_filtered_walk(anns) -> None:
    browser = Browser(anns)
    browser._label.value = "cat"
    card = browser._grid.children[1]
    card.children[1].click()  # the asset's button
    editor = browser.editor
    assert editor is not None and editor.frame is anns
    assert editor.state.asset == "a1" and editor.state.walk == ["a0", "a1", "a2"]
    editor.state.delete(next(iter(editor.state.regions)))
    browser.close_editor()
    assert browser.editor is None and len(anns.annot.diff().deleted) == 1


def test_thumbnails_draw_regions_on_the_image(samples: ab.Connection) -> None:
    from PIL import Image

    anns = samples.annotations("shapes")
    assets = samples.assets("shapes")
    browser = anns.annot.browse(per_page=4, side=120)
    assert len(browser._grid.children) == 4
    first = assets.iloc[0]
    rows = anns[anns["asset"] == first["asset"]]
    plain = Image.open(io.BytesIO(thumbnail_jpeg(rows.iloc[:0], first["uri"], first["width"], first["height"])))
    drawn = Image.open(io.BytesIO(thumbnail_jpeg(rows, first["uri"], first["width"], first["height"])))
    assert max(plain.size) == 200 and plain.size == drawn.size
    assert plain.tobytes() != drawn.tobytes()


def test_a_missing_image_gets_a_grey_tile() -> None:
    _, anns, _ = hand_tables()
    tile = image_of(thumbnail_jpeg(anns[anns["asset"] == "a"], None, 300, 200, side=60))
    assert tile.size == (60, 40)


def image_of(data: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(data))


def test_thumbnail_click_opens_the_editor_in_place_and_filters_refresh(anns) -> None:
    browser = Browser(anns)
    thumb = browser._grid.children[2].children[0]
    msg = {"content": {"data": {"method": "custom", "content": {"event": "mouse_down", "x": 5, "y": 5}}}, "buffers": []}
    thumb.comm.handle_msg(msg)  # a click on the picture itself
    editor = browser.editor
    assert editor is not None and editor.state.asset == "a2"
    assert browser._grid.layout.display == "none"  # the editor takes the grid's place: in view
    editor.state.pick_label("zebra")
    editor.state.confirm_label()
    editor.state.tool = "box"
    from annotebook.widgets import tools

    tools.press(editor.state, 10, 10)
    tools.move(editor.state, 60, 60)
    tools.release(editor.state, 80, 80)
    browser.close_editor()
    assert browser._grid.layout.display is None
    assert "zebra" in browser._label.options  # the label filter follows the frame


def test_legend_and_label_names_on_thumbnails(samples: ab.Connection) -> None:
    from PIL import Image

    anns = samples.annotations("shapes")
    browser = anns.annot.browse(per_page=4)
    assert "annotebook-legend" in browser._legend.value and "circle" in browser._legend.value
    first = samples.assets("shapes").iloc[0]
    rows = anns[anns["asset"] == first["asset"]]
    named = Image.open(io.BytesIO(thumbnail_jpeg(rows, first["uri"], first["width"], first["height"])))
    bare_jpeg = thumbnail_jpeg(rows, first["uri"], first["width"], first["height"], show_labels=False)
    bare = Image.open(io.BytesIO(bare_jpeg))
    assert named.tobytes() != bare.tobytes()


def test_legend_escapes_label_names() -> None:
    _, anns, labels = hand_tables()
    anns.loc[anns["id"] == "box", "label"] = "<img src=x onerror=alert(1)>"
    browser = Browser(anns, labels=labels)
    assert "<img" not in browser._legend.value and "&lt;img" in browser._legend.value
