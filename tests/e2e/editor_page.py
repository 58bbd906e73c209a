"""The editor as the browser tests see it: its canvas on the page, and the kernel's view of the same editor.

`EditorPage` maps image pixels to canvas points to page points (through the kernel's viewport and the canvas's
box on the page, which may be narrower than its pixels when the cell is), so a test clicks where a region is.
"""

from __future__ import annotations

from typing import Any

from .conftest import Lab


class EditorPage:
    """The editor bound to kernel name ``name`` (default ``w``), shown in the notebook's host box."""

    def __init__(self, nb: Lab, name: str = "w", root: str = ".annotebook-editor"):
        self.nb, self.name = nb, name
        self.root = nb.page.locator(root).last
        self.canvas = self.root.locator("canvas").first
        self.canvas.wait_for(state="visible", timeout=60_000)
        self.canvas.scroll_into_view_if_needed()
        self.size = nb.eval(f"tuple({name}.state.canvas_size)")
        # shapes_010's rows in table order (ids differ per store): square, star box, its duplicate, star polygon,
        # circle, the triangle's box (labelled square), triangle polygon, second star's box and polygon
        ids = nb.eval(f"{name}.frame[{name}.frame.asset == 'shapes_010'].id.tolist()")
        self.ids = ids
        if len(ids) >= 7:
            self.circle, self.triangle, self.stack = ids[4], ids[6], ids[1:4]

    @property
    def page(self) -> Any:
        return self.nb.page

    def box(self) -> dict[str, float]:
        bb = self.canvas.bounding_box()
        assert bb is not None
        return bb

    def at(self, cx: float, cy: float) -> tuple[float, float]:
        """The page point of canvas point (cx, cy)."""
        bb = self.box()
        return bb["x"] + cx * bb["width"] / self.size[0], bb["y"] + cy * bb["height"] / self.size[1]

    def image(self, ix: float, iy: float) -> tuple[float, float]:
        """The page point of image pixel (ix, iy), through the editor's current viewport."""
        cx, cy = self.nb.eval(f"tuple(map(float, {self.name}.state.viewport.to_canvas({ix}, {iy})))")
        return self.at(cx, cy)

    def centre_of(self, row_id: str) -> tuple[float, float]:
        """The page point at the centre of row ``row_id``'s extent."""
        x0, y0, x1, y1 = self.nb.eval(
            f"tuple(map(float, {self.name}.frame.set_index('id').loc[{row_id!r}, ['x0', 'y0', 'x1', 'y1']]))"
        )
        w, h = self.nb.eval(f"({self.name}.state.info.width, {self.name}.state.info.height)")
        return self.image((x0 + x1) / 2 * w, (y0 + y1) / 2 * h)

    def focus(self) -> None:
        """Give the canvas the keyboard (a click on an empty corner of the canvas)."""
        self.page.mouse.click(*self.at(3, 3))

    def key(self, key: str) -> None:
        self.page.keyboard.press(key)

    def rows(self, where: str) -> list[str]:
        """Ids of the editor frame's live rows matching ``where`` (a pandas expression over ``f``)."""
        return self.nb.eval(f"(lambda f: f[({where}) & ~f.deleted]['id'].tolist())({self.name}.frame)")

    def field(self, row_id: str, column: str) -> Any:
        return self.nb.eval(f"{self.name}.frame.set_index('id').loc[{row_id!r}, {column!r}]")
