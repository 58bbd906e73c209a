"""Static pictures: asserted on the artists drawn (patches, lines, texts, images), never on pixels."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import httpx
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath
from PIL import Image

from annotebook import render, samples, schema

ROOT = Path(__file__).resolve().parents[1]
REGION_KINDS = ["box", "polygon", "polyline", "grounding"]


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return samples.make_shapes(tmp_path_factory.mktemp("shapes"), n_assets=12)


def _png(path: Path, size: tuple[int, int] = (100, 80)) -> str:
    Image.new("RGB", size, (200, 210, 220)).save(path)
    return str(path)


def _tables(uri: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One 100 x 80 asset with a row of every kind, one deleted box, and a labels table."""
    assets = schema.assets_frame(
        [{"dataset": "d", "asset": "a", "name": "a.png", "width": 100, "height": 80, "uri": uri}]
    )
    rows = [
        {"id": "box", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.3, "y1": 0.4},
        {
            "id": "rot",
            "label": "dog",
            "kind": "box",
            "x0": 0.4,
            "y0": 0.4,
            "x1": 0.6,
            "y1": 0.5,
            "rotation": 90.0,
        },
        {
            "id": "gone",
            "label": "cat",
            "kind": "box",
            "x0": 0.5,
            "y0": 0.5,
            "x1": 0.9,
            "y1": 0.9,
            "deleted": True,
        },
        {
            "id": "ring",
            "label": "donut",
            "kind": "polygon",
            "points": [[0.5, 0.1, 0.9, 0.1, 0.9, 0.4, 0.5, 0.4], [0.6, 0.2, 0.8, 0.2, 0.7, 0.3]],
        },
        {"id": "road", "label": "road", "kind": "polyline", "points": [[0.0, 0.9, 0.5, 0.8, 1.0, 0.9]]},
        {
            "id": "kp",
            "label": "person",
            "kind": "keypoints",
            "points": [[0.1, 0.6, 0.2, 0.6, 0.3, 0.6, float("nan"), float("nan")]],
            "visibility": [2, 1, 0, 0],
        },
        {"id": "tag1", "label": "daytime", "kind": "tag", "value": True},
        {"id": "tag2", "label": "indoor", "kind": "tag", "value": False},
        {"id": "cap", "kind": "caption", "text": "a cat near a dog"},
        {
            "id": "gr",
            "kind": "grounding",
            "text": "a dog",
            "parent": "cap",
            "span_start": 11,
            "span_end": 16,
            "x0": 0.35,
            "y0": 0.35,
            "x1": 0.65,
            "y1": 0.55,
        },
        {"id": "qa", "kind": "qa", "text": "how many animals?", "answer": "two"},
        {
            "id": "other",
            "asset": "b",
            "label": "cat",
            "kind": "box",
            "x0": 0.1,
            "y0": 0.1,
            "x1": 0.2,
            "y1": 0.2,
        },
    ]
    anns = schema.annotations_frame([{"dataset": "d", "asset": "a", **r} for r in rows])
    labels = schema.labels_frame(
        [
            {"dataset": "d", "name": "cat", "index": 0, "color": "#112233"},
            {
                "dataset": "d",
                "name": "person",
                "index": 1,
                "color": "#445566",
                "keypoints": ("a", "b", "c", "d"),
                "skeleton": ((0, 1), (1, 2), (2, 3)),
            },
        ]
    )
    return assets, anns, labels


def _gids(ax: Axes) -> set[str]:
    artists = [*ax.patches, *ax.lines, *ax.collections, *ax.texts]
    return {a.get_gid() for a in artists if a.get_gid() is not None}


# ----------------------------------------------------------------------------------------------------
# label_color and load_image


def test_label_color_uses_the_labels_table_else_a_stable_hash() -> None:
    _, _, labels = _tables()
    assert render.label_color("cat", labels) == "#112233"
    derived = render.label_color("dog", labels)
    assert derived == render.label_color("dog", labels) != "#112233"  # stable, and not a colour the table gives
    assert render.label_color("dog") == render.label_color("dog", None)  # no table: the hash's own colour
    assert len(derived) == 7 and derived.startswith("#") and int(derived[1:], 16) >= 0
    assert len({render.label_color(name) for name in ["a", "b", "c", "dog", "cat", "star"]}) == 6


@pytest.mark.slow
def test_label_color_is_the_same_in_another_process() -> None:
    names = ["dog", "sqare", "star-tips", "noise", "ünïcode"]
    here = [render.label_color(name) for name in names]
    code = f"from annotebook.render import label_color; print(' '.join(label_color(n) for n in {names!r}))"
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == here


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (60, 20), "red").save(tmp_path / "side.jpg", exif=exif.tobytes())
    image = render.load_image(str(tmp_path / "side.jpg"))
    assert image.size == (20, 60) and image.mode == "RGB"
    assert render.load_image((tmp_path / "side.jpg").as_uri()).size == (20, 60)


def test_load_image_converts_to_rgb(tmp_path: Path) -> None:
    Image.new("LA", (5, 4)).save(tmp_path / "grey.png")
    assert render.load_image(str(tmp_path / "grey.png")).mode == "RGB"
    with pytest.raises(FileNotFoundError):
        render.load_image(str(tmp_path / "missing.png"))


def test_matplotlib_and_pillow_are_imported_lazily() -> None:
    tree = ast.parse((ROOT / "annotebook" / "render.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
    assert not names & {"matplotlib", "PIL"}


# ----------------------------------------------------------------------------------------------------
# show_asset


def test_one_patch_per_live_region_row_and_gids_name_the_rows(tmp_path: Path) -> None:
    assets, anns, labels = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a", labels=labels)
    live = anns[(anns.asset == "a") & ~anns.deleted]
    assert len(ax.patches) == live.kind.isin(REGION_KINDS).sum() == 5
    assert {p.get_gid() for p in ax.patches} == set(live.loc[live.kind.isin(REGION_KINDS), "id"])
    assert _gids(ax) == {"box", "rot", "ring", "road", "kp", "gr"}
    assert len(ax.images) == 1 and ax.images[0].get_extent() == [0, 100, 80, 0]
    assert ax.get_title() == "a.png"


def test_deleted_rows_are_not_drawn(tmp_path: Path) -> None:
    assets, anns, _ = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a")
    assert "gone" not in _gids(ax)
    anns.loc[anns.id == "box", "deleted"] = True
    ax = render.show_asset(anns, assets, "a")
    assert "box" not in _gids(ax) and len(ax.patches) == 4


def test_regions_are_drawn_in_pixels_and_rotation_is_clockwise(tmp_path: Path) -> None:
    assets, anns, _ = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a")
    patches = {p.get_gid(): p for p in ax.patches}
    box = patches["box"]
    assert isinstance(box, Rectangle)
    np.testing.assert_allclose(box.get_corners(), [[10, 8], [30, 8], [30, 32], [10, 32]])
    # 20 x 8 px box centred at (50, 36), turned 90 degrees clockwise on screen (y down): its top-right corner
    # (+10, -4) from the centre goes to the bottom-right, (+4, +10)
    corners = patches["rot"].get_corners()
    np.testing.assert_allclose(corners.min(axis=0), [46, 26], atol=1e-9)
    np.testing.assert_allclose(corners.max(axis=0), [54, 46], atol=1e-9)
    np.testing.assert_allclose(corners[1], [54, 46], atol=1e-9)
    assert ax.get_ylim() == (80, 0)  # y down


def test_polygon_rings_polyline_and_grounding(tmp_path: Path) -> None:
    assets, anns, _ = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a")
    patches = {p.get_gid(): p for p in ax.patches}
    ring = patches["ring"]
    assert isinstance(ring, PathPatch)
    codes = ring.get_path().codes
    assert codes is not None and list(codes).count(MplPath.MOVETO) == 2 and list(codes).count(MplPath.CLOSEPOLY) == 2
    np.testing.assert_allclose(ring.get_path().vertices[0], [50, 8])
    road = patches["road"]
    assert road.get_facecolor()[3] == 0 and road.get_path().codes is not None
    assert MplPath.CLOSEPOLY not in list(road.get_path().codes)
    assert patches["gr"].get_linestyle() == "--"
    assert "a dog" in {t.get_text() for t in ax.texts}


def test_keypoints_skip_unlabelled_draw_occluded_hollow_and_follow_the_skeleton(tmp_path: Path) -> None:
    assets, anns, labels = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a", labels=labels)
    lines = [line for line in ax.lines if line.get_gid() == "kp"]
    filled = [line for line in lines if line.get_markerfacecolor() != "none"]
    hollow = [line for line in lines if line.get_markerfacecolor() == "none"]
    assert [len(line.get_xdata()) for line in filled] == [1] and [len(line.get_xdata()) for line in hollow] == [1]
    np.testing.assert_allclose(hollow[0].get_xydata(), [[20, 48]])
    skeleton = [c for c in ax.collections if c.get_gid() == "kp"]
    assert len(skeleton) == 1 and len(skeleton[0].get_segments()) == 1  # 0-1 only: 2 and 3 are not labelled
    no_skeleton = render.show_asset(anns, assets, "a")  # no labels table: points only
    assert not [c for c in no_skeleton.collections if c.get_gid() == "kp"]


def test_labels_tags_captions_and_questions_are_written(tmp_path: Path) -> None:
    assets, anns, labels = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a", labels=labels)
    texts = [t.get_text() for t in ax.texts]
    assert {"cat", "dog", "donut", "road", "person", "a dog"} <= set(texts)
    footer = render.footer_text(ax)
    assert footer.startswith("tags:") and "daytime" in footer and "not indoor" in footer
    assert "“a cat near a dog”" in footer and "Q: how many animals?" in footer and "A: two" in footer
    cat = next(t for t in ax.texts if t.get_text() == "cat")
    assert matplotlib.colors.to_hex(cat.get_bbox_patch().get_facecolor()) == "#112233"
    quiet = render.show_asset(anns, assets, "a", labels=labels, show_labels=False)
    assert not quiet.texts and render.footer_text(quiet) == footer


def test_a_caption_highlights_its_grounded_spans_even_when_shown_without_its_row(tmp_path: Path) -> None:
    from matplotlib.offsetbox import TextArea

    assets, anns, labels = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a", labels=labels)
    [box] = [a for a in ax.artists if a.get_gid() == "annotebook-footer"]
    areas = [t for row in box.get_child().get_children() for t in row.get_children() if isinstance(t, TextArea)]
    lit = [t for t in areas if t._text.get_bbox_patch() is not None]
    assert [t.get_text() for t in lit] == ["a dog"]  # the phrase's span [11, 16), on its colour
    phrases = anns[anns.kind == "grounding"]
    alone = render.show_asset(phrases, assets, "a", labels=labels, captions={"cap": "a cat near a dog"})
    assert render.footer_text(alone) == "“a cat near a dog”"
    assert render.footer_text(render.show_asset(phrases, assets, "a", labels=labels)) == ""


def test_colours_match_label_color(tmp_path: Path) -> None:
    assets, anns, labels = _tables(_png(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a", labels=labels)
    patches = {p.get_gid(): p for p in ax.patches}
    assert matplotlib.colors.to_hex(patches["box"].get_edgecolor()) == "#112233"
    assert matplotlib.colors.to_hex(patches["rot"].get_edgecolor()) == render.label_color("dog", labels)
    again = render.show_asset(anns, assets, "a", labels=labels)
    assert [matplotlib.colors.to_hex(p.get_edgecolor()) for p in again.patches] == [
        matplotlib.colors.to_hex(p.get_edgecolor()) for p in ax.patches
    ]


@pytest.mark.parametrize("uri", [None, "/no/such/image.png", "file:///no/such/image.png"])
def test_missing_image_gives_a_placeholder_of_the_asset_size(uri: str | None) -> None:
    assets, anns, _ = _tables(uri)
    ax = render.show_asset(anns, assets, "a")
    assert len(ax.images) == 1 and ax.images[0].get_extent() == [0, 100, 80, 0]
    assert np.asarray(ax.images[0].get_array()).shape[:2] == (1, 1)
    assert any(t.get_text() in ("no image", "cannot read image: FileNotFoundError") for t in ax.texts)
    assert len(ax.patches) == 5


def test_unreadable_file_gives_a_placeholder(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"not a png")
    assets, anns, _ = _tables(str(tmp_path / "a.png"))
    ax = render.show_asset(anns, assets, "a")
    assert any(t.get_text().startswith("cannot read image") for t in ax.texts)


def test_asset_missing_from_the_assets_table_is_drawn_normalised() -> None:
    assets, anns, _ = _tables()
    ax = render.show_asset(anns, assets, "b")
    assert ax.images[0].get_extent() == [0, 1, 1, 0]
    assert {p.get_gid() for p in ax.patches} == {"other"}


def test_a_given_image_is_stretched_to_the_asset_size() -> None:
    assets, anns, _ = _tables("/not/read.png")
    ax = render.show_asset(anns, assets, "a", image=Image.new("RGB", (50, 40)))
    assert ax.images[0].get_extent() == [0, 100, 80, 0]
    assert np.asarray(ax.images[0].get_array()).shape[:2] == (40, 50)
    assert not [t for t in ax.texts if "image" in t.get_text()]


def test_exif_sample_is_drawn_upright_at_its_displayed_size(shapes: tuple) -> None:
    assets, anns, labels = shapes
    row = assets[assets.name.str.endswith(".jpg")].iloc[0]
    ax = render.show_asset(anns, assets, row.asset, labels=labels)
    assert ax.images[0].get_extent() == [0, row.width, row.height, 0]
    assert np.asarray(ax.images[0].get_array()).shape[:2] == (row.height, row.width)
    spatial = anns[(anns.asset == row.asset) & anns.kind.isin(REGION_KINDS)]
    assert len(ax.patches) == len(spatial)


def test_show_asset_without_ax_uses_pyplot_and_with_ax_draws_there() -> None:
    assets, anns, _ = _tables()
    ax = render.show_asset(anns, assets, "a")
    assert isinstance(ax, Axes) and ax.figure.number in plt.get_fignums()
    fig = Figure()
    given = fig.add_subplot()
    assert render.show_asset(anns, assets, "a", ax=given) is given


# ----------------------------------------------------------------------------------------------------
# gallery, summary, plot_labels


def test_gallery_shows_the_first_n_assets_in_table_order(shapes: tuple) -> None:
    assets, anns, labels = shapes
    before = plt.get_fignums()
    fig = render.gallery(anns, assets, n=6, cols=4, labels=labels)
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # not kept by pyplot
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list(assets.name[:6])
    assert len(fig.axes) == 8
    again = render.gallery(anns, assets, n=6, cols=4, labels=labels)
    assert [len(ax.patches) for ax in again.axes] == [len(ax.patches) for ax in fig.axes]


def test_gallery_assets_follow_the_frame_or_the_subset(shapes: tuple) -> None:
    assets, anns, _ = shapes
    some = anns[anns.asset.isin(["shapes_004", "shapes_001"])]
    fig = render.gallery(some, assets)
    assert [ax.get_title() for ax in fig.axes] == ["shapes_001.png", "shapes_004.png"]
    fig = render.gallery(anns, assets, assets_subset=["shapes_007", "shapes_002"])
    assert [ax.get_title() for ax in fig.axes] == ["shapes_007.png", "shapes_002.png"]
    empty = render.gallery(anns.iloc[:0], assets, n=3)
    assert [ax.get_title() for ax in empty.axes] == list(assets.name[:3])


def test_gallery_thumbnails_keep_the_regions_in_asset_pixels(shapes: tuple) -> None:
    assets, anns, _ = shapes
    fig = render.gallery(anns, assets, n=1)
    ax = fig.axes[0]
    row = assets.iloc[0]
    assert ax.images[0].get_extent() == [0, row.width, row.height, 0]
    assert len(ax.patches) == (anns[anns.asset == row.asset].kind.isin(REGION_KINDS)).sum()


def test_summary_counts_live_rows_per_label_and_kind() -> None:
    _, anns, _ = _tables()
    table = render.summary(anns)
    assert list(table.columns) == ["label", "kind", "count", "assets"]
    cat = table[(table.label == "cat") & (table.kind == "box")].iloc[0]
    assert (cat["count"], cat["assets"]) == (2, 2)  # the deleted cat is left out
    assert table["count"].is_monotonic_decreasing
    assert table["count"].sum() == (~anns.deleted).sum()
    assert table.label.isna().sum() == 3  # caption, grounding and qa rows have no label


def test_plot_labels_has_one_bar_per_label_and_kind_coloured_by_label(shapes: tuple) -> None:
    _, anns, labels = shapes
    ax = render.plot_labels(anns, labels=labels)
    table = render.summary(anns)
    assert len(ax.patches) == len(table)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[0] == table.groupby("label")["count"].sum().idxmax()
    for bar in ax.patches:
        name = names[round(bar.get_y() + bar.get_height() / 2)]
        assert matplotlib.colors.to_hex(bar.get_facecolor()) == render.label_color(name, labels)
    totals = table.groupby("label")["count"].sum()
    for i, name in enumerate(names):
        assert sum(b.get_width() for b in ax.patches if round(b.get_y() + b.get_height() / 2) == i) == totals[name]


def test_plot_labels_leaves_out_deleted_rows_and_handles_empty_frames() -> None:
    _, anns, _ = _tables()
    ax = render.plot_labels(anns)
    widths = {t.get_text(): 0.0 for t in ax.get_yticklabels()}
    for bar in ax.patches:
        widths[ax.get_yticklabels()[round(bar.get_y() + bar.get_height() / 2)].get_text()] += bar.get_width()
    assert widths["cat"] == 2
    assert len(render.plot_labels(anns.iloc[:0]).patches) == 0


# ----------------------------------------------------------------------------------------------------
# Images through the backend of the frame's load


class _Counting(httpx.HTTPTransport):
    """The real transport, counting the image downloads (the simulator serves pixels under ``/files/``)."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.images += request.url.path.startswith("/files/")
        return super().handle_request(request)


@pytest.fixture
def nexus(tmp_path: Path) -> Iterator[tuple[Any, _Counting]]:
    """A Nexus connection to a fresh simulator, its transport counting image downloads."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from annotebook import connect
    from annotebook.testing import start

    sim = start("nexus", key="render-key", n_assets=3, image_dir=tmp_path / "sim")
    counting = _Counting()
    try:
        yield connect("nexus", project=sim.state.project_id, key="render-key", endpoint=sim.url,
                      transport=counting), counting  # fmt: skip
    finally:
        sim.stop()


def test_pictures_read_images_through_the_backend_cache_once(nexus: tuple[Any, _Counting]) -> None:
    """A second picture of an asset (and the gallery after it) reads the backend's cached file: one download."""
    conn, counting = nexus
    anns = conn.assets().annot.load()
    first = str(anns["asset"].iloc[0])
    ax = anns.annot.show(first)
    assert np.asarray(ax.images[0].get_array()).shape[:2] != (1, 1)  # the real image, not a placeholder
    assert counting.images == 1
    anns.annot.show(first)
    anns.annot.gallery(n=1)
    assert counting.images == 1
    cached = render.image_file(first, "https://ignored.example/a.png", anns)
    assert cached is not None and Path(cached).is_file()


def test_an_expired_image_url_is_asked_for_again(nexus: tuple[Any, _Counting]) -> None:
    """The listing's signed URL no longer works when the picture is drawn: the backend fetches a fresh one."""
    conn, counting = nexus
    anns = conn.assets().annot.load()
    asset = str(anns["asset"].iloc[0])
    conn.backend._urls[asset] = conn.backend._urls[asset] + "0"  # a signature the storage host refuses (403)
    ax = anns.annot.show(asset)
    assert not [t for t in ax.texts if "image" in t.get_text()]
    assert np.asarray(ax.images[0].get_array()).shape[:2] != (1, 1)
    assert counting.images == 2  # the refused URL, then the fresh one


def test_a_hand_built_frame_reads_its_uri(tmp_path: Path) -> None:
    """No load token: the image is read from the assets table's uri, as before."""
    Image.new("RGB", (10, 8), "red").save(tmp_path / "a.png")
    assets, anns, _ = _tables(str(tmp_path / "a.png"))
    assert render.image_file("a", str(tmp_path / "a.png"), anns, assets) == str(tmp_path / "a.png")
    assert np.asarray(render.show_asset(anns, assets, "a").images[0].get_array()).shape[:2] == (8, 10)
