"""The Nexus simulator's annotation exports: the export operation, the formats (`EXPORTS`) and the zip.

Exports (``annotationexports``): an operation that runs for a few polls, then a signed download URL of a zip of
every Nexus export format (`EXPORTS`, one entry per format of the SDK's ``AnnotationExportFormat``). The zip holds
one folder named after the project's hash (the seed doc's ``cd067221.../train.csv``, ``.../validate.csv``).
``splitRatio`` is the share of assets, shuffled with ``seed`` unless ``shuffle`` is false, that goes to
``validate``; with 0 everything is in ``train``. A split gets files only when it holds a row the format carries; a
format that carries none of the project's rows holds ``README.txt`` (why) and the format's label map instead.
``normalized`` (default true) applies to the CSV box formats; the others use their own convention (COCO, VOC, VoTT,
CreateML pixels; YOLO, IBM, TFRecord, Nexus's own JSON 0..1). Only the seed doc's ``<split>.csv`` layout is Nexus's;
the rest is our choice, in the formats' usual shapes. Each format carries the kinds it defines (boxes are
Rectangles; the polygon formats take a Rectangle as its 4-corner polygon), else nothing of a row:

- written by annotebook's writers, read back by ``ab.read``:
  ``coco`` (boxes, polygons, keypoints), ``polygon_coco`` and ``polygon_single`` (boxes and polygons as COCO
  polygons; "single": one ring per annotation, which every Nexus polygon is, so the two files are the same here),
  ``keypoints_coco`` (keypoint tags become keypoint categories, points named 1, 2, ...), ``rle_coco`` (each box or
  polygon rasterised at pixel centres, compressed RLE ``counts`` as pycocotools writes them; read back as boxes
  with ``mask="rle"``), ``rle_semantic_coco`` (one RLE per image and tag, ``iscrowd`` 1): ``<split>.json``;
  ``csv_fourcorner``, ``csv_widthheight``: ``<split>.csv``; ``pascal_voc``: ``<split>/<image>.xml``;
  ``yolo_darknet``: the Ultralytics layout of annotebook's writer (``labels/train/``, ``labels/val/``,
  ``classes.txt``, ``data.yaml``); ``yolo_keras_pytorch``: ``<split>/_annotations.txt`` and ``_classes.txt``;
- written here, read back by ``ab.read``: ``csv_vott``: ``<split>.csv`` with VoTT's header
  ``"image","xmin","ymin","xmax","ymax","label"`` (annotebook's CSV four-corner reader takes it);
- written here, shape only, not parsed by annotebook: ``createml``: ``<split>.json``, ``[{"image", "annotations":
  [{"label", "coordinates": {x, y, width, height}}]}]`` (centre and size in pixels); ``vott``: ``<split>.json``,
  VoTT 2's JSON export (tags; per asset ``asset`` with its size, ``regions`` RECTANGLE / POLYGON with
  ``boundingBox`` and ``points`` in pixels); ``ibm``: ``<split>/_annotations.json``, IBM Cloud Annotations
  localization (``labels``, per image ``{x, y, x2, y2, label}`` in 0..1); ``box_openai_positional_encoding``,
  ``polygon_openai_positional_encoding``: ``<split>.jsonl``, one OpenAI fine-tuning chat per image whose answer is
  a line per object, its tag then ``<loc_NNN>`` tokens (thousandths: x0 y0 x1 y1, or x y per vertex; our guess at
  the encoding); ``keypoints_datature_raw``: ``<split>.json``, per image its keypoint annotations as the API holds
  them (``bound`` of ``[x, y, visibility]``); ``csv_classification``: ``<split>.csv`` of ``filename,label``;
  ``tfrecord``, ``polygon_tfrecord``, ``keypoints_tfrecord``, ``classification_tfrecord``: ``<split>.tfrecord`` (real
  TFRecord framing: length, masked CRC32C, data, masked CRC32C) of one ``tf.train.Example`` per image with the TF
  Object Detection API's fields (``image/filename``, ``image/height``, ``image/width``, ``image/object/bbox/xmin``
  ..., ``image/object/class/text`` and ``/label``; ``image/object/keypoint/x|y|visibility``; for classification
  ``image/class/text|label``; polygons as our ``image/object/polygon`` with ``/num_points``) and
  ``label_map.pbtxt`` (class ids are tag index + 1);
- carrying nothing here, so ``README.txt`` and a label map only: the bitmask formats (``bitmask_tfrecord``,
  ``bitmask_rle_coco``, ``bitmask_rle_semantic_coco``, ``bitmask_openai_positional_encoding``: the simulator holds
  no bitmasks) and the 3-D ones (``nifti_one_hot_segmentation``, ``nifti_class_index_segmentation`` with
  ``labels.json`` as Datature's NIfTI import takes it, ``classification_3d_tfrecord``, ``segmentation_3d_tfrecord``:
  the assets are 2-D images); so do the classification formats on a project without Classification rows.

No format is refused (the seed doc names none that Nexus refuses); a writer that fails ends the operation
``Errored`` with its message.
"""

from __future__ import annotations

import io
import random
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .nexus_export_files import (
    Builder,
    Export,
    Files,
    _as_polygon,
    _class_features,
    _createml,
    _csv_classification,
    _csv_vott,
    _ibm,
    _json,
    _keypoint_features,
    _keypoints_raw,
    _label_map,
    _object_features,
    _openai,
    _per_split,
    _polygon_features,
    _records,
    _tfrecord,
    _vott,
)
from .nexus_state import canonical_row

__all__ = ["EXPORTS", "ExportJob", "ExportSpec", "build_export", "export_format_problem", "rle_string"]


def _progress(status: dict[str, int]) -> dict[str, Any]:
    return {"unit": "whole operation", "withStatus": status}


class ExportJob:
    """One export operation and, once built, its zip."""

    def __init__(self, now: Callable[[], int], steps: int, fmt: str):
        self.id = f"op_{uuid.uuid4()}"
        self.now, self.steps, self.format = now, steps, fmt
        self.created = self.updated = now()
        self.polls = 0
        self.overview, self.message = "Queued", "Operation queued"
        self.archive: bytes | None = None
        self.error: str | None = None

    def advance(self) -> None:
        if self.overview in ("Finished", "Errored"):
            return
        self.polls += 1
        self.updated = self.now()
        if self.polls >= self.steps:
            self.overview = "Errored" if self.error else "Finished"
            self.message = self.error or "Operation finished"
        else:
            self.overview, self.message = "Running", "Operation running"

    def wire(self) -> dict[str, Any]:
        counts = {"Queued": 0, "Running": 0, "Finished": 0, "Cancelled": 0, "Errored": 0}
        counts[self.overview] = 1
        return {
            "id": self.id, "kind": "nexus.annotations.export", "object": "operation",
            "status": {"overview": self.overview, "message": self.message, "progress": _progress(counts)},
            "createDate": self.created, "updateDate": self.updated,
        }  # fmt: skip


@dataclass(frozen=True)
class ExportSpec:
    """A Nexus export format: the canonical kinds it carries and how its files are built from them."""

    kinds: tuple[str, ...]
    build: Builder
    #: boxes are carried as 4-vertex polygons (the polygon formats)
    polygons: bool = False
    #: beside README.txt when nothing is carried: the format's own label map
    label_map: str = "labels.json"
    #: why nothing is carried whatever the project holds (bitmask and 3-D formats in this simulator)
    never: str = ""


def _saved(ab_format: str, target: str, ex: Export, rows: pd.DataFrame, assets: pd.DataFrame, **options: Any) -> Files:
    """The files annotebook's writer of ``ab_format`` writes for ``rows`` at ``target`` (relative)."""
    from ..formats import save

    with tempfile.TemporaryDirectory(prefix="nexus-export-") as tmp:
        root = Path(tmp)
        save(rows, root / target, ab_format, assets=assets, labels=ex.labels, **options)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _written(ab_format: str, target: str, **options: Any) -> Builder:
    """One file or folder per split (``target`` with ``{split}``), written by annotebook's ``ab_format`` writer."""

    def build(ex: Export) -> Files:
        files: Files = {}
        for split, rows, assets in ex.parts():
            extra = {"normalized": ex.normalized} if ab_format.startswith("csv") else {}
            files |= _saved(ab_format, target.format(split=split), ex, rows, assets, **options, **extra)
        return files

    return build


def _yolo_darknet(ex: Export) -> Files:
    """The Ultralytics layout annotebook's YOLO writer gives the split column: labels/{train,val}/, data.yaml."""
    return _saved("yolo", ".", ex, ex.anns, ex.assets)


def _keypoints_coco(ex: Export) -> Files:
    """COCO keypoints: each keypoint tag becomes a keypoint category with points named 1, 2, ..."""
    counts = {str(r["label"]): len(r["points"][0]) // 2 for r in _records(ex.anns)}
    names = [tuple(str(k + 1) for k in range(counts[n])) if n in counts else None for n in ex.labels["name"]]
    labels = ex.labels.assign(keypoints=pd.Series(names, index=ex.labels.index, dtype=object))
    return _written("coco", "{split}.json")(replace(ex, labels=labels))


# -- masks (the RLE COCO formats) --------------------------------------------------------------------------------
def _mask(row: dict[str, Any], w: int, h: int) -> np.ndarray:
    """The pixels (h, w) whose centres lie inside a box or polygon row (even-odd rule)."""
    ys, xs = np.arange(h)[:, None] + 0.5, np.arange(w)[None, :] + 0.5
    if row["kind"] == "box":
        return (xs >= row["x0"] * w) & (xs <= row["x1"] * w) & (ys >= row["y0"] * h) & (ys <= row["y1"] * h)
    flat = row["points"][0]
    px, py = np.asarray(flat[0::2]) * w, np.asarray(flat[1::2]) * h
    inside = np.zeros((h, w), dtype=bool)
    for xa, ya, xb, yb in zip(px, py, np.roll(px, -1), np.roll(py, -1), strict=True):
        if ya != yb:
            inside ^= ((ya > ys) != (yb > ys)) & (xs < xa + (ys - ya) * (xb - xa) / (yb - ya))
    return inside


def rle_string(mask: np.ndarray) -> str:
    """COCO's compressed RLE ``counts`` of a mask (pycocotools ``rleToString``: column-major runs, zeros first)."""
    flat = mask.ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat.size and flat[0]:
        runs.insert(0, 0)
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            c, x = x & 0x1F, x >> 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def _rle_rows(ex: Export, semantic: bool) -> pd.DataFrame:
    """Each box / polygon as a box row carrying its RLE mask; ``semantic``: one row per image and tag, the union."""
    from .. import schema

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in _records(ex.anns):
        groups.setdefault((r["asset"], r["label"]) if semantic else (r["id"],), []).append(r)
    out = []
    for key, rows in groups.items():
        w, h = ex.size(rows[0]["asset"])
        mask = np.logical_or.reduce([_mask(r, w, h) for r in rows])
        attrs = {"mask": "rle", "rle_counts": rle_string(mask), "rle_size": [h, w], "area": int(mask.sum())}
        if semantic:
            attrs["iscrowd"] = 1
        box = {c: f(r[c] for r in rows) for c, f in (("x0", min), ("y0", min), ("x1", max), ("y1", max))}
        first = {k: rows[0][k] for k in ("dataset", "asset", "label", "split")}
        out.append({**first, **box, "kind": "box", "id": ":".join(map(str, key)), "attributes": attrs})
    return schema.annotations_frame(out)


def _rle_coco(semantic: bool) -> Builder:
    def build(ex: Export) -> Files:
        return _written("coco", "{split}.json")(replace(ex, anns=_rle_rows(ex, semantic)))

    return build


def _nothing(ex: Export) -> Files:
    return {}


_BITMASK = "it carries bitmask annotations, and a project of this simulator holds none (no Bitmask bound type)"
_VOLUME = "it is a 3-D (volume) format, and this project's assets are 2-D images"
#: Nexus export format -> what it carries and how; see the module docstring
EXPORTS: dict[str, ExportSpec] = {
    "coco": ExportSpec(("box", "polygon", "keypoints"), _written("coco", "{split}.json")),
    "csv_fourcorner": ExportSpec(("box",), _written("csv_four_corner", "{split}.csv")),
    "csv_widthheight": ExportSpec(("box",), _written("csv_width_height", "{split}.csv")),
    "csv_vott": ExportSpec(("box",), _per_split("{split}.csv", _csv_vott)),
    "vott": ExportSpec(("box", "polygon"), _per_split("{split}.json", _vott)),
    "ibm": ExportSpec(("box",), _per_split("{split}/_annotations.json", _ibm)),
    "pascal_voc": ExportSpec(("box",), _written("voc", "{split}")),
    "yolo_darknet": ExportSpec(("box",), _yolo_darknet),
    "yolo_keras_pytorch": ExportSpec(("box",), _written("yolo_keras", "{split}")),
    "createml": ExportSpec(("box",), _per_split("{split}.json", _createml)),
    "tfrecord": ExportSpec(("box",), _tfrecord(_object_features), label_map="label_map.pbtxt"),
    "polygon_tfrecord": ExportSpec(
        ("box", "polygon"), _tfrecord(_object_features, _polygon_features), polygons=True, label_map="label_map.pbtxt"
    ),
    "polygon_coco": ExportSpec(("box", "polygon"), _written("coco", "{split}.json"), polygons=True),
    "polygon_single": ExportSpec(("box", "polygon"), _written("coco", "{split}.json"), polygons=True),
    "rle_coco": ExportSpec(("box", "polygon"), _rle_coco(semantic=False)),
    "rle_semantic_coco": ExportSpec(("box", "polygon"), _rle_coco(semantic=True)),
    "box_openai_positional_encoding": ExportSpec(("box",), _per_split("{split}.jsonl", _openai(polygons=False))),
    "polygon_openai_positional_encoding": ExportSpec(
        ("box", "polygon"), _per_split("{split}.jsonl", _openai(polygons=True)), polygons=True
    ),
    "csv_classification": ExportSpec(("tag",), _per_split("{split}.csv", _csv_classification)),
    "classification_tfrecord": ExportSpec(("tag",), _tfrecord(_class_features), label_map="label_map.pbtxt"),
    "classification_3d_tfrecord": ExportSpec((), _nothing, label_map="label_map.pbtxt", never=_VOLUME),
    "keypoints_coco": ExportSpec(("keypoints",), _keypoints_coco),
    "keypoints_tfrecord": ExportSpec(
        ("keypoints",), _tfrecord(_object_features, _keypoint_features), label_map="label_map.pbtxt"
    ),
    "keypoints_datature_raw": ExportSpec(("keypoints",), _per_split("{split}.json", _keypoints_raw)),
    "bitmask_tfrecord": ExportSpec((), _nothing, label_map="label_map.pbtxt", never=_BITMASK),
    "bitmask_rle_coco": ExportSpec((), _nothing, never=_BITMASK),
    "bitmask_rle_semantic_coco": ExportSpec((), _nothing, never=_BITMASK),
    "bitmask_openai_positional_encoding": ExportSpec((), _nothing, never=_BITMASK),
    "nifti_one_hot_segmentation": ExportSpec((), _nothing, never=_VOLUME),
    "nifti_class_index_segmentation": ExportSpec((), _nothing, never=_VOLUME),
    "segmentation_3d_tfrecord": ExportSpec((), _nothing, label_map="label_map.pbtxt", never=_VOLUME),
}
_BOUND_TYPES = {"box": "Rectangle", "polygon": "Polygon", "keypoints": "Keypoints", "tag": "Classification"}


def _readme(ex: Export, spec: ExportSpec) -> Files:
    """README.txt saying why nothing is carried, and the label map of the format."""
    why = spec.never or "the project has no " + " or ".join(_BOUND_TYPES[k] for k in spec.kinds) + " annotations"
    text = (f"This {ex.format} export of project {ex.project!r} holds no annotations: {why}.\n"
            f"Assets: {len(ex.assets)}. Tags: {', '.join(ex.labels['name'])}.\n")  # fmt: skip
    if spec.label_map == "label_map.pbtxt":
        labels = _label_map(ex)
    else:
        labels = _json([{"id": i, "name": n} for n, i in ex.tag_ids().items()])
    return {"README.txt": text.encode(), spec.label_map: labels}


def _export_of(fmt: str, options: dict[str, Any], state: Any) -> Export:
    """The rows of ``state`` an export in ``fmt`` carries, split by ``splitRatio`` / ``seed`` / ``shuffle``."""
    from .. import schema

    spec = EXPORTS[fmt]
    opt = {_SNAKE.get(k, k): v for k, v in (options or {}).items()}
    ratio, seed = float(opt.get("splitRatio") or 0.0), int(opt.get("seed") or 0)
    by_id = state.assets
    names = sorted(by_id, key=lambda a: by_id[a]["filename"])
    if opt.get("shuffle", True):
        random.Random(seed).shuffle(names)
    n_val = round(len(names) * ratio)
    split = {a: ("validate" if i < n_val else "train") for i, a in enumerate(names)}
    rows = []
    for ann in state.annotations.values():
        row = canonical_row(ann, "export")
        if row is not None and row["kind"] in spec.kinds:
            row["split"] = split[row["asset"]]
            row["asset"] = by_id[row["asset"]]["filename"]
            rows.append(_as_polygon(row) if spec.polygons else row)
    assets = schema.assets_frame(
        [{"dataset": "export", "asset": a["filename"], "name": a["filename"], "width": a["metadata"]["width"],
          "height": a["metadata"]["height"]} for a in by_id.values()]
    )  # fmt: skip
    labels = schema.labels_frame(
        [{"dataset": "export", "name": t["name"], "index": t["index"], "color": t.get("color")} for t in state.tags]
    )
    split_of = {by_id[a]["filename"]: s for a, s in split.items()}
    normalized = opt.get("normalized", True) is not False
    project = str(getattr(state, "project_name", "project"))
    return Export(fmt, schema.annotations_frame(rows), assets, labels, split_of, normalized, project)


def build_export(
    fmt: str, options: dict[str, Any], state: Any, tamper: Callable[[zipfile.ZipFile], None] | None = None
) -> bytes:
    """The zip of an export of ``state`` in ``fmt`` (one of `EXPORTS`), laid out as the module docstring says."""
    spec = EXPORTS[fmt]
    ex = _export_of(fmt, options, state)
    files = spec.build(ex) if len(ex.anns) else _readme(ex, spec)
    folder = state.project_id.removeprefix("proj_")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            z.writestr(f"{folder}/{name}", files[name])
        if tamper is not None:
            tamper(z)
    return buf.getvalue()


_SNAKE = {"split_ratio": "splitRatio"}


def export_format_problem(fmt: Any) -> str | None:
    if fmt not in EXPORTS:
        return f"format {fmt!r} is not one of the Nexus export formats"
    return None
