"""What the editor writes beside a region: its label, and a grounding box's phrase once."""

from __future__ import annotations

import pytest

from annotebook.widgets.drawing import _label_text
from annotebook.widgets.regions import Region


@pytest.mark.parametrize(
    ("kind", "label", "text", "shown"),
    [
        ("box", "cat", None, "cat"),
        ("box", None, None, "box"),
        ("grounding", "animal", "a cat", "animal: a cat"),
        ("grounding", "cat", "cat", "cat"),
        ("grounding", None, "a cat", "a cat"),
    ],
)
def test_label_text(kind: str, label: str | None, text: str | None, shown: str) -> None:
    region = Region(id="r", kind=kind, label=label, text=text)
    assert _label_text(region) == shown


def test_labels_of_regions_sharing_a_corner_do_not_overlap() -> None:
    """Three regions with one top-left corner ("star" under "star-tips" in the issue): three separate plates."""
    from annotebook.widgets.drawing import FONT_PX, place_labels

    items = [(100.0, 100.0, 180.0, 160.0, 40.0), (100.0, 100.0, 150.0, 150.0, 70.0), (100.0, 100.0, 190.0, 190.0, 40.0)]
    spots = place_labels(items, (400.0, 300.0))
    h = FONT_PX + 4
    rects = [(x, y, it[4], h) for (x, y), it in zip(spots, items, strict=True)]
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])
    assert spots[0] == (100.0, 100.0 - h)  # the first keeps its usual place, above the corner
