"""Headless editor tests: front-end messages replayed into the canvas comm, as the browser would send them.

Outside a kernel ipywidgets gives every widget a ``DummyComm``; ``comm.handle_msg`` still runs the widget's
message handler, so a test goes the exact path of a real mouse event (recipe: browser-e2e-recipe.md, section 5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import annotebook as ab


@pytest.fixture(autouse=True)
def fail_on_swallowed_callback_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """ipywidgets' CallbackDispatcher catches a handler's exception and only logs it: make it a failure."""
    caplog.set_level(logging.WARNING)
    yield
    bad = [r for r in caplog.get_records("call") if "Exception in callback" in r.getMessage()]
    assert not bad, bad[0].getMessage()


class Clock:
    """A clock the test moves by hand (double clicks are two clicks close in time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


class Front:
    """Plays the browser's part for one editor: mouse, wheel and key messages into the canvas comm."""

    def __init__(self, editor: Any, clock: Clock):
        self.editor = editor
        self.clock = clock

    @property
    def state(self) -> Any:
        return self.editor.state

    def send(self, event: str, **content: Any) -> None:
        msg = {"content": {"data": {"method": "custom", "content": {"event": event, **content}}}, "buffers": []}
        self.editor.canvas.comm.handle_msg(msg)

    def at(self, ix: float, iy: float) -> tuple[float, float]:
        """The canvas point that shows image pixel point (ix, iy) now."""
        return self.state.viewport.to_canvas(ix, iy)

    def down(self, x: float, y: float) -> None:
        self.send("mouse_down", x=x, y=y)

    def move(self, x: float, y: float) -> None:
        self.send("mouse_move", x=x, y=y)

    def up(self, x: float, y: float) -> None:
        self.send("mouse_up", x=x, y=y)

    def click(self, x: float, y: float) -> None:
        self.clock.tick(1.0)  # far apart in time: never a double click by accident
        self.move(x, y)
        self.down(x, y)
        self.up(x, y)

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 3) -> None:
        self.move(x0, y0)
        self.down(x0, y0)
        for k in range(1, steps + 1):
            self.move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
        self.up(x1, y1)

    def key(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        self.send("key_down", key=key, shift_key=shift, ctrl_key=ctrl, meta_key=meta)

    def wheel(self, dx: float, dy: float) -> None:
        self.send("mouse_wheel", x=dx, y=dy)

    def tool(self, name: str) -> None:
        self.key({"select": "v", "box": "b", "polygon": "g", "polyline": "l", "keypoints": "k", "pan": "h"}[name])


def open_editor(frame: pd.DataFrame, **kwargs: Any) -> Front:
    from annotebook.widgets.editor import Editor

    clock = Clock()
    return Front(Editor(frame, clock=clock, **kwargs), clock)


def hand_tables(width: int = 300, height: int = 200) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """An untraced dataset "h": a box, a polygon and a polyline on asset "a", a box on asset "b"."""
    assets = ab.assets_frame(
        [{"dataset": "h", "asset": a, "name": f"{a}.png", "width": width, "height": height} for a in ("a", "b")]
    )
    rows = [
        {"id": "box", "asset": "a", "label": "cat", "kind": "box", "x0": 0.1, "y0": 0.1, "x1": 0.3, "y1": 0.4},
        {
            "id": "poly",
            "asset": "a",
            "label": "dog",
            "kind": "polygon",
            "points": [[0.5, 0.5, 0.9, 0.5, 0.9, 0.9, 0.5, 0.9]],
        },
        {"id": "line", "asset": "a", "label": "road", "kind": "polyline", "points": [[0.1, 0.8, 0.3, 0.95]]},
        {"id": "bbox", "asset": "b", "label": "cat", "kind": "box", "x0": 0.2, "y0": 0.2, "x1": 0.6, "y1": 0.6},
    ]
    anns = ab.annotations_frame([{"dataset": "h", **r} for r in rows])
    labels = ab.labels_frame(
        [
            {"dataset": "h", "name": "cat", "color": "#ff0000"},
            {"dataset": "h", "name": "dog", "color": "#00ff00"},
            {"dataset": "h", "name": "star", "keypoints": ("a", "b", "c"), "skeleton": ((0, 1), (1, 2))},
        ]
    )
    return assets, anns, labels


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hand() -> Front:
    assets, anns, labels = hand_tables()
    return open_editor(anns, assets=assets, labels=labels, width=600, height=400)


@pytest.fixture
def samples(tmp_path: Path) -> ab.Connection:
    return ab.connect("local", path=str(tmp_path / "samples"))


def big_image(path: Path, width: int = 2400, height: int = 1600) -> Path:
    """A gradient image, large enough that zooming in asks for sharper crops."""
    from PIL import Image

    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], y[:, None], np.full((height, width), 90, np.uint8)), axis=-1)
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path
