"""The "shapes" sample dataset: contract, EXIF asset, planted mistakes, determinism, size and speed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from annotebook import samples, schema
from annotebook.render import load_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("shapes")
    assets, anns, labels = samples.make_shapes(folder)
    return folder, assets, anns, labels


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tables_have_the_contract_columns_and_dtypes(shapes: tuple) -> None:
    _, assets, anns, labels = shapes
    assert list(assets.columns) == list(schema.ASSET_COLUMNS)
    assert list(anns.columns) == list(schema.ANNOTATION_COLUMNS)
    assert list(labels.columns) == list(schema.LABEL_COLUMNS)
    for table, columns in ((assets, schema.ASSET_COLUMNS), (anns, schema.ANNOTATION_COLUMNS)):
        for col, dtype in columns.items():
            assert table[col].dtype == pd.api.types.pandas_dtype(dtype), col
    assert set(assets.dataset) == set(anns.dataset) == set(labels.dataset) == {"shapes"}
    assert anns["id"].is_unique and anns["id"].str.startswith("new-").all()
    assert not anns["deleted"].any()
    assert set(anns.author) == {"generator"}


def test_assets_are_named_files_of_various_sizes(shapes: tuple) -> None:
    folder, assets, _, _ = shapes
    assert list(assets.asset) == [f"shapes_{i:03d}" for i in range(36)]
    assert sorted(p.name for p in folder.iterdir()) == sorted(assets.name)
    for row in assets.itertuples():
        assert Path(row.uri).is_absolute() and Path(row.uri).exists()
        assert Path(row.uri).name == row.name
    assert set(assets.status) == {"NotStarted", "Completed"}
    assert ((assets.width >= 240) & (assets.width <= 640) & (assets.height >= 240) & (assets.height <= 640)).all()
    assert (assets.height > assets.width).sum() >= 2  # a few portrait ones
    assert assets[["width", "height"]].drop_duplicates().shape[0] >= 4


def test_png_sizes_match_the_assets_table(shapes: tuple) -> None:
    _, assets, _, _ = shapes
    for row in assets[assets.name.str.endswith(".png")].itertuples():
        with Image.open(row.uri) as image:
            assert image.format == "PNG" and image.size == (row.width, row.height)


def test_one_jpeg_reports_its_displayed_size_and_loads_upright(shapes: tuple) -> None:
    _, assets, _, _ = shapes
    jpegs = assets[assets.name.str.endswith(".jpg")]
    assert len(jpegs) == 1
    row = jpegs.iloc[0]
    with Image.open(row.uri) as stored:
        assert stored.format == "JPEG"
        assert stored.getexif().get(0x0112) == 6
        assert stored.size == (row.height, row.width) != (row.width, row.height)  # stored on its side
    assert load_image(row.uri).size == (row.width, row.height)


def test_geometry_is_normalised_and_well_formed(shapes: tuple) -> None:
    _, _, anns, _ = shapes
    spatial = anns[anns.kind.isin(["box", "polygon", "keypoints"])]
    coords = spatial[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
    assert np.isfinite(coords).all() and (coords >= 0).all() and (coords <= 1).all()
    assert (spatial.x0 < spatial.x1).all() and (spatial.y0 < spatial.y1).all()
    boxes = anns[anns.kind == "box"]
    assert boxes.rotation.notna().all()
    assert (boxes.rotation != 0).any() and set(boxes.loc[boxes.rotation != 0, "label"]) <= {"square", "sqare"}
    polygons = anns[anns.kind == "polygon"]
    assert set(polygons.label) == {"triangle", "star"}
    for label, vertices in (("triangle", 3), ("star", 10)):
        assert {len(p[0]) // 2 for p in polygons.loc[polygons.label == label, "points"]} == {vertices}
    assert all(type(p) is tuple and type(p[0]) is tuple for p in polygons.points)


def test_each_outline_has_its_extent_as_a_box_unless_shifted(shapes: tuple) -> None:
    _, _, anns, _ = shapes
    corners = ["asset", "x0", "y0", "x1", "y1"]
    polygons = anns.loc[anns.kind == "polygon", corners]
    boxed = polygons.merge(anns.loc[anns.kind == "box", corners], how="left", indicator=True)
    unboxed = boxed[boxed["_merge"] == "left_only"]
    planted = samples.planted_mistakes()
    shifted = planted[(planted.kind_of_mistake == "shifted_box") & planted.label.isin(["triangle", "star"])]
    assert sorted(unboxed.asset) == sorted(shifted.asset)


def test_star_tips_keypoints_and_their_labels(shapes: tuple) -> None:
    _, _, anns, labels = shapes
    tips = anns[anns.kind == "keypoints"]
    assert 2 <= len(tips) <= 4
    assert set(tips.label) == {"star-tips"}
    for row in tips.itertuples():
        assert len(row.points) == 1 and len(row.points[0]) == 10
        assert sorted(row.visibility) == [1, 2, 2, 2, 2]
        star = anns[(anns.asset == row.asset) & (anns.kind == "polygon") & (anns.label == "star")]
        star = star[(star.x0 <= row.x0) & (star.y0 <= row.y0) & (star.x1 >= row.x1) & (star.y1 >= row.y1)]
        assert list(star.attributes) == [{"occluded": True}]  # the star whose tips these are
    star_tips = labels.set_index("name").loc["star-tips"]
    assert star_tips["keypoints"] == ("tip1", "tip2", "tip3", "tip4", "tip5")
    assert star_tips["skeleton"] == ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0))
    assert anns.attributes.notna().any()


def test_labels_table(shapes: tuple) -> None:
    _, _, _, labels = shapes
    assert list(labels.name) == ["circle", "square", "triangle", "star", "star-tips", "noise"]
    assert list(labels["index"]) == list(range(6))
    assert labels.color.str.fullmatch(r"#[0-9a-f]{6}").all() and labels.color.is_unique
    assert labels.loc[labels.name != "star-tips", "keypoints"].isna().all()


def test_planted_mistakes_are_all_kinds_and_deterministic() -> None:
    planted = samples.planted_mistakes()
    assert list(planted.columns) == ["asset", "kind_of_mistake", "label", "x0", "y0", "x1", "y1", "detail"]
    counts = planted.kind_of_mistake.value_counts()
    assert counts["wrong_label"] >= 3 and counts["shifted_box"] >= 2 and counts["duplicate"] >= 2
    assert counts["missing_box"] == 1 and counts["noise_box"] == 2
    assert (planted.label == "sqare").sum() >= 1
    assert planted.detail.str.contains("exact").any() and planted.detail.str.contains("near").any()
    pd.testing.assert_frame_equal(planted, samples.planted_mistakes())
    assert not planted.equals(samples.planted_mistakes(seed=1))


def test_planted_mistakes_are_in_the_tables(shapes: tuple) -> None:
    _, _, anns, _ = shapes
    found = samples.find_planted(anns, samples.planted_mistakes())
    present = found[found.kind_of_mistake != "missing_box"]
    assert present.id.notna().all()
    assert set(present.id) <= set(anns.id)
    assert (anns.label == "sqare").sum() == (samples.planted_mistakes().label == "sqare").sum()
    assert set(anns.loc[anns.label == "noise", "id"]) == set(found.loc[found.kind_of_mistake == "noise_box", "id"])
    for _, group in found[found.kind_of_mistake == "duplicate"].groupby("detail"):
        assert len(group) >= 2  # the copy and the row it copies both match
    missing = found[found.kind_of_mistake == "missing_box"]
    assert missing.id.isna().all()


def test_shifted_boxes_moved_about_fifteen_percent(shapes: tuple) -> None:
    _, _, anns, _ = shapes
    scenes = {s.asset: s for s in samples._scenes(0, 36)}
    found = samples.find_planted(anns, samples.planted_mistakes())
    for row in found[found.kind_of_mistake == "shifted_box"].itertuples():
        scene = scenes[row.asset]
        truths = [samples._norm(sh.box(), scene) for sh in scene.shapes]
        true = min(
            truths,
            key=lambda b: sum(abs(u - v) for u, v in zip(b, (row.x0, row.y0, row.x1, row.y1), strict=True)),
        )
        w, h = true[2] - true[0], true[3] - true[1]
        moves = sorted((abs(row.x0 - true[0]) / w, abs(row.y0 - true[1]) / h))
        assert moves[1] == pytest.approx(0.15) and moves[0] in (0.0, pytest.approx(0.15))


def test_a_drawn_shape_is_left_unannotated(shapes: tuple) -> None:
    _, _, anns, _ = shapes
    scenes = samples._scenes(0, 36)
    drawn = sum(len(s.shapes) for s in scenes)
    planted = samples.planted_mistakes()
    extra = (planted.kind_of_mistake.isin(["duplicate", "noise_box"])).sum()
    assert (anns.kind == "box").sum() == drawn - 1 + extra


def test_same_seed_same_bytes_and_tables(tmp_path: Path) -> None:
    a = samples.make_shapes(tmp_path / "a", n_assets=8, seed=3)
    b = samples.make_shapes(tmp_path / "b", n_assets=8, seed=3)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    pd.testing.assert_frame_equal(a[0].drop(columns="uri"), b[0].drop(columns="uri"))
    pd.testing.assert_frame_equal(a[1].drop(columns="id"), b[1].drop(columns="id"))
    pd.testing.assert_frame_equal(a[2], b[2])
    c = samples.make_shapes(tmp_path / "c", n_assets=8, seed=4)
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")
    assert not a[1].drop(columns="id").equals(c[1].drop(columns="id"))


@pytest.mark.slow
def test_same_bytes_in_another_process(tmp_path: Path) -> None:
    samples.make_shapes(tmp_path / "here", n_assets=8, seed=5)
    there = str(tmp_path / "there")
    code = f"import pathlib, annotebook.samples as s; s.make_shapes(pathlib.Path({there!r}), 8, 5)"
    env = {**os.environ, "PYTHONHASHSEED": "99", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert _digests(tmp_path / "here") == _digests(tmp_path / "there")


def test_folder_is_well_under_five_megabytes(shapes: tuple) -> None:
    folder = shapes[0]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 3_000_000


@pytest.mark.parametrize("n_assets", [1, 2, 5])
def test_small_datasets(tmp_path: Path, n_assets: int) -> None:
    assets, anns, _ = samples.make_shapes(tmp_path, n_assets=n_assets)
    assert len(assets) == n_assets and len(anns) >= 1
    assert assets.name.str.endswith(".jpg").sum() == 1
    planted = samples.planted_mistakes(n_assets=n_assets)
    found = samples.find_planted(anns, planted)
    assert found[found.kind_of_mistake != "missing_box"].id.notna().all()


def test_find_planted_survives_pixel_rounding(shapes: tuple) -> None:
    _, assets, anns, _ = shapes
    sizes = anns.merge(assets[["asset", "width", "height"]], on="asset")
    rounded = anns.copy()
    for col, size in (("x0", "width"), ("x1", "width"), ("y0", "height"), ("y1", "height")):
        scale = sizes[size].to_numpy(dtype=float)
        rounded[col] = np.round(sizes[col].to_numpy() * scale) / scale
    found = samples.find_planted(rounded, samples.planted_mistakes())
    assert found[found.kind_of_mistake != "missing_box"].id.notna().all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_assets"):
        samples.planted_mistakes(n_assets=0)
    with pytest.raises(ValueError, match="n_assets"):
        samples.make_shapes(Path("unused"), n_assets=0)
