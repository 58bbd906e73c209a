"""The `Browser` widget: pages of thumbnails with their regions and label names drawn on, a legend of the labels'
colours, filters by label and kind; a click on a thumbnail (or its caption) opens the `Editor` on that asset in
place of the grid (walking the filtered assets); "back to the gallery" returns to the grid, redrawn.

Thumbnails are drawn with Pillow (`thumbnail_jpeg`), in the label colours of the static pictures; an asset
without a readable image gets a grey tile of its shape. Deleted rows are left out, as everywhere. Every text put
into HTML (label and asset names) goes through `html.escape`.

>>> anns.annot.browse()                    # doctest: +SKIP
>>> anns.annot.browse(per_page=24, side=160)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from ..colors import label_color
from ..geometry import rotated_corners
from .drawing import place_labels
from .editor import Editor, _traced, walk_of
from .imagery import Picture, asset_picture, load_picture
from .regions import REGION_KINDS
from .sink import FrameSink

__all__ = ["Browser", "FindingsGallery", "thumbnail_jpeg"]

ALL = "(all)"
TILE_GREY = (200, 200, 200)
DIMMED = "#9a9a9a"  # the regions a finding does not name
PROPOSED = "#e8125c"  # a proposed (missing) box's dashes


def _live(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["deleted"].to_numpy(dtype=bool, na_value=False)]


def _outline(draw: Any, row: Mapping[Any, Any], w: float, h: float, color: str, width: int = 2) -> None:
    kind = row["kind"]
    if kind in ("box", "grounding"):
        x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return
        rotation = row.get("rotation")
        rot = 0.0 if rotation is None or rotation != rotation else float(rotation)
        corners = rotated_corners(x0, y0, x1, y1, rot, w, h) * (w, h)
        draw.polygon([tuple(p) for p in corners.tolist()], outline=color, width=width)
        return
    for part in row.get("points") or ():
        xy = np.asarray(part, dtype=float).reshape(-1, 2) * (w, h)
        xy = xy[np.isfinite(xy).all(axis=1)]
        pts = [tuple(p) for p in xy.tolist()]
        if kind == "polygon" and len(pts) >= 3:
            draw.polygon(pts, outline=color, width=width)
        elif kind == "polyline" and len(pts) >= 2:
            draw.line(pts, fill=color, width=width)
        elif kind == "keypoints":
            for x, y in pts:
                r = 1.25 + width / 1.6
                draw.ellipse((x - r, y - r, x + r, y + r), fill=color)


def thumbnail_jpeg(
    rows: pd.DataFrame,
    uri: Any,
    width: float,
    height: float,
    labels: pd.DataFrame | None = None,
    side: int = 200,
    picture: Picture | None = None,
    show_labels: bool = True,
    highlight: Collection[str] | None = None,
    proposed: Sequence[Sequence[float]] = (),
) -> bytes:
    """A thumbnail (longest side ``side``) of one asset's image with its regions outlined, as JPEG.

    ``picture`` is the image already read (through the backend); without it the image is read from ``uri``.
    ``highlight``: ids of rows drawn thick in their colour, the others thin and grey (a finding's rows);
    ``proposed``: boxes x0, y0, x1, y1 (in [0, 1]) drawn dashed (where a missing region would go).
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
    records = rows.to_dict("records")
    marked = set(highlight) if highlight is not None else None
    if marked is not None:  # the other regions first, dimmed, so the highlighted ones are drawn over them
        records.sort(key=lambda r: str(r.get("id")) in marked)
    for row in records:
        label = row.get("label")
        color = label_color(label if isinstance(label, str) else "(no label)", labels)
        if marked is None:
            _outline(draw, row, size[0], size[1], color)
        elif str(row.get("id")) in marked:
            _outline(draw, row, size[0], size[1], color, width=4)
        else:
            _outline(draw, row, size[0], size[1], DIMMED, width=1)
    for box in proposed:
        _dashed_box(draw, [float(v) for v in box], size)
    if show_labels:
        _label_names(draw, [r for r in records if marked is None or str(r.get("id")) in marked], size, labels)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _dashed_box(draw: Any, box: list[float], size: tuple[int, int], dash: float = 6.0) -> None:
    """A dashed rectangle (a proposed box), white under black so it shows on any image."""
    x0, y0, x1, y1 = box[0] * size[0], box[1] * size[1], box[2] * size[0], box[3] * size[1]
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        n = max(1, int(math.hypot(bx - ax, by - ay) // dash))
        for i in range(0, n, 2):
            t0, t1 = i / n, min(i + 1, n) / n
            seg = (ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1)
            draw.line(seg, fill="white", width=4)
            draw.line(seg, fill=PROPOSED, width=2)


def _label_names(draw: Any, records: list[dict[Any, Any]], size: tuple[int, int], labels: pd.DataFrame | None) -> None:
    """Each region's label on a plate of its colour, placed so that no two overlap."""
    from PIL import ImageFont

    font = ImageFont.load_default()
    todo = []
    for row in records:
        x0, y0, x1, y1 = (row.get(c) for c in ("x0", "y0", "x1", "y1"))
        label = row.get("label")
        if row.get("kind") not in REGION_KINDS or not isinstance(label, str):
            continue
        corners = [float(v) for v in (x0, y0, x1, y1) if isinstance(v, float) and math.isfinite(v)]
        if len(corners) < 4:
            continue
        w = draw.textlength(label, font=font) + 4
        todo.append(
            (label, (corners[0] * size[0], corners[1] * size[1], corners[2] * size[0], corners[3] * size[1], w))
        )
    spots = place_labels([t[1] for t in todo], (float(size[0]), float(size[1])))
    for (label, item), (x, y) in zip(todo, spots, strict=True):
        x, y = min(max(x, 0.0), max(size[0] - item[4], 0.0)), min(max(y, 0.0), size[1] - 12.0)
        draw.rectangle((x, y, x + item[4], y + 12), fill=label_color(label, labels))
        draw.text((x + 2, y), label, fill="white", font=font)


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
        self._quiet = False
        self._label = widgets.Dropdown(options=[ALL], description="label")
        self._kind = widgets.Dropdown(options=[ALL], description="kind")
        self._refresh_filters()
        for control in (self._label, self._kind):
            control.observe(lambda _: None if self._quiet else self.show_page(0), names="value")
        self._prev = widgets.Button(icon="arrow-left", tooltip="previous page", layout=widgets.Layout(width="36px"))
        self._next = widgets.Button(icon="arrow-right", tooltip="next page", layout=widgets.Layout(width="36px"))
        self._prev.on_click(lambda _: self.show_page(self.page - 1))
        self._next.on_click(lambda _: self.show_page(self.page + 1))
        self._where = widgets.HTML()
        self._grid = widgets.GridBox(layout=widgets.Layout(grid_template_columns=f"repeat({cols}, {side + 12}px)"))
        self._legend = widgets.HTML()
        self._editor_area = widgets.VBox()
        self._bar = widgets.HBox([self._label, self._kind, self._prev, self._next, self._where])
        style = widgets.HTML("<style>canvas.annotebook-thumb { cursor: pointer; }</style>")
        super().__init__([style, self._bar, self._legend, self._grid, self._editor_area])
        self.add_class("annotebook-gallery")
        self.show_page(0)

    def _refresh_filters(self) -> None:
        """The filters offer the labels and kinds the frame has now (an edit may have added or removed some)."""
        live = _live(self.frame)
        for control, column in ((self._label, "label"), (self._kind, "kind")):
            options = [ALL, *sorted(live[column].dropna().astype(str).unique())]
            if list(control.options) != options:
                value = control.value if control.value in options else ALL
                self._quiet = True  # one redraw, by the caller, not one per change
                try:
                    control.options = options
                    control.value = value
                finally:
                    self._quiet = False

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
        self._legend.value = self._legend_html(on_page)

    def _legend_html(self, on_page: list[str]) -> str:
        """The colour of each label shown on this page, with its count there."""
        live = _live(self.frame)
        shown = live[live["asset"].astype(str).isin(on_page).to_numpy(dtype=bool, na_value=False)]
        counts = shown["label"].dropna().astype(str).value_counts(sort=False)
        chips = "".join(
            f"<span style='margin-right:12px;white-space:nowrap'><span style='display:inline-block;width:11px;"
            f"height:11px;border-radius:2px;vertical-align:middle;background:{escape(label_color(name, self.labels))}'>"
            f"</span> {escape(name)} <span style='color:var(--jp-ui-font-color2)'>{n}</span></span>"
            for name, n in sorted((str(k), int(v)) for k, v in counts.items())
        )
        return f"<div class='annotebook-legend' style='color:var(--jp-ui-font-color1)'>{chips}</div>"

    def _card(self, asset: str, walk: list[str]) -> Any:
        info = self._info.info(asset)
        if asset not in self._thumbs:
            rows = _live(self.frame)
            rows = rows[(rows["asset"] == asset).to_numpy(dtype=bool, na_value=False)]
            picture, _ = asset_picture(asset, info.uri, info.width, info.height, self.frame, self._info.lookup)
            self._thumbs[asset] = thumbnail_jpeg(
                rows, None, info.width, info.height, self.labels, self.side, picture=picture
            )
        from ipycanvas import Canvas

        scale = self.side / max(info.width, info.height)
        w, h = max(1, round(info.width * scale)), max(1, round(info.height * scale))
        image = widgets.Image(value=self._thumbs[asset], format="jpeg")
        thumb = Canvas(width=w, height=h, layout=widgets.Layout(width=f"{w}px", height=f"{h}px"))
        thumb.add_class("annotebook-thumb")
        thumb.add_class(f"annotebook-thumb-{asset}")
        thumb.draw_image(image, 0, 0)
        thumb.on_client_ready(lambda: thumb.draw_image(image, 0, 0))
        thumb.on_mouse_down(lambda x, y: self.open_asset(asset, walk))
        thumb._annotebook_image = image  # kept alive with the canvas that draws it
        n = int(((self.frame["asset"] == asset) & ~self.frame["deleted"]).sum())
        button = widgets.Button(
            description=f"{info.name or asset} ({n})", tooltip="open in the editor",
            layout=widgets.Layout(width=f"{self.side}px"),
        )  # fmt: skip
        button.on_click(lambda _: self.open_asset(asset, walk))
        return widgets.VBox([thumb, button])

    def open_asset(self, asset: str, walk: list[str] | None = None) -> Editor:
        """Open the editor on ``asset`` below the grid; next / previous walk ``walk`` (the filtered assets)."""
        walk = walk or self.filtered()
        if asset not in walk:
            walk = [asset, *walk]
        if self.editor is not None:
            self.editor.close()
        editor = Editor(self.frame, target=walk, assets=self.assets, labels=self.labels)
        editor.state.open(asset)
        editor.render()
        close = widgets.Button(description="back to the gallery", icon="th", layout=widgets.Layout(width="auto"))
        close.on_click(lambda _: self.close_editor())
        self.editor = editor
        # the editor takes the grid's place, so it opens where the user is looking, not below a long grid
        self._grid.layout.display = self._legend.layout.display = self._bar.layout.display = "none"
        self._editor_area.children = [close, editor]
        return editor

    def close_editor(self) -> None:
        """Close the editor and redraw the thumbnails (its edits are in the frame)."""
        if self.editor is not None:
            self.editor.close()
        self.editor = None
        self._editor_area.children = []
        self._thumbs.clear()
        self._grid.layout.display = self._legend.layout.display = self._bar.layout.display = None
        self._refresh_filters()
        self.show_page(self.page)


class FindingsGallery(Browser):
    """The worst findings' assets (`annotebook.qa.worklist` order): the finding's rows drawn thick in their colour,
    the other regions thin and grey, proposed boxes of missing-region suspects dashed, and the reasons as the
    caption. A click opens the editor on that asset with the finding's row selected.

    >>> anns.annot.gallery(findings=anns.annot.qa())   # doctest: +SKIP
    """

    def __init__(self, frame: pd.DataFrame, findings: pd.DataFrame, assets: pd.DataFrame | None = None,
                 labels: pd.DataFrame | None = None, **options: Any):  # fmt: skip
        from ..qa.worklist import worklist

        self.items = worklist(findings).set_index("asset", drop=False)
        super().__init__(frame, assets, labels, **options)
        self.add_class("annotebook-findings-gallery")

    def filtered(self) -> list[str]:
        """The findings' assets, worst first, that match the label and kind filters."""
        order = [str(a) for a in self.items["asset"]]
        if self._label.value == ALL and self._kind.value == ALL:
            return order
        wanted = set(super().filtered())
        return [a for a in order if a in wanted]

    def _card(self, asset: str, walk: list[str]) -> Any:
        item: dict[Any, Any] = self.items.loc[asset].to_dict()
        if asset not in self._thumbs:
            info = self._info.info(asset)
            rows = _live(self.frame)
            rows = rows[(rows["asset"] == asset).to_numpy(dtype=bool, na_value=False)]
            picture, _ = asset_picture(asset, info.uri, info.width, info.height, self.frame, self._info.lookup)
            self._thumbs[asset] = thumbnail_jpeg(
                rows, None, info.width, info.height, self.labels, self.side, picture=picture,
                highlight=item["ids"], proposed=item["boxes"],
            )  # fmt: skip
        card = super()._card(asset, walk)
        reasons = "<br>".join(escape(str(d)) for d in item["details"])
        caption = widgets.HTML(
            f"<div class='annotebook-finding' style='font-size:11px;line-height:1.25;width:{self.side}px;"
            f"color:var(--jp-ui-font-color1);overflow-wrap:anywhere'>{reasons}</div>"
        )
        card.children = (*card.children, caption)
        return card

    def open_asset(self, asset: str, walk: list[str] | None = None) -> Editor:
        """Open the editor on ``asset`` with the finding's first row selected (when the row is still there)."""
        editor = super().open_asset(asset, walk)
        ids: tuple[str, ...] = self.items.loc[asset].to_dict()["ids"] if asset in self.items.index else ()
        live = set(_live(self.frame)["id"].astype(str))
        first = next((i for i in ids if i in live), None)
        if first is not None:
            editor.select_row(first)
        return editor
