"""Issue 16: round trips keep what a format can hold with its type, and name what it cannot in a warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import annotebook as ab
from annotebook.formats import load, save
from annotebook.formats._kept import KEPT, FieldNotKept

ATTRS = {"s": "007", "n": 7, "b": True, "f": 1.5, "t": "true", "nan": "nan"}
TARGETS = {"coco": "out.json", "yolo": "out", "voc": "out", "csv_four_corner": "out.csv", "csv_width_height": "o.csv",
           "labelstudio": "out.json", "superannotate": "out"}  # fmt: skip


def _frame() -> tuple:
    assets = ab.assets_frame([{"dataset": "d", "asset": "a.png", "name": "a.png", "width": 100, "height": 80}])
    row = {"dataset": "d", "asset": "a.png", "id": "1", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1}
    row |= {"x1": 0.5, "y1": 0.5, "rotation": 0.0, "score": 0.9, "split": "train", "status": "Completed"}
    anns = ab.annotations_frame([{**row, "author": "me", "attributes": ATTRS}])
    return anns, assets


@pytest.mark.parametrize("fmt", sorted(TARGETS))
def test_every_field_is_kept_with_its_type_or_named(tmp_path: Path, fmt: str) -> None:
    anns, assets = _frame()
    target = tmp_path / TARGETS[fmt]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        save(anns, target, fmt, assets=assets)
    message = " ".join(str(w.message) for w in seen if issubclass(w.category, FieldNotKept))
    back = load(target, fmt).annotations.iloc[0]
    kept = KEPT[fmt]
    for col, value in (("score", 0.9), ("split", "train"), ("status", "Completed"), ("author", "me")):
        if col in kept.columns:
            assert back[col] == value, (fmt, col)
        else:
            assert f"{col} (1 row)" in message, (fmt, col, message)
    attrs = back["attributes"] or {}
    for k, v in ATTRS.items():
        if not kept.attribute_types:
            assert "attributes (1 rows)" in message
        elif type(v) in kept.attribute_types:
            assert attrs.get(k) == v and type(attrs.get(k)) is type(v), (fmt, k, attrs.get(k))
        else:
            assert f"{k} (" in message and str(attrs.get(k)).lower() == str(v).lower(), (fmt, k, attrs.get(k))


def test_voc_keeps_attribute_text_as_text(tmp_path: Path) -> None:
    """ "007" stays "007" (not 7), "true" stays "true" (not True), "nan" stays (it was dropped)."""
    anns, assets = _frame()
    anns.at[0, "attributes"] = {"s": "007", "t": "true", "nan": "nan"}
    anns = anns.assign(score=float("nan"), split=None, status=None, author=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: VOC holds text
        save(anns, tmp_path / "v", "voc", assets=assets)
    assert load(tmp_path / "v", "voc").annotations.iloc[0]["attributes"] == {"s": "007", "t": "true", "nan": "nan"}


@pytest.mark.parametrize("fmt", ["superannotate", "labelstudio"])
def test_numbers_and_booleans_that_become_text_are_named(tmp_path: Path, fmt: str) -> None:
    anns, assets = _frame()
    with pytest.warns(FieldNotKept, match=r"b \(boolean\)"):
        save(anns, tmp_path / TARGETS[fmt], fmt, assets=assets)


@pytest.mark.parametrize("fmt", ["yolo", "voc", "csv_four_corner", "labelstudio"])
def test_score_is_never_dropped_silently(tmp_path: Path, fmt: str) -> None:
    anns, assets = _frame()
    anns = anns.assign(split=None, status=None, author=None, attributes=None)
    with pytest.warns(FieldNotKept, match=r"score \(1 row\)"):
        save(anns, tmp_path / TARGETS[fmt], fmt, assets=assets)
