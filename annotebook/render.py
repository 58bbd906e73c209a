"""Static pictures of the annotations table: one asset with its regions, a gallery, label counts.

matplotlib and Pillow are imported inside the functions, so importing this module is cheap. Functions
that take ``ax=None`` draw on a new pyplot figure (shown inline by Jupyter) and return the Axes; `gallery`
returns a bare `matplotlib.figure.Figure`, which Jupyter displays once and pyplot does not keep.

Regions are drawn in pixel coordinates: normalised coordinates times the asset's ``width`` / ``height`` from
the assets table, with the image spanning ``[0, width] x [0, height]`` (pixel edges, y down). Rows with
``deleted`` set are never drawn or counted. Every artist drawn for a row carries the row's ``id`` as its gid
(``artist.get_gid()``), so a test or a tool can find what was drawn for which row.

Examples
--------
>>> import pandas as pd
>>> from annotebook import schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "box",
...                                    "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}])
>>> summary(anns)[["label", "kind", "count", "assets"]].values.tolist()
[['cat', 'box', 1, 1]]
"""

from __future__ import annotations

import io
import math
import pathlib
import sys
import urllib.parse
import urllib.request
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .colors import label_color

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = ["asset_image", "gallery", "image_file", "label_color", "load_image", "plot_labels", "show_asset", "summary"]

PLACEHOLDER_GREY = 0.82
THUMBNAIL_SIDE = 480
KIND_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
Row = Mapping[Hashable, Any]  # one row of a table, as ``to_dict`` gives it


# ----------------------------------------------------------------------------------------------------
# Pixels


def _source(uri: str) -> str | io.BytesIO:
    """A local path for Pillow, or the bytes of an ``http(s):`` URL."""
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    if scheme == "file":
        return urllib.request.url2pathname(urllib.parse.urlparse(uri).path)
    if scheme in ("http", "https"):
        import httpx

        try:
            response = httpx.get(uri, timeout=30.0, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise OSError(f"could not fetch {uri}: {exc}") from exc
        return io.BytesIO(response.content)
    return str(pathlib.Path(uri).expanduser())


def load_image(uri: str) -> Image.Image:
    """Read the image at ``uri`` (a path, ``file:`` or ``http(s):`` URL): upright (EXIF applied), RGB.

    >>> load_image("/no/such/file.png")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileNotFoundError: ...
    """
    from PIL import Image, ImageOps

    with Image.open(_source(uri)) as image:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return image.convert("RGB")


def _traced_backend(frames: Iterable[pd.DataFrame | None]) -> tuple[Any, str] | None:
    """(backend, dataset) of the load the first traced frame comes from; None for hand-built frames."""
    from .errors import AnnotebookError

    token = next((t for f in frames if f is not None and "load" in f.columns for t in f["load"].dropna()), None)
    if token is None:
        return None
    from .connection import connection_for
    from .sync.registry import registry

    try:
        name, spec, dataset = registry().load_info(str(token))
        return connection_for(name, spec).backend, dataset
    except AnnotebookError:  # a load of another home or machine, a platform without its key here: use the uri
        return None


def image_file(asset: str, uri: Any, *frames: pd.DataFrame | None) -> str | None:
    """Where to read ``asset``'s pixels: its backend's local copy when one of ``frames`` is traced to a load,
    else ``uri`` as the assets table has it (None: no image).

    Pictures and the editor go through the backend's ``image_path`` because a platform's ``uri`` is a signed URL:
    fetched directly it would download again for every picture and fail once it expires, where the backend keeps
    the file after the first download and asks for a fresh URL when needed. A failed download raises the
    backend's `annotebook.errors.BackendError`.
    """
    traced = _traced_backend(frames)
    if traced is None:
        return uri if isinstance(uri, str) and uri else None
    backend, dataset = traced
    found: str | None = backend.image_path(dataset, asset)
    return found


def asset_image(asset: str, uri: Any, *frames: pd.DataFrame | None) -> tuple[Image.Image | None, str]:
    """The asset's image (upright, RGB) read through `image_file`, or None and why not: every picture and the
    editor show the reason in place of the image rather than fail.

    >>> asset_image("a.jpg", None)
    (None, 'no image')
    """
    from PIL import Image

    from .errors import AnnotebookError

    try:
        where = image_file(asset, uri, *frames)
    except AnnotebookError as exc:
        return None, f"cannot read image: {type(exc).__name__}"
    if not where:
        return None, "no image"
    try:
        return load_image(where), ""
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"cannot read image: {type(exc).__name__}"


def _try_load(asset: str, row: Row | None, *frames: pd.DataFrame | None) -> tuple[Image.Image | None, str]:
    return asset_image(asset, row.get("uri") if row is not None else None, *frames)


# ----------------------------------------------------------------------------------------------------
# Rows and assets


def _live(anns: pd.DataFrame) -> pd.DataFrame:
    """The rows that are not deleted."""
    if "deleted" not in anns.columns:
        return anns
    return anns[~anns["deleted"].fillna(False).astype(bool)]


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _asset_row(assets: pd.DataFrame, asset: str) -> Row | None:
    hit = assets[assets["asset"] == asset]
    return hit.iloc[0].to_dict() if len(hit) else None


def _size(row: Row | None, image: Any) -> tuple[float, float]:
    """Width and height in pixels: the assets table's, else the image's, else 1 x 1 (normalised)."""
    if row is not None and not pd.isna(row.get("width")) and not pd.isna(row.get("height")):
        return float(row["width"]), float(row["height"])
    if image is not None:
        h, w = np.asarray(image).shape[:2]
        return float(w), float(h)
    return 1.0, 1.0


def _asset_rows(anns: pd.DataFrame, asset: str, row: Row | None) -> pd.DataFrame:
    mask = anns["asset"] == asset
    dataset = _text(row.get("dataset")) if row is not None else None
    if dataset is not None and "dataset" in anns.columns:
        mask &= (anns["dataset"] == dataset).fillna(False) | anns["dataset"].isna()
    return _live(anns[mask.fillna(False)])


def _row_color(r: Row, labels: pd.DataFrame | None) -> str:
    return label_color(_text(r.get("label")) or _text(r.get("text")) or str(r.get("kind")), labels)


# ----------------------------------------------------------------------------------------------------
# One region per kind; each returns the (x, y) in pixels where its label text goes


def _draw_box(ax: Axes, r: Row, size: tuple[float, float], color: str) -> tuple[float, float]:
    from matplotlib.patches import Rectangle

    w, h = size
    x0, y0 = r["x0"] * w, r["y0"] * h
    rotation = 0.0 if pd.isna(r.get("rotation")) else float(r["rotation"])
    dashed = r["kind"] == "grounding"
    # y points down on screen, so matplotlib's counter-clockwise angle shows clockwise, as the contract says
    patch = Rectangle(
        (x0, y0),
        (r["x1"] - r["x0"]) * w,
        (r["y1"] - r["y0"]) * h,
        angle=rotation,
        rotation_point="center",
        fill=False,
        edgecolor=color,
        linewidth=1.8,
        linestyle="--" if dashed else "-",
        gid=r["id"],
    )
    ax.add_patch(patch)
    return x0, y0


def _parts(r: Row, size: tuple[float, float]) -> list[np.ndarray]:
    w, h = size
    return [np.asarray(p, dtype=float).reshape(-1, 2) * (w, h) for p in (r.get("points") or ())]


def _signed_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0


def _ring_path(parts: list[np.ndarray], closed: bool) -> Any:
    """One compound path; later closed rings run the other way round, so an inner ring is a hole."""
    from matplotlib.path import Path

    vertices, codes = [], []
    for k, xy in enumerate(parts):
        if closed and (_signed_area(xy) > 0) != (k == 0):
            xy = xy[::-1]
        vertices += [*xy, xy[0]] if closed else list(xy)
        codes += [Path.MOVETO] + [Path.LINETO] * (len(xy) - 1) + ([Path.CLOSEPOLY] if closed else [])
    return Path(np.asarray(vertices, dtype=float), codes)


def _draw_lines(ax: Axes, r: Row, size: tuple[float, float], color: str) -> tuple[float, float]:
    from matplotlib.colors import to_rgba
    from matplotlib.patches import PathPatch

    closed = r["kind"] == "polygon"
    parts = [p for p in _parts(r, size) if len(p) >= (3 if closed else 2)]
    if parts:
        face = to_rgba(color, 0.25) if closed else "none"
        path = _ring_path(parts, closed)
        ax.add_patch(PathPatch(path, facecolor=face, edgecolor=color, linewidth=1.6, gid=r["id"]))
    return r["x0"] * size[0], r["y0"] * size[1]


def _skeleton(labels: pd.DataFrame | None, label: str | None) -> tuple[tuple[int, int], ...]:
    if labels is None or label is None or "skeleton" not in labels.columns:
        return ()
    given = labels.loc[labels["name"] == label, "skeleton"].dropna()
    return tuple(given.iloc[0]) if len(given) else ()


def _draw_keypoints(
    ax: Axes, r: Row, size: tuple[float, float], color: str, labels: pd.DataFrame | None
) -> tuple[float, float]:
    from matplotlib.collections import LineCollection

    xy = _parts(r, size)[0] if r.get("points") else np.empty((0, 2))
    given = np.asarray(r.get("visibility") or (), dtype=int)[: len(xy)]
    visibility = np.concatenate([given, np.full(len(xy) - len(given), 2)])  # unstated: visible
    shown = (visibility > 0) & np.isfinite(xy).all(axis=1)
    pairs = [(i, j) for i, j in _skeleton(labels, _text(r.get("label"))) if max(i, j) < len(xy)]
    segments = [xy[[i, j]] for i, j in pairs if shown[i] and shown[j]]
    if segments:
        ax.add_collection(LineCollection(segments, colors=color, linewidths=1.4, gid=r["id"]))
    for vis, face in ((2, color), (1, "none")):
        pts = xy[shown & (visibility == vis)]
        if len(pts):
            ax.plot(
                pts[:, 0],
                pts[:, 1],
                linestyle="none",
                marker="o",
                markersize=5,
                markeredgecolor=color,
                markerfacecolor=face,
                markeredgewidth=1.4,
                gid=r["id"],
            )
    return r["x0"] * size[0], r["y0"] * size[1]


def _region_text(r: Row) -> str:
    label, phrase = _text(r.get("label")), _text(r.get("text"))
    if r["kind"] == "grounding" and phrase:
        return f"{label}: {phrase}" if label and label != phrase else phrase
    return label or str(r["kind"])


def _draw_region(ax: Axes, r: Row, size: tuple[float, float], labels: pd.DataFrame | None, show_labels: bool) -> None:
    if not all(math.isfinite(r[c]) for c in ("x0", "y0", "x1", "y1")):
        return  # no extent: invalid geometry that validate() names; a picture leaves it out
    color = _row_color(r, labels)
    if r["kind"] in ("box", "grounding"):
        anchor = _draw_box(ax, r, size, color)
    elif r["kind"] in ("polygon", "polyline"):
        anchor = _draw_lines(ax, r, size, color)
    else:
        anchor = _draw_keypoints(ax, r, size, color, labels)
    if show_labels and not any(pd.isna(v) for v in anchor):
        ax.text(
            *anchor,
            _region_text(r),
            fontsize=7,
            color="white",
            ha="left",
            va="bottom",
            clip_on=True,
            bbox={"facecolor": color, "edgecolor": "none", "alpha": 0.85, "pad": 1.0},
            gid=r["id"],
        )


# ----------------------------------------------------------------------------------------------------
# The whole-asset rows and the image


def _footer(
    rows: pd.DataFrame, captions: Mapping[str, str] | None = None, labels: pd.DataFrame | None = None
) -> list[list[tuple[str, str | None]]]:
    """The lines under the image, each a list of (text, highlight colour or None) segments.

    Tags on one line, then each caption, with the spans of its grounded phrases highlighted in their colour
    (a caption held outside the frame, given in ``captions`` by id, is shown for the phrases that point at it),
    then each question/answer; wrapped at 70 characters.
    """
    lines: list[list[tuple[str, str | None]]] = []
    tags = []
    for r in rows[rows["kind"] == "tag"].to_dict("records"):
        name = _text(r.get("label")) or "?"
        value = r.get("value")
        tags.append(name + "?" if pd.isna(value) else name if value else f"not {name}")
    if tags:
        lines += _wrap([("tags: " + ", ".join(tags), None)])
    grounding = rows[rows["kind"] == "grounding"].to_dict("records")
    shown = {str(r["id"]): _text(r.get("text")) or "" for r in rows[rows["kind"] == "caption"].to_dict("records")}
    for r in grounding:  # phrases whose caption is not among the rows: show it from ``captions``
        parent = _text(r.get("parent"))
        if parent and parent not in shown and captions and parent in captions:
            shown[parent] = captions[parent]
    for cap_id, text in shown.items():
        spans = sorted(
            (int(r["span_start"]), int(r["span_end"]), _row_color(r, labels))
            for r in grounding
            if _text(r.get("parent")) == cap_id and not pd.isna(r.get("span_start")) and not pd.isna(r.get("span_end"))
        )  # fmt: skip
        segments: list[tuple[str, str | None]] = [("“", None)]
        at = 0
        for start, end, color in spans:
            if start < at or end > len(text):
                continue  # overlapping or out of range: validate() names it; the picture shows the first
            segments += [(text[at:start], None), (text[start:end], color)]
            at = end
        segments += [(text[at:], None), ("”", None)]
        lines += _wrap([seg for seg in segments if seg[0]])
    for r in rows[rows["kind"] == "qa"].to_dict("records"):
        lines += _wrap([(f"Q: {_text(r.get('text')) or ''}  A: {_text(r.get('answer')) or ''}", None)])
    return lines


def _wrap(segments: list[tuple[str, str | None]], width: int = 70) -> list[list[tuple[str, str | None]]]:
    """Split segments into lines of at most ``width`` characters, breaking at spaces (a long word stays whole)."""
    lines: list[list[tuple[str, str | None]]] = [[]]
    used = 0
    for text, color in segments:
        for word in _words(text):
            if used + len(word.rstrip()) > width and used:
                lines.append([])
                used = 0
                word = word.lstrip() or word
            line = lines[-1]
            if line and line[-1][1] == color:
                line[-1] = (line[-1][0] + word, color)
            else:
                line.append((word, color))
            used += len(word)
    return [line for line in lines if line]


def _words(text: str) -> list[str]:
    """``text`` cut after each space, so the pieces join back to it."""
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == " ":
            out.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        out.append(text[start:])
    return out


def footer_text(ax: Axes) -> str:
    """The text written under a picture by `show_asset` (tags, captions, questions), one line each."""
    box: Any = next((a for a in ax.artists if a.get_gid() == "annotebook-footer"), None)
    if box is None:
        return ""
    from matplotlib.offsetbox import TextArea

    lines: list[str] = []
    for row in box.get_child().get_children():
        lines.append("".join(t.get_text() for t in row.get_children() if isinstance(t, TextArea)))
    return "\n".join(lines)


def _draw_image(ax: Axes, image: Any, size: tuple[float, float], problem: str) -> None:
    w, h = size
    if image is None:
        ax.imshow(np.full((1, 1, 3), PLACEHOLDER_GREY), extent=(0, w, h, 0), interpolation="nearest")
        ax.text(w / 2, h / 2, problem or "no image", ha="center", va="center", fontsize=8, color="0.35")
    else:
        ax.imshow(np.asarray(image), extent=(0, w, h, 0))


def _draw_rows(
    ax: Axes,
    rows: pd.DataFrame,
    size: tuple[float, float],
    labels: pd.DataFrame | None,
    show_labels: bool,
    captions: Mapping[str, str] | None = None,
) -> None:
    """The regions in table order, then the whole-asset rows as text under the image."""
    regions = rows[rows["kind"].isin(["box", "grounding", "polygon", "polyline", "keypoints"])]
    for r in regions.to_dict("records"):
        _draw_region(ax, r, size, labels, show_labels)
    lines = _footer(rows, captions, labels)
    if lines:
        from matplotlib.offsetbox import AnchoredOffsetbox, HPacker, TextArea, VPacker

        def area(text: str, color: str | None) -> TextArea:
            props: dict[str, Any] = {"fontsize": 7}
            if color is not None:  # a grounded phrase: white on its colour, like its box's label
                props |= {"color": "white", "bbox": {"facecolor": color, "edgecolor": "none", "pad": 0.6}}
            return TextArea(text, textprops=props)

        rows_box: list[Any] = [
            HPacker(children=[area(t, c) for t, c in line], pad=0, sep=0, align="baseline") for line in lines
        ]
        box = AnchoredOffsetbox(
            loc="upper left", child=VPacker(children=rows_box, pad=0, sep=2, align="left"), pad=0.1, borderpad=0,
            frameon=False, bbox_to_anchor=(0, -0.01), bbox_transform=ax.transAxes,
        )  # fmt: skip
        box.set_gid("annotebook-footer")
        ax.add_artist(box)


def _new_axes() -> Axes:
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6.4, 4.8))
    return ax


def show_asset(
    anns: pd.DataFrame,
    assets: pd.DataFrame,
    asset: str,
    ax: Axes | None = None,
    labels: pd.DataFrame | None = None,
    show_labels: bool = True,
    image: Image.Image | np.ndarray | None = None,
    captions: Mapping[str, str] | None = None,
) -> Axes:
    """Draw ``asset``'s image with its non-deleted rows; returns the Axes.

    ``image`` skips loading (any size: it is stretched to the assets table's size). A missing or unreadable
    image gives a grey placeholder of the asset's size with the reason written on it; an asset missing from
    ``assets`` is drawn on a 1 x 1 placeholder in normalised coordinates. Tags, captions and questions are
    listed under the image (`footer_text` reads them back), each caption with its grounded phrases highlighted in
    their colours; ``captions`` (caption id -> text) supplies the caption of phrases whose caption row is not in
    ``anns``. ``show_labels=False`` leaves out the text beside each region.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> from annotebook import schema
    >>> assets = schema.assets_frame([{"dataset": "d", "asset": "a", "width": 64, "height": 48}])
    >>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "box",
    ...                                    "x0": 0.1, "y0": 0.1, "x1": 0.5, "y1": 0.5}])
    >>> len(show_asset(anns, assets, "a").patches)
    1
    """
    row = _asset_row(assets, asset)
    problem = ""
    if image is None and row is not None:
        image, problem = _try_load(asset, row, anns, assets)
    size = _size(row, image)
    ax = _new_axes() if ax is None else ax
    _draw_image(ax, image, size, problem if row is not None else "asset not in the assets table")
    _draw_rows(ax, _asset_rows(anns, asset, row), size, labels, show_labels, captions)
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title((_text(row.get("name")) if row is not None else None) or asset, fontsize=9)
    return ax


# ----------------------------------------------------------------------------------------------------
# Many assets, and counts


def _gallery_assets(anns: pd.DataFrame, assets: pd.DataFrame, subset: Iterable[str] | None) -> list[str]:
    """Assets table order first, then assets only the frame names, in the frame's order."""
    if subset is not None:
        return list(dict.fromkeys(subset))
    in_frame = list(dict.fromkeys(anns["asset"].dropna()))
    if not in_frame:
        return list(dict.fromkeys(assets["asset"].dropna()))
    wanted = set(in_frame)
    known = [a for a in dict.fromkeys(assets["asset"].dropna()) if a in wanted]
    return known + [a for a in in_frame if a not in set(known)]


def _thumbnail(anns: pd.DataFrame, assets: pd.DataFrame, asset: str) -> Image.Image | None:
    row = _asset_row(assets, asset)
    image, _ = _try_load(asset, row, anns, assets) if row is not None else (None, "")
    if image is not None:
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return image


def gallery(
    anns: pd.DataFrame,
    assets: pd.DataFrame,
    n: int = 12,
    cols: int = 4,
    labels: pd.DataFrame | None = None,
    assets_subset: Iterable[str] | None = None,
) -> Figure:
    """A grid of `show_asset` pictures of the first ``n`` assets; returns a `matplotlib.figure.Figure`.

    Which assets, in order: ``assets_subset`` as given; else the assets that have rows in ``anns``, in the
    assets table's order (then any the table lacks, in the frame's order); else, for an empty frame, the
    table's assets.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> from annotebook import schema
    >>> assets = schema.assets_frame([{"dataset": "d", "asset": "a", "width": 64, "height": 48}])
    >>> len(gallery(schema.annotations_frame(), assets).axes)
    1
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # a Figure made without pyplot shows in IPython only once the inline backend is loaded; load it when it is the
    # backend and not loaded yet (then no pyplot figure exists, so switch_backend closes nothing)
    if "matplotlib_inline" in plt.get_backend() and "matplotlib_inline.backend_inline" not in sys.modules:
        plt.switch_backend(plt.get_backend())

    chosen = _gallery_assets(anns, assets, assets_subset)[: max(n, 0)]
    cols = max(1, min(cols, len(chosen)))
    nrows = max(1, math.ceil(len(chosen) / cols))
    fig = Figure(figsize=(3.2 * cols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, asset in zip(axes, chosen, strict=False):
        image = _thumbnail(anns, assets, asset)
        show_asset(anns, assets, asset, ax=ax, labels=labels, image=image)
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    return fig


def summary(anns: pd.DataFrame) -> pd.DataFrame:
    """Counts of non-deleted rows per label and kind: columns label, kind, count, assets; largest count first.

    >>> from annotebook import schema
    >>> summary(schema.annotations_frame()).columns.tolist()
    ['label', 'kind', 'count', 'assets']
    """
    live = _live(anns)
    grouped = live.groupby(["label", "kind"], dropna=False, sort=True)
    out = grouped.agg(count=("asset", "size"), assets=("asset", "nunique")).reset_index()
    out = out.astype({"label": anns["label"].dtype, "kind": anns["kind"].dtype, "count": "int64", "assets": "int64"})
    out = out.sort_values(["count", "label", "kind"], ascending=[False, True, True], kind="stable")
    return out.reset_index(drop=True)[["label", "kind", "count", "assets"]]


def plot_labels(anns: pd.DataFrame, ax: Axes | None = None, labels: pd.DataFrame | None = None) -> Axes:
    """Horizontal bars of non-deleted rows per label (most first), stacked by kind (hatched); returns Axes.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> from annotebook import schema
    >>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "label": "cat", "kind": "tag"}])
    >>> len(plot_labels(anns).patches)
    1
    """
    counts = summary(anns).assign(label=lambda t: t["label"].fillna("(no label)"))
    table = counts.pivot_table(index="label", columns="kind", values="count", aggfunc="sum", fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    ax = _new_axes() if ax is None else ax
    if table.empty:
        ax.text(0.5, 0.5, "no rows", transform=ax.transAxes, ha="center", va="center")
        return ax
    names = [str(name) for name in table.index]
    colors = [label_color(name, labels) for name in names]
    y, left = np.arange(len(names)), np.zeros(len(names))
    for k, kind in enumerate(table.columns):
        values = table[kind].to_numpy(dtype=float)
        some = values > 0  # one bar per (label, kind) that has rows: as many bars as `summary` has rows
        ax.barh(
            y[some],
            values[some],
            left=left[some],
            color=np.asarray(colors)[some].tolist(),
            edgecolor="white",
            hatch=KIND_HATCHES[k % len(KIND_HATCHES)],
            label=str(kind),
        )
        left += values
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("rows")
    if len(table.columns) > 1:
        ax.legend(handles=_kind_handles(table.columns), title="kind", fontsize=8)
    return ax


def _kind_handles(kinds: Iterable[Any]) -> list[Any]:
    """Legend entries showing each kind's hatch on grey, since bar colours belong to labels."""
    from matplotlib.patches import Patch

    return [
        Patch(facecolor="0.55", edgecolor="white", hatch=KIND_HATCHES[k % len(KIND_HATCHES)], label=str(kind))
        for k, kind in enumerate(kinds)
    ]
