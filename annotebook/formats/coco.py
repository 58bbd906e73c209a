"""COCO JSON: object detection, instance segmentation and keypoints in one file (images, annotations, categories).

Pixel convention: bbox ``[x, y, w, h]``, polygons and keypoints in pixels on pixel edges: x / width is normalised.

Sources: the COCO data format page (https://cocodataset.org/#format-data: ``segmentation`` is RLE or a list of
polygons, ``iscrowd``, ``area``, keypoints ``[x, y, v]`` with v=0 not labelled, 1 labelled but not visible,
2 visible, ``skeleton`` of 1-based keypoint pairs) and pycocotools' ``coco.py`` / ``mask.py`` (RLE ``size`` is
``[height, width]``; a single object may be several polygons, whose union is the object).

How a file maps to the tables (``docs/data-model.md``, "Files"):

- **assets**: ``asset`` and ``name`` from ``file_name`` (``name`` its last component), ``width``, ``height``;
  extra columns ``image_id`` (the COCO image id, reused on write) and, when the file has them, ``license``,
  ``coco_url``, ``flickr_url``, ``date_captured``. The file's ``info`` and ``licenses`` ride along in
  ``assets.attrs["coco"]`` (pandas may drop attrs: pass ``info=`` / ``licenses=`` to `save_coco` to be sure).
- **labels**: ``index`` = category id, ``name``, ``keypoints`` (point names), ``skeleton`` (0-based pairs: COCO's
  1-based pairs minus one, plus one again on write); extra column ``supercategory``.
- **annotations**: one row per annotation, ``id`` = the annotation id. Polygon segmentation (one or more polygons)
  makes a ``polygon`` row whose rings are the polygons (extent from the points; the file's bbox is not kept).
  No segmentation makes a ``box`` row from ``bbox``. An RLE mask makes a ``box`` row of its ``bbox`` with
  attributes ``mask="rle"``, ``rle_counts``, ``rle_size`` (written back as the same RLE). Labelled keypoints make a
  ``keypoints`` row (v=0 points are NaN with visibility 0): the annotation's own row when it has no segmentation and
  its bbox is the keypoints' extent, else a second row ``<id>#keypoints`` beside the box / polygon row, so neither
  the person's box or outline nor its keypoints is lost; on write the two become one annotation again.
- **attributes**: ``area`` only when it differs from the geometry's own area (box w*h, polygon shoelace sum), so a
  rasterised mask area survives a round trip; ``iscrowd: 1`` when set; the annotation's ``attributes`` object
  (CVAT writes one) merged in; ``score`` (results files) fills the ``score`` column.

Writing: ``bbox`` from the box or the extent of the polygon / keypoints; ``area`` from ``attributes["area"]`` when
present (``recompute_area=True`` ignores it, e.g. after editing geometry), else computed; annotations of a category
with keypoint names carry all-zero keypoints when they have none. Rows COCO cannot carry (tags, captions, groundings,
QA, polylines, rotated boxes) raise `FormatError` unless ``skip_unsupported=True``.

>>> from annotebook.formats import coco
>>> t = coco.coco_to_tables({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 20}],
...     "categories": [{"id": 3, "name": "cat"}],
...     "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]})
>>> t.annotations[["id", "label"]].iloc[0].tolist(), t.annotations[["x0", "y0", "x1", "y1"]].to_numpy()[0].tolist()
(['7', 'cat'], [0.1, 0.1, 0.4, 0.3])

Keeps (`annotebook.formats._kept`, a write warns about the rest): score yes, split no, status no, author no,
attributes yes, any JSON value with its type.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from . import _coco_read as read
from ._coco_annotations import KINDS, annotation_columns
from ._coco_write import carried_rows, coco_document
from ._io import atomic_write, gc_paused, head
from ._json_paths import Where
from ._registry import FormatSpec, Tables, register_format

try:  # orjson parses and writes several times faster than json; optional
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]

__all__ = ["coco_to_tables", "dumps", "load_coco", "parse", "save_coco", "tables_to_coco"]


def parse(data: bytes | str, file: str | None = None) -> Any:
    """The JSON document in ``data`` (a BOM is dropped); malformed JSON is a `FormatError` naming the line."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(raw) if orjson is not None else json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:  # orjson.JSONDecodeError is a subclass
        raise FormatError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})", file=file) from exc
    except RecursionError:
        raise FormatError("JSON nested too deeply to read", file=file, field="json") from None


def coco_to_tables(doc: Mapping[str, Any] | bytes | str, dataset: str = "coco", file: str | None = None) -> Tables:
    """The three tables of a COCO document (a parsed dict, or its JSON text / bytes).

    >>> coco_to_tables(Path("instances.json").read_bytes(), dataset="train")  # doctest: +SKIP
    """
    with gc_paused():  # a large file makes hundreds of thousands of dicts and lists, and no cycle
        images, cats, cols, extras = _read(doc, file)  # the parsed document is released before the frames are built
        assets = _assets_table(images, dataset)
        assets.attrs["coco"] = extras
        anns = _annotations_table(cols, images, cats, dataset)
        return Tables(annotations=anns, assets=assets, labels=_labels_table(cats, dataset))


def _read(
    doc: Mapping[str, Any] | bytes | str, file: str | None
) -> tuple[read.Images, read.Categories, dict[str, Any], dict[str, Any]]:
    where = Where(file)
    if isinstance(doc, (bytes, str)):
        doc = parse(doc, file)
    if isinstance(doc, list):
        raise FormatError("a list of annotations (a COCO results file), not a dataset with images", file=file)
    if not isinstance(doc, Mapping):
        raise FormatError(
            f"expected a JSON object with images, annotations, categories, got {type(doc).__name__}", file=file
        )
    images = read.read_images(doc, where)
    cats = read.read_categories(doc, where)
    cols = annotation_columns(doc, images, cats, where)
    extras = {k: doc[k] for k in ("info", "licenses") if k in doc}
    return images, cats, cols, extras


def _str_array(values: Any) -> Any:
    return pd.array(np.asarray(values, dtype=object), dtype=schema.STR)


def _annotations_table(cols: dict[str, Any], images: read.Images, cats: read.Categories, dataset: str) -> pd.DataFrame:
    """The annotations frame, every contract column built in its dtype and normal form, extents included: the frame
    `schema.annotations_frame` would make of it (a test holds them equal), without its copy and second passes."""
    n = len(cols["kind"])
    names = {"asset": images.file_names, "label": cats.names, "kind": KINDS}
    frame: dict[str, Any] = {}
    for col, dtype in schema.ANNOTATION_COLUMNS.items():
        if col in names:  # positions into a few distinct strings: converted once, then taken
            frame[col] = _str_array(names[col]).take(cols[col])
        elif col == "id":
            frame[col] = _id_array(cols["id"], frame["asset"])
        elif col in cols:
            frame[col] = cols[col]
        elif col == "dataset":
            frame[col] = _str_array([dataset]).take(np.zeros(n, dtype=np.intp))
        elif dtype is object:
            frame[col] = np.full(n, None, dtype=object)
        elif dtype is bool:
            frame[col] = np.zeros(n, dtype=bool)
        elif dtype == "float64":
            frame[col] = np.full(n, np.nan)
        else:  # text and nullable numbers, all missing (each column its own array: nothing is shared)
            frame[col] = pd.array([], dtype=dtype).take(np.full(n, -1), allow_fill=True)
    frame["rotation"] = np.where(cols["kind"] == 0, 0.0, np.nan)
    return pd.DataFrame(frame, copy=False)


def _id_array(ids: Any, assets: Any) -> Any:
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "i":  # integer ids: one Arrow cast to text
        import pyarrow as pa
        import pyarrow.compute as pc

        return pd.array(pc.cast(pa.array(ids), pa.large_string()), dtype=schema.STR)
    return _str_array(_fill_ids(ids, assets))


def _fill_ids(ids: Any, assets: Any) -> list[str]:
    """Annotation ids as given; ``<asset>#<n>`` (n counting the asset's rows in the file) where one is missing."""
    ids = list(ids)
    if all(v is not None for v in ids):
        return ids
    seen: dict[str, int] = {}
    out = []
    for v, asset in zip(ids, assets, strict=True):
        n = seen.get(asset, 0)
        seen[asset] = n + 1
        out.append(v if v is not None else f"{asset}#{n}")
    return out


def _assets_table(images: read.Images, dataset: str) -> pd.DataFrame:
    names = [f.rsplit("/", 1)[-1] for f in images.file_names]
    table = {
        "dataset": dataset,
        "asset": images.file_names,
        "name": names,
        "width": images.width.astype(np.int64),
        "height": images.height.astype(np.int64),
        "image_id": pd.array(images.ids, dtype="Int64"),
        **images.extras,
    }
    return schema.assets_frame(table if len(images.ids) else {k: [] for k in table})


def _labels_table(cats: read.Categories, dataset: str) -> pd.DataFrame:
    table = {
        "dataset": [dataset] * len(cats.ids),
        "name": cats.names,
        "index": cats.ids,
        "keypoints": cats.keypoints,
        "skeleton": cats.skeleton,
        "supercategory": pd.array(cats.supercategory, dtype=schema.STR),
    }
    return schema.labels_frame(table)


def tables_to_coco(
    tables: Tables,
    *,
    skip_unsupported: bool = False,
    info: Any = None,
    licenses: Any = None,
    recompute_area: bool = False,
) -> dict[str, Any]:
    """The COCO document (a dict) of the tables; ``info`` / ``licenses`` default to the ones read with them.

    >>> doc = tables_to_coco(coco_to_tables(Path("instances.json").read_bytes()))  # doctest: +SKIP
    """
    anns = carried_rows(tables.annotations, skip_unsupported)
    extras = tables.assets.attrs.get("coco", {})
    return coco_document(
        anns,
        tables.assets,
        tables.labels,
        info=info if info is not None else extras.get("info"),
        licenses=licenses if licenses is not None else extras.get("licenses"),
        recompute_area=recompute_area,
    )


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes (orjson when installed); NaN and infinity are refused, never written."""
    if orjson is not None:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------------------------------
# I/O


def load_coco(path: str | Path, dataset: str | None = None) -> Tables:
    """Read a COCO JSON file; ``uri`` points at each image found beside it (or in an ``images`` folder).

    >>> t = load_coco("annotations/instances_val2017.json")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    tables = coco_to_tables(data, dataset=dataset or path.stem, file=str(path))
    tables.assets["uri"] = _image_uris(path.parent, tables.assets["asset"].tolist())
    return tables


def _image_uris(folder: Path, assets: list[str]) -> Any:
    """Per asset, the image file found under the first root that has it (each folder listed once), else NaN."""
    roots = [str(r) for r in (folder, folder / "images", folder.parent / "images", folder.parent) if r.is_dir()]
    listed: dict[str, dict[str, os.DirEntry[str]]] = {}

    def entries(path: str) -> dict[str, os.DirEntry[str]]:
        if path not in listed:
            try:
                with os.scandir(path) as it:
                    listed[path] = {e.name: e for e in it}
            except OSError:
                listed[path] = {}
        return listed[path]

    found = []
    for asset in assets:
        hit = None
        for root in roots:
            full = os.path.join(root, asset)
            parent, name = os.path.split(full)
            entry = entries(parent).get(name)
            if entry is not None and _is_file(entry):
                hit = full
                break
        found.append(hit)
    return pd.array(np.asarray(found, dtype=object), dtype=schema.STR)


def _is_file(entry: os.DirEntry[str]) -> bool:
    """`os.path.isfile` of a listed entry: the listing's file type, a stat only for a link (10,000 images, no stat)."""
    try:
        return entry.is_file()
    except OSError:
        return False


def save_coco(
    tables: Tables,
    path: str | Path,
    *,
    skip_unsupported: bool = False,
    info: Any = None,
    licenses: Any = None,
    recompute_area: bool = False,
) -> list[Path]:
    """Write the tables as one COCO JSON file: ``path`` itself when it ends in .json, else ``<path>/<dataset>.json``.

    >>> save_coco(tables, "out/instances.json")  # doctest: +SKIP
    """
    doc = tables_to_coco(
        tables, skip_unsupported=skip_unsupported, info=info, licenses=licenses, recompute_area=recompute_area
    )
    data = dumps(doc)
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path / f"{_file_stem(tables)}.json"
    return [atomic_write(path, data)]


def _file_stem(tables: Tables) -> str:
    datasets = tables.annotations["dataset"].dropna()
    name = str(datasets.iloc[0]) if len(datasets) else ""
    return name if re.fullmatch(r"[\w.-]+", name) and not name.startswith(".") else "annotations"


def sniff_coco(path: Path) -> bool:
    """A .json file holding one object with an ``images``, ``annotations`` or ``categories`` list."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return False
    start = head(path, 1 << 16)
    return start.startswith(b"{") and any(k in start for k in (b'"images"', b'"categories"', b'"annotations"'))


register_format(
    FormatSpec(
        name="coco",
        load=load_coco,
        save=save_coco,
        sniff=sniff_coco,
        description="COCO JSON: boxes, polygons, RLE masks (as their box), keypoints; category ids kept",
        aliases=("coco_json", "mscoco"),
    )
)
