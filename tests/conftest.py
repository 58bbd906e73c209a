"""Shared fixtures: every test gets its own annotebook home (registry) and a small local store."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.local import LocalBackend

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def ab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ANNOTEBOOK_HOME", str(home))
    return home


def tiny_tables(n_assets: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A dataset "t": boxes, a polygon with a hole, keypoints, a tag, a caption with a grounding phrase."""
    assets = ab.assets_frame(
        [
            {"dataset": "t", "asset": f"a{i}", "name": f"a{i}.png", "width": 100 + i, "height": 80}
            for i in range(n_assets)
        ]
    )
    rows = [
        {
            "asset": f"a{i % n_assets}",
            "label": "cat" if i % 2 else "dog",
            "kind": "box",
            "x0": 0.1,
            "y0": 0.1 + i / 100,
            "x1": 0.5,
            "y1": 0.6,
        }
        for i in range(6)
    ]
    rows += [
        {
            "asset": "a0",
            "label": "tri",
            "kind": "polygon",
            "attributes": {"occluded": True},
            "points": [[0.1, 0.1, 0.9, 0.1, 0.5, 0.9], [0.4, 0.3, 0.6, 0.3, 0.5, 0.5]],
        },
        {
            "asset": "a1",
            "label": "person",
            "kind": "keypoints",
            "points": [[0.2, 0.2, 0.3, 0.3, float("nan"), float("nan")]],
            "visibility": [2, 1, 0],
        },
        {"asset": "a2", "label": "daytime", "kind": "tag", "value": True},
        {"asset": "a2", "id": "cap", "kind": "caption", "text": "a dog on a sofa"},
    ]
    return assets, ab.annotations_frame(rows)


@pytest.fixture
def store(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "store", samples=False)
    assets, anns = tiny_tables()
    backend.write_dataset("t", assets, anns)
    return backend


@pytest.fixture
def conn(store: LocalBackend) -> ab.Connection:
    return ab.connect("local", path=str(store.path))


@pytest.fixture
def anns(conn: ab.Connection) -> pd.DataFrame:
    return conn.annotations("t")
