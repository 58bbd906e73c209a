"""CSV four-corner and CSV width-height: Datature's box layouts, one CSV row per box.

Pixel convention: pixel edges like COCO (xmin=0, xmax=W spans the whole width), or [0, 1] of the image size.

The two layouts Datature imports and exports (headers as the documentation spells them):

    filename,xmin,ymin,xmax,ymax,label        csv_four_corner  (aliases: csvfourcorner, csv)
    filename,xmin,ymin,width,height,label     csv_width_height (alias: csvwidthheight)

The reader goes by the header, in any column order, and accepts the spellings other tools write (``x``, ``y``,
``x_min`` ..., ``class`` for ``label``; Datature Vi's page writes ``filename, x, y, width, height, class``); a
file without a header is read in the order above. A row with only a file name is an image without boxes.

Pixels or normalised: Datature "will do its best to infer" which a file holds. Our rule, per file: when every
coordinate of the file lies in [0, 1] it is normalised, otherwise pixels; ``normalized=True|False`` overrides it
(a pixel file whose boxes all lie within the first pixel would otherwise read as normalised). Pixels need the
image size: from ``assets=`` (a table with asset or name, width, height) or the image files beside the CSV;
without either, a pixel file is a FormatError naming the line. Writing defaults to normalised values, as
Datature's exports do by default (``"normalized": True`` in the SDKs' export options); ``normalized=False``
writes pixels and needs the sizes.

Exports come split into ``train.csv`` / ``validate.csv`` / ``test.csv``: reading a folder reads every CSV in it
and sets ``split`` from the file's stem; saving to a folder writes one file per split (rows without a split go to
``annotations.csv``); saving to a ``.csv`` path writes every row into that one file.

Sources: Datature Nexus "Uploading Annotations" (https://developers.datature.io/docs/uploading-annotations),
Datature Vi "Upload Annotations" (https://vi.developers.datature.com/docs/upload-annotations), the Nexus SDK's
``create_export`` options (``csv_fourcorner``, ``csv_widthheight``, ``normalized``; train.csv / validate.csv).

Keeps (`annotebook.formats._kept`, a write warns about the rest): score, split, status, author and attributes no.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import FormatError
from ._image_size import image_size
from ._io import head, read_text, write_files
from ._registry import FormatSpec, Tables, register_format
from ._rows import asset_sizes, carried, dataset_name, file_name, number, records, uri_beside

__all__ = [
    "csv_boxes_to_tables",
    "load_csv_boxes",
    "load_csv_four_corner",
    "load_csv_width_height",
    "save_csv_four_corner",
    "save_csv_width_height",
    "tables_to_csv_boxes",
]

FOUR_CORNER = "four_corner"
WIDTH_HEIGHT = "width_height"
HEADERS = {
    FOUR_CORNER: ("filename", "xmin", "ymin", "xmax", "ymax", "label"),
    WIDTH_HEIGHT: ("filename", "xmin", "ymin", "width", "height", "label"),
}
#: header spellings -> our field; "x"/"y" are the left / top edge in both layouts
SYNONYMS = {
    "filename": ("filename", "file_name", "file", "image", "image_name", "imagename", "image_path", "path"),
    "xmin": ("xmin", "x_min", "x", "x1", "left"),
    "ymin": ("ymin", "y_min", "y", "y1", "top"),
    "xmax": ("xmax", "x_max", "x2", "right"),
    "ymax": ("ymax", "y_max", "y2", "bottom"),
    "width": ("width", "w", "box_width", "bbox_width"),
    "height": ("height", "h", "box_height", "bbox_height"),
    "label": ("label", "class", "class_name", "classname", "tag", "category", "label_name"),
}
SPLITS = {
    "train": "train",
    "training": "train",
    "validate": "validate",
    "validation": "validate",
    "val": "validate",
    "valid": "validate",
    "test": "test",
    "testing": "test",
}


@dataclass
class _Row:
    """One parsed CSV row: the four numbers as written (pixels or normalised, undecided yet)."""

    file: str
    line: int
    asset: str
    label: str | None
    values: tuple[float, float, float, float] | None  # None: an image without boxes


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _layout_of(header: list[str]) -> tuple[str | None, dict[str, int] | None]:
    """(layout, column index per field) when ``header`` is a header row, else (None, None)."""
    names = [h.strip().lower().replace(" ", "_") for h in header]
    cols: dict[str, int] = {}
    for field, spellings in SYNONYMS.items():
        for i, name in enumerate(names):
            if name in spellings and i not in cols.values():
                cols.setdefault(field, i)
    if "filename" not in cols or "xmin" not in cols or "ymin" not in cols:
        return None, None
    if "xmax" in cols and "ymax" in cols:
        return FOUR_CORNER, cols
    if "width" in cols and "height" in cols:
        return WIDTH_HEIGHT, cols
    return None, None


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _columns(first: list[str], layout: str | None, file: str) -> tuple[str, dict[str, int], bool]:
    """(layout, columns, has_header) from the first row of a file."""
    found, cols = _layout_of(first)
    if found is not None and cols is not None:
        if layout is not None and found != layout:
            other = "xmax" if found == FOUR_CORNER else "width"
            raise FormatError(
                f"the header is the {found} layout (it has {other!r}), not {layout}",
                file=file,
                line=1,
                field=other,
            )
        return found, cols, True
    if len(first) >= 5 and all(_is_number(v) for v in first[1:5] if v.strip()):
        layout = layout or FOUR_CORNER
        return layout, {f: i for i, f in enumerate(HEADERS[layout])}, False
    raise FormatError(
        f"unrecognised header {first!r}; expected {','.join(HEADERS[layout or FOUR_CORNER])}",
        file=file,
        line=1,
        field="header",
    )


def _parse_row(cells: list[str], cols: dict[str, int], width: int, layout: str, file: str, line: int) -> _Row:
    label_last = cols.get("label") == width - 1
    if len(cells) != width and not (label_last and len(cells) == width - 1):
        raise FormatError(f"expected {width} fields, got {len(cells)}", file=file, line=line, field="field count")
    asset = cells[cols["filename"]].strip()
    if not asset:
        raise FormatError("empty file name", file=file, line=line, field="filename")
    label_i = cols.get("label")
    label = cells[label_i] if label_i is not None and label_i < len(cells) else ""
    fields = HEADERS[layout][1:5]
    raw = [cells[cols[f]].strip() for f in fields]
    if not any(raw) and not label:
        return _Row(file, line, asset, None, None)
    vals = tuple(number(v, file=file, line=line, field=f, text=True) for v, f in zip(raw, fields, strict=True))
    if layout == WIDTH_HEIGHT:
        for v, f in zip(vals[2:], fields[2:], strict=True):
            if v < 0:
                raise FormatError(f"box {f} must be >= 0, got {v!r}", file=file, line=line, field=f)
    elif vals[2] < vals[0] or vals[3] < vals[1]:
        f = "xmax" if vals[2] < vals[0] else "ymax"
        raise FormatError(f"{f} is less than its min ({vals})", file=file, line=line, field=f)
    return _Row(file, line, asset, label or None, (vals[0], vals[1], vals[2], vals[3]))


def parse_csv_boxes(text: str, *, file: str = "<csv>", layout: str | None = None) -> tuple[str, list[_Row]]:
    """(layout, rows) of one CSV text; the layout comes from the header (``layout`` for a headerless file)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    try:
        table = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise FormatError(f"malformed CSV: {exc}", file=file, field="csv") from exc
    numbered = [(i + 1, r) for i, r in enumerate(table) if any(c.strip() for c in r)]
    if not numbered:
        return layout or FOUR_CORNER, []
    layout, cols, has_header = _columns(numbered[0][1], layout, file)
    body = numbered[1:] if has_header else numbered
    width = len(numbered[0][1]) if has_header else len(HEADERS[layout])
    return layout, [_parse_row(cells, cols, width, layout, file, line) for line, cells in body]


def _is_normalised(rows: list[_Row]) -> bool:
    """The file's rule: normalised when every coordinate of the file lies in [0, 1]."""
    vals = [v for r in rows if r.values is not None for v in r.values]
    return bool(vals) and all(0.0 <= v <= 1.0 for v in vals)


def _box(row: _Row, layout: str, normalised: bool, size: tuple[int, int] | None) -> tuple[float, ...]:
    assert row.values is not None
    a, b, c, d = row.values
    if layout == WIDTH_HEIGHT:
        c, d = a + c, b + d
    if normalised:
        return (a, b, c, d)
    if size is None:
        raise FormatError(
            f"pixel coordinates need the size of image {row.asset!r}: pass assets= (asset, width, height), "
            "put the image beside the CSV, or pass normalized=True if the values are normalised",
            file=row.file,
            line=row.line,
            field="filename",
        )
    w, h = size
    return (a / w, b / h, c / w, d / h)


def csv_boxes_to_tables(
    texts: str | Mapping[str, str],
    *,
    layout: str | None = None,
    normalized: bool | None = None,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    dataset: str = "csv",
    root: Path | None = None,
) -> Tables:
    """The tables of one CSV text, or of ``{file name: text}`` (an export split into train.csv, validate.csv ...).

    ``sizes`` maps an asset (the CSV's file name) to its (width, height); ``split`` comes from each file's stem.

    >>> t = csv_boxes_to_tables("filename,xmin,ymin,xmax,ymax,label\\na.png,0,0,0.5,1,cat\\n")
    >>> t.annotations[["asset", "label", "x0", "x1", "y1"]].values.tolist()
    [['a.png', 'cat', 0.0, 0.5, 1.0]]
    """
    files = {"<csv>": texts} if isinstance(texts, str) else dict(texts)
    sizes = dict(sizes or {})
    rows: list[dict[str, Any]] = []
    assets: dict[str, None] = {}
    seen: dict[str, int] = {}
    for file, text in files.items():
        found, parsed = parse_csv_boxes(text, file=file, layout=layout)
        norm = _is_normalised(parsed) if normalized is None else normalized
        split = SPLITS.get(Path(file).stem.lower())
        for r in parsed:
            assets.setdefault(r.asset)
            if r.values is None:
                continue
            x0, y0, x1, y1 = _box(r, found, norm, sizes.get(r.asset))
            n = seen[r.asset] = seen.get(r.asset, -1) + 1
            rows.append(
                {
                    "dataset": dataset,
                    "asset": r.asset,
                    "id": f"{r.asset}#{n}",
                    "label": r.label,
                    "kind": "box",
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                    "rotation": 0.0,
                    "split": split,
                }
            )
    return _tables(rows, list(assets), sizes, dataset, root)


def _tables(
    rows: list[dict[str, Any]], assets: list[str], sizes: Mapping[str, tuple[int, int]], dataset: str, root: Path | None
) -> Tables:
    asset_rows = []
    for a in assets:
        w, h = sizes.get(a, (None, None))
        uri = uri_beside(root, a) if root is not None else None
        asset_rows.append(
            {
                "dataset": dataset,
                "asset": a,
                "name": a.replace("\\", "/").rsplit("/", 1)[-1],
                "width": w,
                "height": h,
                "uri": uri,
            }
        )
    labels = list(dict.fromkeys(r["label"] for r in rows if r["label"] is not None))
    return Tables(
        annotations=schema.annotations_frame(rows),
        assets=schema.assets_frame(asset_rows),
        labels=schema.labels_frame([{"dataset": dataset, "name": n, "index": i} for i, n in enumerate(labels)]),
    )


def _csv_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.csv") if p.is_file() and not p.name.startswith("."))
    return [path]


def load_csv_boxes(
    path: str | Path,
    *,
    layout: str | None = None,
    normalized: bool | None = None,
    assets: pd.DataFrame | None = None,
    dataset: str | None = None,
) -> Tables:
    """Read a CSV file, or a folder of them (train.csv, validate.csv, test.csv ...), in either layout."""
    path = Path(path)
    files = _csv_files(path)
    if not files:
        raise FormatError("no .csv file in this folder", file=str(path))
    root = path if path.is_dir() else path.parent
    texts = {str(f): read_text(f) for f in files}
    sizes = asset_sizes(assets)
    names = {r.asset for f, t in texts.items() for r in parse_csv_boxes(t, file=f, layout=layout)[1]}
    for name in sorted(names - set(sizes)):
        found = uri_beside(root, name)
        size = image_size(Path(found)) if found else None
        if size is not None:
            sizes[name] = size
    return csv_boxes_to_tables(
        texts, layout=layout, normalized=normalized, sizes=sizes, dataset=dataset or dataset_name(path), root=root
    )


def load_csv_four_corner(path: str | Path, **options: Any) -> Tables:
    """Read ``filename,xmin,ymin,xmax,ymax,label`` CSV (a file, or a folder of split files)."""
    return load_csv_boxes(path, layout=FOUR_CORNER, **options)


def load_csv_width_height(path: str | Path, **options: Any) -> Tables:
    """Read ``filename,xmin,ymin,width,height,label`` CSV (a file, or a folder of split files)."""
    return load_csv_boxes(path, layout=WIDTH_HEIGHT, **options)


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _fmt(x: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a trailing .0."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _cells(r: Mapping[str, Any], layout: str, size: tuple[int, int] | None, fname: str) -> list[str]:
    x0, y0, x1, y1 = (float(r[k]) for k in ("x0", "y0", "x1", "y1"))
    if size is not None:
        w, h = size
        x0, y0, x1, y1 = x0 * w, y0 * h, x1 * w, y1 * h
    c, d = (x1, y1) if layout == FOUR_CORNER else (x1 - x0, y1 - y0)
    label = "" if r.get("label") is None else str(r["label"])
    return [fname, _fmt(x0), _fmt(y0), _fmt(c), _fmt(d), label]


def _writable(anns: pd.DataFrame, skip: bool) -> pd.DataFrame:
    kinds = anns["kind"].to_numpy()
    rot = anns["rotation"].fillna(0.0).to_numpy(dtype=float)
    ok = [k == "box" and r == 0.0 for k, r in zip(kinds, rot, strict=True)]
    return carried(anns, ok, what="CSV box layouts", why="they hold unrotated boxes only", skip=skip)


def _render(lines: list[list[str]], layout: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADERS[layout])
    writer.writerows(lines)
    return buf.getvalue()


def tables_to_csv_boxes(
    tables: Tables,
    *,
    layout: str = FOUR_CORNER,
    normalized: bool = True,
    by_split: bool = True,
    empty_images: bool = False,
    skip_unsupported: bool = False,
) -> dict[str | None, str]:
    """CSV text per split (None: rows without a split, or every row when ``by_split`` is False).

    ``empty_images`` adds a row with only the file name for each asset without boxes (Datature does not
    document such rows; the reader accepts them).
    """
    anns = _writable(tables.annotations, skip_unsupported)
    sizes = asset_sizes(tables.assets)
    names = {r["asset"]: file_name(r["asset"], r.get("name")) for r in records(tables.assets[["asset", "name"]])}
    out: dict[str | None, list[list[str]]] = {}
    for r in records(anns):
        size = None if normalized else sizes.get(str(r["asset"]))
        if not normalized and size is None:
            raise FormatError(
                f"row {r['id']}: pixel output needs the width and height of asset {r['asset']!r}; "
                "give the assets table, or write normalized=True",
                field="width",
            )
        split = r.get("split") if by_split else None
        fname = names.get(r["asset"]) or file_name(r["asset"], None)
        out.setdefault(split, []).append(_cells(r, layout, size, fname))
    if empty_images:
        used = set(anns["asset"])
        for a in tables.assets["asset"]:
            if a not in used:
                out.setdefault(None, []).append([names.get(a) or str(a), "", "", "", "", ""])
    return {k: _render(v, layout) for k, v in out.items()} or {None: _render([], layout)}


def _save(tables: Tables, path: str | Path, layout: str, **options: Any) -> list[Path]:
    path = Path(path)
    single = path.suffix.lower() == ".csv"
    content = tables_to_csv_boxes(tables, layout=layout, by_split=not single, **options)
    if single:
        return write_files(path.parent, {path.name: content[None]})
    bad = [s for s in content if s is not None and (not s or s in (".", "..") or any(c in s for c in "/\\:"))]
    if bad:
        raise FormatError(f"split {bad[0]!r} cannot name a file; give the rows plain split names", field="split")
    files = {f"{'annotations' if split is None else split}.csv": text for split, text in content.items()}
    return write_files(path, files)


def save_csv_four_corner(tables: Tables, path: str | Path, **options: Any) -> list[Path]:
    """Write ``filename,xmin,ymin,xmax,ymax,label`` CSV: one file, or one per split in a folder."""
    return _save(tables, path, FOUR_CORNER, **options)


def save_csv_width_height(tables: Tables, path: str | Path, **options: Any) -> list[Path]:
    """Write ``filename,xmin,ymin,width,height,label`` CSV: one file, or one per split in a folder."""
    return _save(tables, path, WIDTH_HEIGHT, **options)


# ---------------------------------------------------------------------------------------------------------------
# Sniffing


def _header_layout(path: Path) -> str | None:
    """The layout a CSV file's header names; "" for a headerless numeric file; None otherwise."""
    first = head(path, 2048).decode("utf-8", "replace").split("\n", 1)[0].strip("\r")
    try:
        row = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    found, _ = _layout_of(row)
    if found is not None:
        return found
    return "" if len(row) >= 5 and all(_is_number(v) for v in row[1:5] if v.strip()) else None


def _sniff(path: Path, layouts: tuple[str, ...]) -> bool:
    if path.is_dir():
        files = [p for p in sorted(path.glob("*.csv"))[:4] if p.is_file()]
        files = files or [p for p in sorted(path.glob("*/*.csv"))[:4] if p.is_file()]
        return bool(files) and all(_header_layout(p) in layouts for p in files)
    return path.suffix.lower() == ".csv" and _header_layout(path) in layouts


def _sniff_four_corner(path: Path) -> bool:
    return _sniff(path, (FOUR_CORNER, ""))


def _sniff_width_height(path: Path) -> bool:
    return _sniff(path, (WIDTH_HEIGHT,))


register_format(
    FormatSpec(
        name="csv_four_corner",
        load=load_csv_four_corner,
        save=save_csv_four_corner,
        sniff=_sniff_four_corner,
        description="Datature CSV four-corner: filename,xmin,ymin,xmax,ymax,label (pixels or normalised)",
        aliases=("csvfourcorner", "csv_fourcorner", "csv"),
    )
)
register_format(
    FormatSpec(
        name="csv_width_height",
        load=load_csv_width_height,
        save=save_csv_width_height,
        sniff=_sniff_width_height,
        description="Datature CSV width-height: filename,xmin,ymin,width,height,label (pixels or normalised)",
        aliases=("csvwidthheight", "csv_widthheight"),
    )
)
