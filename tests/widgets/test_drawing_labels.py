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
