"""The editor's wire and speed with 1,000 regions on one asset (run by hand, not collected).

    python tests/bench/bench_editor.py [--regions 1000 --moves 200]

Prints: comm messages and bytes of one full redraw (target: 1 message), the image bytes sent once per asset,
and the Python time per mouse-move event during a drag (target: under 5 ms), with what each move sends.
Events go the way a browser's do: messages into the canvas comm (no kernel: ipywidgets' DummyComm).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def frame_with(n: int, image: Path) -> tuple[Any, Any, Any]:
    import annotebook as ab

    rng = np.random.default_rng(0)
    labels = [f"class{i}" for i in range(8)]
    rows = []
    for i in range(n):
        x, y = rng.uniform(0.02, 0.9, 2)
        w, h = rng.uniform(0.01, 0.08, 2)
        kind = ("box", "box", "polygon", "polyline", "keypoints")[i % 5]
        row: dict[str, Any] = {"dataset": "bench", "asset": "big", "label": labels[i % 8], "kind": kind}
        if kind == "box":
            row.update(x0=x, y0=y, x1=x + w, y1=y + h)
        elif kind == "keypoints":
            row.update(points=[[x, y, x + w, y, x + w, y + h]], visibility=[2, 2, 1])
        else:
            row["points"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        rows.append(row)
    assets = ab.assets_frame(
        [{"dataset": "bench", "asset": "big", "name": "big.jpg", "width": 4000, "height": 3000, "uri": str(image)}]
    )
    lab = ab.labels_frame([{"dataset": "bench", "name": name} for name in labels])
    return ab.annotations_frame(rows), assets, lab


class Wire:
    def __init__(self, editor: Any):
        self.messages: list[int] = []
        manager = editor.canvas._canvas_manager
        manager.send = lambda content, buffers=None: self.messages.append(
            len(json.dumps(content)) + sum(memoryview(b).nbytes for b in buffers or [])
        )


def fire(editor: Any, event: str, **content: Any) -> None:
    msg = {"content": {"data": {"method": "custom", "content": {"event": event, **content}}}, "buffers": []}
    editor.canvas.comm.handle_msg(msg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regions", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=200)
    args = parser.parse_args()
    os.environ["ANNOTEBOOK_HOME"] = tempfile.mkdtemp()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from PIL import Image

    from annotebook.widgets.editor import Editor

    image = Path(tempfile.mkdtemp()) / "big.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)).save(image, quality=80)
    anns, assets, labels = frame_with(args.regions, image)
    t0 = time.perf_counter()
    editor = Editor(anns, assets=assets, labels=labels)
    opened = time.perf_counter() - t0
    wire = Wire(editor)
    print(f"{args.regions} regions on a 4000 x 3000 image, canvas 800 x 560")
    print(f"open the editor (load, downscale, first draw): {opened * 1000:.0f} ms")
    print(f"image sent once per asset at display size: {len(editor._base.value) / 1024:.0f} KiB (JPEG)")

    t0 = time.perf_counter()
    editor.replay()
    took = time.perf_counter() - t0
    kib = sum(wire.messages) / 1024
    print(f"full redraw: {len(wire.messages)} message(s), {kib:.1f} KiB, {took * 1000:.1f} ms Python")

    region = next(r for r in editor.state.regions.values() if r.kind == "polygon")
    editor.state.select(region.id)
    editor.render()
    sx, sy = editor.state.viewport.to_canvas(*region.points[0][:2])
    sx, sy = sx + 2, sy + 2  # just inside the polygon, off its vertices
    fire(editor, "mouse_move", x=sx, y=sy)
    fire(editor, "mouse_down", x=sx, y=sy)
    fire(editor, "mouse_move", x=sx + 5, y=sy)  # the drag starts (the region moves to the overlay, once)
    wire.messages.clear()
    times = []
    for k in range(args.moves):
        t0 = time.perf_counter()
        fire(editor, "mouse_move", x=sx + 5 + k * 0.5, y=sy + k * 0.25)
        times.append(time.perf_counter() - t0)
    fire(editor, "mouse_up", x=sx + 5 + args.moves * 0.5, y=sy)
    ms = sorted(t * 1000 for t in times)
    print(
        f"mouse move during a drag: median {statistics.median(ms):.2f} ms, p95 {ms[int(0.95 * len(ms))]:.2f} ms, "
        f"max {ms[-1]:.2f} ms; {len(wire.messages) / args.moves:.0f} message and "
        f"{sum(wire.messages) / len(wire.messages):.0f} bytes per move (overlay only)"
    )
    wire.messages.clear()
    crops, crop_bytes, seen = 0, 0, None
    t0 = time.perf_counter()
    fire(editor, "mouse_move", x=400, y=280)
    steps = 12
    for _ in range(steps):  # zoom in by 2x per 3 steps: 0.2 -> 3.2 canvas px per image px
        fire(editor, "mouse_wheel", x=0, y=-400 / 3)
        if editor._crop is not None and editor._crop is not seen:
            seen = editor._crop
            crops += 1
            crop_bytes += len(editor._crop_widgets[-1].value)
    took = (time.perf_counter() - t0) * 1000
    print(
        f"{steps} wheel steps from fit (x{editor.state.viewport.scale / editor.state.viewport.fit_scale:.0f}): "
        f"{len(wire.messages)} canvas messages ({sum(wire.messages) / len(wire.messages) / 1024:.1f} KiB each), "
        f"{crops} sharper crops sent ({crop_bytes / 1024:.0f} KiB in all, JPEG of a noise image: the worst case), "
        f"{took / steps:.0f} ms Python per step"
    )
    print(f"edit landed in the frame: {len(editor.state.undo_stack)} edit, frame rows {len(anns)}")


if __name__ == "__main__":
    main()
