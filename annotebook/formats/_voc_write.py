"""Pascal VOC writing: one ``<annotation>`` document per asset, in VOC's 1-based whole pixels.

See `annotebook.formats.voc` for the convention; `tables_to_voc` is re-exported there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from ._export import (
    Rings,
    asset_table,
    carried,
    check_polygons,
    check_rows,
    file_name,
    polygon_rings,
    rows_by_asset,
    size_or_raise,
    supported_geometry,
)
from ._registry import Tables
from ._tree import TreeFiles, relative_name
from ._xml_text import escape

__all__ = ["DEFAULTS", "tables_to_voc", "voc_files"]

#: VOC's object fields and their defaults; a value equal to its default is not kept as an attribute
DEFAULTS: dict[str, Any] = {"pose": "Unspecified", "truncated": 0, "difficult": 0, "occluded": 0}


_FLAGS = ("pose", "truncated", "difficult")
_DEFAULT_FIELDS = "".join(f"\t\t<{t}>{DEFAULTS[t]}</{t}>\n" for t in _FLAGS)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xml(value: Any) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if _CONTROL.search(text):
        raise FormatError(f"{text!r} holds a control character XML cannot carry", field="label")
    return escape(text)


def _fields(attributes: Mapping[str, Any] | None) -> str:
    """The ``<pose>`` ... ``<attributes>`` lines of an object."""
    if not attributes:
        return _DEFAULT_FIELDS
    rest = dict(attributes)
    lines = []
    for tag in (*_FLAGS, "occluded"):
        value = rest.pop(tag, None if tag == "occluded" else DEFAULTS[tag])
        if value is not None:
            value = int(value) if isinstance(value, bool) else value  # devkit parsers read flags with int()
            lines.append(f"\t\t<{tag}>{_xml(value)}</{tag}>\n")
    if rest:
        pairs = "".join(
            f"\t\t\t<attribute>\n\t\t\t\t<name>{_xml(k)}</name>\n\t\t\t\t<value>{_xml(v)}</value>\n\t\t\t</attribute>\n"
            for k, v in rest.items()
        )
        lines.append(f"\t\t<attributes>\n{pairs}\t\t</attributes>\n")
    return "".join(lines)


def _pixel_edges(anns: pd.DataFrame, wh: np.ndarray) -> np.ndarray:
    """(n, 4) xmin, ymin, xmax, ymax in 1-based inclusive pixels: xmin = round(x0 * W) + 1, xmax = round(x1 * W)."""
    px = anns[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float) * np.column_stack([wh, wh])
    edges = np.floor(px + 0.5).astype(np.int64)
    edges[:, :2] += 1
    return edges


def _texts(values: np.ndarray) -> list[str]:
    """Whole numbers as text (``str``, as ``%d`` writes them). Pixel coordinates take a few thousand distinct values:
    each is written once, then looked up, which is several times faster than formatting two million numbers."""
    if not len(values):
        return []
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 1 << 16:
        return list(map(str, values.tolist()))
    table = np.array([str(v) for v in range(lo, hi + 1)], dtype=object)
    return table[values - lo].tolist()


def _polygon_template(n: int, number: str) -> str:
    pairs = "".join(f"<x{k}>{number}</x{k}><y{k}>{number}</y{k}>" for k in range(1, n // 2 + 1))
    return f"\t\t<polygon>{pairs}</polygon>\n"


def _polygon_texts(rings: Rings, wh: np.ndarray, n: int) -> list[str]:
    """Each of the ``n`` rows' ``<polygon>`` ("" for boxes): vertices as 1-based whole pixels, x = round(x * W) + 1.
    A ring whose last vertex would round onto its first keeps 6 decimals: read back, it would lose a vertex (or be
    refused)."""
    out = [""] * n
    rows, sizes = rings.rows, rings.sizes
    exact = rings.flat * np.repeat(wh[rows], sizes // 2, axis=0).ravel() + 1
    whole = np.floor(exact + 0.5).astype(np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    closed = (whole[starts] == whole[ends - 2]) & (whole[starts + 1] == whole[ends - 1]) if len(rows) else sizes > 0
    texts, templates = _texts(whole), {}
    for i, size, start, decimals in zip(rows.tolist(), sizes.tolist(), starts.tolist(), closed.tolist(), strict=True):
        values = tuple(exact[start : start + size].tolist()) if decimals else tuple(texts[start : start + size])
        if (size, decimals) not in templates:
            templates[size, decimals] = _polygon_template(size, "%.6f" if decimals else "%s")
        out[i] = templates[size, decimals] % values
    return out


def _objects(anns: pd.DataFrame, heads: Mapping[str, str], wh: np.ndarray) -> list[str]:
    """One ``<object>`` element per row, in the frame's order: ``heads`` opens each label's (``<name>``), and ``wh``
    holds each row's image (width, height)."""
    codes, names = pd.factorize(anns["label"])
    opening = [heads[name] for name in names]
    plain = [head + _DEFAULT_FIELDS for head in opening]  # the common object: VOC's default fields
    texts = _texts(_pixel_edges(anns, wh).ravel())  # xmin, ymin, xmax, ymax of row 0, then of row 1, ...
    rows = zip(
        codes.tolist(),
        anns["attributes"].tolist(),
        *(texts[j::4] for j in range(4)),
        _polygon_texts(polygon_rings(anns), wh, len(anns)),
        strict=True,
    )
    return [  # an f-string, not a % template: its literal text is not scanned again for every row
        f"{plain[label] if attrs is None else opening[label] + _fields(attrs)}\t\t<bndbox>\n\t\t\t<xmin>{a}</xmin>\n"
        f"\t\t\t<ymin>{b}</ymin>\n\t\t\t<xmax>{c}</xmax>\n\t\t\t<ymax>{d}</ymax>\n\t\t</bndbox>\n{polygon}\t</object>\n"
        for label, attrs, a, b, c, d, polygon in rows
    ]


def _document(path: str, size: tuple[int, int], objects: str) -> str:
    folder, _, name = path.rpartition("/")
    head_ = f"\t<folder>{_xml(folder)}</folder>\n" if folder else ""
    return (
        f"<annotation>\n{head_}\t<filename>{_xml(name)}</filename>\n\t<size>\n\t\t<width>{size[0]}</width>\n"
        f"\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
        f"{objects}</annotation>\n"
    )


def _xml_path(image: str) -> str:
    folder, _, name = image.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    return (folder + "/" if folder else "") + (stem if dot and stem else name) + ".xml"


def tables_to_voc(tables: Tables, *, skip_unsupported: bool = False, file: str | None = None) -> dict[str, str]:
    """One VOC document per asset as ``{relative .xml path: text}`` (the asset's folders mirrored).

    >>> from annotebook.formats.voc import VocDocument, VocObject, voc_to_tables
    >>> doc = VocDocument("a.xml", "a.jpg", 640, 480, [VocObject("cat", (1, 1, 640, 480), None, None)])
    >>> text = tables_to_voc(voc_to_tables([doc]))["a.xml"]
    >>> [line.strip() for line in text.splitlines() if "min>" in line or "max>" in line]
    ['<xmin>1</xmin>', '<ymin>1</ymin>', '<xmax>640</xmax>', '<ymax>480</ymax>']
    """
    return dict(voc_files(tables, skip_unsupported=skip_unsupported, file=file))


def voc_files(tables: Tables, *, skip_unsupported: bool = False, file: str | None = None) -> TreeFiles:
    """`tables_to_voc`'s files, checked now and each built only as it is iterated (what `save_voc` writes).

    The checks a whole frame passes at once (rows, polygons, sizes, file names, label names) come first; an
    attribute XML cannot carry is found as its document is built, and `write_tree` then leaves nothing behind.
    """
    anns = tables.annotations
    anns = carried(anns, supported_geometry(anns), what="Pascal VOC", skip=skip_unsupported, file=file)
    check_rows(anns, file)
    check_polygons(anns, file)
    assets = asset_table(tables.assets, anns)
    columns = (assets[c].tolist() for c in ("asset", "name", "width", "height", "uri"))
    sizes, paths = {}, {}
    for asset, name, w, h, uri in zip(*columns, strict=True):
        sizes[asset] = size_or_raise(asset, w, h, uri, what="Pascal VOC", file=file)
        try:
            paths[asset] = relative_name(file_name(asset, name))
        except ValueError:
            raise FormatError(f"asset {asset!r} has no usable file name", file=file, field="name") from None
    heads = {name: f"\t<object>\n\t\t<name>{_xml(name)}</name>\n" for name in anns["label"].unique()}
    xml_paths: dict[str, str] = {}
    for asset, image in paths.items():
        xml_path = _xml_path(image)
        if xml_path in xml_paths:
            raise FormatError(f"two assets would share the file {xml_path} (one is {asset!r})", file=file)
        xml_paths[xml_path] = image
    groups = rows_by_asset(anns, list(paths), file)
    wh = np.array(list(sizes.values()), dtype=float).reshape(-1, 2)
    frame = anns[["label", "x0", "y0", "x1", "y1", "kind", "points", "attributes"]]  # what the objects read

    def documents() -> Iterator[str]:
        objects = groups.texts(lambda rows, owners: _objects(frame.iloc[rows], heads, wh[owners]))
        for image, size, text in zip(paths.values(), sizes.values(), objects, strict=True):
            yield _document(image, size, text)

    return TreeFiles(list(xml_paths), documents)
