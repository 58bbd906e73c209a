"""The `Browser` widget: pages of thumbnails with their regions drawn on, filtered by label and kind; a click
opens the `Editor` on that asset (walking the filtered assets), below the grid.

Thumbnails are drawn with Pillow (`thumbnail_jpeg`), in the label colours of the static pictures; an asset
without a readable image gets a grey tile of its shape. Deleted rows are left out, as everywhere.

>>> anns.annot.browse()                    # doctest: +SKIP
>>> anns.annot.browse(per_page=24, side=160)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from ..colors import label_color
from ..geometry import rotated_corners
from .editor import Editor, _traced, walk_of
from .imagery import Picture, asset_picture, load_picture
from .sink import FrameSink

__all__ = ["Browser", "thumbnail_jpeg"]

ALL = "(all)"
TILE_GREY = (200, 200, 200)


def _live(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["deleted"].to_numpy(dtype=bool, na_value=False)]


def _outline(draw: Any, row: Mapping[Any, Any], w: float, h: float, color: str) -> None:
    kind = row["kind"]
    if kind in ("box", "grounding"):
        x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return
        rotation = row.get("rotation")
        rot = 0.0 if rotation is None or rotation != rotation else float(rotation)
        corners = rotated_corners(x0, y0, x1, y1, rot, w, h) * (w, h)
        draw.polygon([tuple(p) for p in corners.tolist()], outline=color, width=2)
        return
    for part in row.get("points") or ():
        xy = np.asarray(part, dtype=float).reshape(-1, 2) * (w, h)
        xy = xy[np.isfinite(xy).all(axis=1)]
        pts = [tuple(p) for p in xy.tolist()]
        if kind == "polygon" and len(pts) >= 3:
            draw.polygon(pts, outline=color, width=2)
        elif kind == "polyline" and len(pts) >= 2:
            draw.line(pts, fill=color, width=2)
        elif kind == "keypoints":
            for x, y in pts:
                draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=color)


def thumbnail_jpeg(
    rows: pd.DataFrame,
    uri: Any,
    width: float,
    height: float,
    labels: pd.DataFrame | None = None,
    side: int = 200,
    picture: Picture | None = None,
) -> bytes:
    """A thumbnail (longest side ``side``) of one asset's image with its regions outlined, as JPEG.

    ``picture`` is the image already read (through the backend); without it the image is read from ``uri``.
    """
    from PIL import Image, ImageDraw

    if picture is None:
        picture, _ = load_picture(uri, width, height)
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if picture is None:
        image = Image.new("RGB", size, TILE_GREY)
    else:
        image = picture.image.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for row in rows.to_dict("records"):
        label = row.get("label")
        _outline(draw, row, size[0], size[1], label_color(label if isinstance(label, str) else "(no label)", labels))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


class Browser(widgets.VBox):
    """Pages of thumbnails of ``frame``'s assets, filtered by label and kind; a click opens the editor."""

    def __init__(
        self,
        frame: pd.DataFrame,
        assets: pd.DataFrame | None = None,
        labels: pd.DataFrame | None = None,
        *,
        per_page: int = 12,
        cols: int = 4,
        side: int = 180,
    ):
        self.frame = frame
        self.assets = assets
        self.labels = labels if labels is not None else _traced(frame, "labels")
        self._info = FrameSink(frame, None, lookup=assets if assets is not None else _traced(frame, "assets"))
        self.per_page, self.cols, self.side = per_page, cols, side
        self.page = 0
        self.editor: Editor | None = None
        self._thumbs: dict[str, bytes] = {}
        live = _live(frame)
        self._label = widgets.Dropdown(
            options=[ALL, *sorted(live["label"].dropna().astype(str).unique())], description="label"
        )
        self._kind = widgets.Dropdown(
            options=[ALL, *sorted(live["kind"].dropna().astype(str).unique())], description="kind"
        )
        for control in (self._label, self._kind):
            control.observe(lambda _: self.show_page(0), names="value")
        self._prev = widgets.Button(icon="arrow-left", tooltip="previous page", layout=widgets.Layout(width="36px"))
        self._next = widgets.Button(icon="arrow-right", tooltip="next page", layout=widgets.Layout(width="36px"))
        self._prev.on_click(lambda _: self.show_page(self.page - 1))
        self._next.on_click(lambda _: self.show_page(self.page + 1))
        self._where = widgets.HTML()
        self._grid = widgets.GridBox(layout=widgets.Layout(grid_template_columns=f"repeat({cols}, {side + 12}px)"))
        self._editor_area = widgets.VBox()
        bar = widgets.HBox([self._label, self._kind, self._prev, self._next, self._where])
        super().__init__([bar, self._grid, self._editor_area])
        self.show_page(0)

    def filtered(self) -> list[str]:
        """The assets whose live rows match the label and kind filters, in the frame's order."""
        live = _live(self.frame)
        keep = np.ones(len(live), dtype=bool)
        if self._label.value != ALL:
            keep &= (live["label"] == self._label.value).to_numpy(dtype=bool, na_value=False)
        if self._kind.value != ALL:
            keep &= (live["kind"] == self._kind.value).to_numpy(dtype=bool, na_value=False)
        walk, _ = walk_of(self.frame, None, self._info.lookup)
        if self._label.value == ALL and self._kind.value == ALL:
            return walk
        wanted = set(live["asset"].astype(str).to_numpy()[keep].tolist())
        return [a for a in walk if a in wanted]

    def show_page(self, page: int) -> None:
        """Show page ``page`` (0-based, clipped) of the filtered assets."""
        chosen = self.filtered()
        pages = max(1, math.ceil(len(chosen) / self.per_page))
        self.page = min(max(page, 0), pages - 1)
        on_page = chosen[self.page * self.per_page : (self.page + 1) * self.per_page]
        self._grid.children = [self._card(asset, chosen) for asset in on_page]
        self._where.value = f"&nbsp;page {self.page + 1} / {pages} · {len(chosen)} assets"

    def _card(self, asset: str, walk: list[str]) -> Any:
        info = self._info.info(asset)
        if asset not in self._thumbs:
            rows = _live(self.frame)
            rows = rows[(rows["asset"] == asset).to_numpy(dtype=bool, na_value=False)]
            picture, _ = asset_picture(asset, info.uri, info.width, info.height, self.frame, self._info.lookup)
            self._thumbs[asset] = thumbnail_jpeg(
                rows, None, info.width, info.height, self.labels, self.side, picture=picture
            )
        image = widgets.Image(
            value=self._thumbs[asset], format="jpeg", layout=widgets.Layout(max_width=f"{self.side}px")
        )
        n = int(((self.frame["asset"] == asset) & ~self.frame["deleted"]).sum())
        button = widgets.Button(
            description=f"{info.name or asset} ({n})", tooltip="open in the editor",
            layout=widgets.Layout(width=f"{self.side}px"),
        )  # fmt: skip
        button.on_click(lambda _: self.open_asset(asset, walk))
        return widgets.VBox([image, button])

    def open_asset(self, asset: str, walk: list[str] | None = None) -> Editor:
        """Open the editor on ``asset`` below the grid; next / previous walk ``walk`` (the filtered assets)."""
        walk = walk or self.filtered()
        if asset not in walk:
            walk = [asset, *walk]
        editor = Editor(self.frame, target=walk, assets=self.assets, labels=self.labels)
        editor.state.open(asset)
        editor.render()
        close = widgets.Button(description="close editor", icon="times")
        close.on_click(lambda _: self.close_editor())
        self.editor = editor
        self._editor_area.children = [close, editor]
        return editor

    def close_editor(self) -> None:
        """Close the editor and redraw the thumbnails (its edits are in the frame)."""
        if self.editor is not None:
            self.editor.close()
        self.editor = None
        self._editor_area.children = []
        self._thumbs.clear()
        self.show_page(self.page)
