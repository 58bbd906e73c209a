"""The Nexus simulator's long-running work: annotation import sessions and annotation exports.

Import sessions (``annotationimportsessions``): create, register files (each answered with a signed ``PUT`` URL on
this server), upload, ``PATCH`` the ``FilesInserted`` condition, then ``GET`` the session: it runs for a few polls
and finishes. The uploaded files are really read, with `annotebook.formats` (COCO JSON, CSV four-corner /
width-height, Pascal VOC XML, YOLO ``.txt`` with a ``.labels`` / ``classes.txt`` of class names, ...), matched to
the project's assets by file name, and checked as Nexus checks them; every problem is a log line
(``"At boats.csv:19: Point 259.0, 259.0 is out of bounds. ..."``). A session with an error log ends ``Errored``
and adds nothing; otherwise its rows are added when it finishes.

Exports (``annotationexports``): an operation that runs for a few polls, then a signed download URL of a zip of
every Nexus export format (`EXPORTS`, one entry per name of `EXPORT_FORMATS`). The zip holds one folder named
after the project's hash (the seed doc's ``cd067221.../train.csv``, ``.../validate.csv``). ``splitRatio`` is the
share of assets, shuffled with ``seed`` unless ``shuffle`` is false, that goes to ``validate``; with 0 everything is
in ``train``. A split gets files only when it holds a row the format carries; a format that carries none of the
project's rows holds ``README.txt`` (why) and the format's label map instead. ``normalized`` (default true) applies
to the CSV box formats; the others use their own convention (COCO, VOC, VoTT, CreateML pixels; YOLO, IBM,
TFRecord, Nexus's own JSON 0..1). Only the seed doc's ``<split>.csv`` layout is Nexus's; the rest is our choice, in
the formats' usual shapes. Each format carries the kinds it defines (boxes are Rectangles; the polygon formats take
a Rectangle as its 4-corner polygon), else nothing of a row:

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

import csv
import hashlib
import hmac
import inspect
import io
import json
import random
import struct
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..backends.nexus import EXPORT_FORMATS, row_from_wire

__all__ = [
    "EXPORTS",
    "ExportJob",
    "ExportSpec",
    "ImportSession",
    "build_export",
    "export_format_problem",
    "match_asset",
    "read_session_files",
    "rle_string",
    "tf_example",
]

MAX_FILES = 1000
_SIGNING_KEY = b"annotebook-nexus-sim-ops"


def sign(kind: str, ident: str, ttl: float) -> str:
    """``expires=...&signature=...`` for a URL of ``kind`` (upload / download) of ``ident``."""
    expires = int(time.time() + ttl)
    sig = hmac.new(_SIGNING_KEY, f"{kind}:{ident}:{expires}".encode(), "sha256").hexdigest()
    return f"expires={expires}&signature={sig}"


def signed_ok(kind: str, ident: str, expires: str, signature: str) -> bool:
    good = hmac.new(_SIGNING_KEY, f"{kind}:{ident}:{expires}".encode(), "sha256").hexdigest()
    return hmac.compare_digest(good, signature) and expires.isdigit() and int(expires) >= time.time()


def _progress(status: dict[str, int]) -> dict[str, Any]:
    return {"unit": "whole operation", "withStatus": status}


class ImportSession:
    """One annotation import session: its files, its polls, its logs."""

    def __init__(self, project_id: str, now: Callable[[], int], steps: int):
        self.id = f"annotsess_{uuid.uuid4()}"
        self.project_id, self.now, self.steps = project_id, now, steps
        self.created = self.updated = now()
        self.files: dict[str, dict[str, Any]] = {}  # filename -> {size, crc32c, data}
        self.overview, self.message = "Running", "Waiting for files"
        self.committed = False
        self.polls = 0
        self.logs: list[dict[str, Any]] = []
        self.processed = self.failed = self.annotations = 0

    def wire(self) -> dict[str, Any]:
        n = len(self.files)
        done = n if self.overview in ("Finished", "Errored") else min(n, n * self.polls // max(self.steps, 1))
        processing = n - done
        return {
            "id": self.id, "projectId": self.project_id, "object": "annotation_import_session",
            "status": {
                "overview": self.overview, "message": self.message, "updateDate": self.updated,
                "annotations": {"withStatus": {"Processed": self.annotations, "Committed": self.annotations}},
                "files": {"totalSizeBytes": sum(int(f["size"]) for f in self.files.values()), "pageCount": n,
                          "withStatus": {"Processing": processing, "Processed": done - self.failed,
                                         "FailedProcess": self.failed}},
            },
            "expiryDate": self.created + 86_400_000, "createDate": self.created, "updateDate": self.updated,
        }  # fmt: skip

    def log(self, level: str, message: str) -> None:
        self.logs.append({"timestamp": time.time(), "level": level, "message": message})


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


# -- reading uploaded files ------------------------------------------------------------------------------------
def _csv_lines(path: Path) -> list[int]:
    """Line numbers (1-based) of the CSV rows that hold a box, in file order."""
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for i, cells in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in cells]
            if len([c for c in cells if c]) > 1 and not (i == 1 and not any(_number(c) for c in cells)):
                out.append(i)
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_session_files(
    files: dict[str, bytes], sizes: pd.DataFrame
) -> tuple[list[tuple[str, int | None, dict[str, Any]]], list[tuple[str, int | None, str]]]:
    """The canonical rows of uploaded files, each with (file, line), and the problems, each (file, line, message).

    ``sizes`` is the project's assets (asset, name, width, height): a pixel CSV needs them.
    """
    from ..errors import FormatError
    from ..formats import find_format

    rows: list[tuple[str, int | None, dict[str, Any]]] = []
    problems: list[tuple[str, int | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="nexus-import-") as tmp:
        root = Path(tmp)
        yolo = [n for n in files if Path(n).suffix.lower() in (".txt", ".labels")]
        names = [n for n in yolo if Path(n).suffix.lower() == ".labels" or n.lower() in ("classes.txt", "obj.names")]
        jobs: list[tuple[str, Path, str | None]] = []
        if yolo:
            folder = root / "yolo"
            (folder / "labels").mkdir(parents=True)
            for n in yolo:
                target = folder / "classes.txt" if n in names else folder / "labels" / n
                target.write_bytes(files[n])
            if not names:
                problems.append((yolo[0], None, "YOLO files need a .labels file of class names in the same session"))
            else:
                jobs.append((", ".join(sorted(n for n in yolo if n not in names)), folder, "yolo"))
        for n, data in files.items():
            if n in yolo:
                continue
            path = root / "files" / n
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            jobs.append((n, path, None))
        for label, path, fmt in jobs:
            try:
                spec = find_format(path, fmt)
                params = inspect.signature(spec.load).parameters
                options = {"assets": sizes} if "assets" in params or spec.name.startswith("csv") else {}
                tables = spec.load(path, **options)
            except (FormatError, ValueError, KeyError, OSError) as exc:
                line = getattr(exc, "line", None)
                message = str(getattr(exc, "args", [exc])[0]) if isinstance(exc, FormatError) else str(exc)
                message = message.replace(str(path), label).replace(tmp + "/", "")
                if isinstance(exc, FormatError) and ": " in message and message.startswith("file "):
                    message = message.split(": ", 1)[1]
                problems.append((label, line, message))
                continue
            anns = tables.annotations
            lines: list[int | None] = [None] * len(anns)
            if path.suffix.lower() == ".csv":
                found = _csv_lines(path)
                if len(found) == len(anns):
                    lines = list(found)
            names_of = dict(zip(tables.assets["asset"], tables.assets["name"], strict=True))
            for (_, r), line in zip(anns.iterrows(), lines, strict=True):
                rec = {str(k): v for k, v in r.items()}
                rec["_name"] = names_of.get(rec["asset"]) or rec["asset"]
                rows.append((label, line, rec))
    return rows, problems


def match_asset(name: str, assets: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The project's asset a file refers to: by file name, else by stem (YOLO label files carry no suffix)."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    for a in assets.values():
        if a["filename"] == base:
            return a
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return next((a for a in assets.values() if a["filename"].rsplit(".", 1)[0] == stem), None)


def out_of_bounds(bound: list[list[float]]) -> list[float] | None:
    return next((p for p in bound if not (-1e-9 <= p[0] <= 1 + 1e-9 and -1e-9 <= p[1] <= 1 + 1e-9)), None)


# -- exports ---------------------------------------------------------------------------------------------------
SPLITS = ("train", "validate")
#: the files of an export, by path under the project's folder
Files = dict[str, bytes]


@dataclass
class Export:
    """What an export is built from: the rows it carries (``asset`` = file name, ``split`` set), assets and tags."""

    format: str
    anns: pd.DataFrame
    assets: pd.DataFrame
    labels: pd.DataFrame
    split_of: dict[str, str]
    normalized: bool
    project: str

    def parts(self) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
        """(split, its rows, its assets) of each split that has rows; ``train`` first."""
        out = []
        for split in SPLITS:
            rows = self.anns[self.anns["split"] == split]
            if len(rows):
                out.append((split, rows, self.assets[self.assets["asset"].map(self.split_of) == split]))
        return out

    def size(self, asset: str) -> tuple[int, int]:
        row = self.assets[self.assets["asset"] == asset].iloc[0]
        return int(row["width"]), int(row["height"])

    def tag_ids(self) -> dict[str, int]:
        """Tag name -> 1-based class id (TFRecord label maps and NIfTI ``labels.json`` keep 0 for background)."""
        return {str(n): int(i) + 1 for n, i in zip(self.labels["name"], self.labels["index"], strict=True)}


Builder = Callable[[Export], Files]


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


# -- JSON and CSV files annotebook does not write ----------------------------------------------------------------
def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False).encode()


def _per_split(name: str, one: Callable[[Export, pd.DataFrame, pd.DataFrame], bytes]) -> Builder:
    """One file per split, ``name`` with ``{split}``, of ``one(export, rows, assets)``."""

    def build(ex: Export) -> Files:
        return {name.format(split=split): one(ex, rows, assets) for split, rows, assets in ex.parts()}

    return build


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _by_asset(rows: pd.DataFrame, assets: pd.DataFrame) -> list[tuple[str, list[dict[str, Any]]]]:
    """(file name, its rows) of every asset of a split, in file-name order."""
    records = _records(rows)
    return [(a, [r for r in records if r["asset"] == a]) for a in sorted(assets["asset"])]


def _createml(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """CreateML: [{image, annotations: [{label, coordinates: {x, y, width, height}}]}], centre and size in pixels."""
    doc = []
    for asset, mine in _by_asset(rows, assets):
        w, h = ex.size(asset)
        doc.append({"image": asset, "annotations": [
            {"label": r["label"], "coordinates": {"x": (r["x0"] + r["x1"]) / 2 * w, "y": (r["y0"] + r["y1"]) / 2 * h,
                                                  "width": (r["x1"] - r["x0"]) * w, "height": (r["y1"] - r["y0"]) * h}}
            for r in mine]})  # fmt: skip
    return _json(doc)


def _ibm(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """IBM Cloud Annotations ``_annotations.json`` (localization): normalised x, y, x2, y2 per box."""
    boxes = {asset: [{"x": r["x0"], "y": r["y0"], "x2": r["x1"], "y2": r["y1"], "id": r["id"], "label": r["label"]}
                     for r in mine] for asset, mine in _by_asset(rows, assets)}  # fmt: skip
    return _json({"version": "1.0", "type": "localization", "labels": list(ex.labels["name"]), "annotations": boxes})


def _vott_region(r: dict[str, Any], w: int, h: int) -> dict[str, Any]:
    flat = _as_polygon(r)["points"][0]
    pts = [{"x": flat[i] * w, "y": flat[i + 1] * h} for i in range(0, len(flat) - 1, 2)]
    return {"id": r["id"], "type": "POLYGON" if r["kind"] == "polygon" else "RECTANGLE", "tags": [r["label"]],
            "boundingBox": {"left": r["x0"] * w, "top": r["y0"] * h, "width": (r["x1"] - r["x0"]) * w,
                            "height": (r["y1"] - r["y0"]) * h}, "points": pts}  # fmt: skip


def _vott(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """VoTT 2 JSON export: tags, and per asset its size and regions (pixels; a rectangle also as its 4 corners)."""
    out: dict[str, Any] = {}
    for asset, mine in _by_asset(rows, assets):
        w, h = ex.size(asset)
        key = hashlib.md5(asset.encode()).hexdigest()
        meta = {"format": asset.rsplit(".", 1)[-1], "id": key, "name": asset, "path": f"file:{asset}",
                "size": {"width": w, "height": h}, "state": 2, "type": 1}  # fmt: skip
        out[key] = {"asset": meta, "regions": [_vott_region(r, w, h) for r in mine], "version": "2.2.0"}
    tags = [{"name": n, "color": c} for n, c in zip(ex.labels["name"], ex.labels["color"], strict=True)]
    return _json({"name": ex.project, "securityToken": f"{ex.project} Token", "tags": tags, "assets": out,
                  "version": "2.2.0"})  # fmt: skip


def _csv_vott(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """VoTT CSV: ``"image","xmin","ymin","xmax","ymax","label"``, pixels unless ``normalized``."""
    buf = io.StringIO()
    out = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    out.writerow(["image", "xmin", "ymin", "xmax", "ymax", "label"])
    for asset, mine in _by_asset(rows, assets):
        w, h = (1, 1) if ex.normalized else ex.size(asset)
        out.writerows([asset, r["x0"] * w, r["y0"] * h, r["x1"] * w, r["y1"] * h, r["label"]] for r in mine)
    return buf.getvalue().encode()


def _csv_classification(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """One ``filename,label`` line per classification of an image."""
    lines = ["filename,label"] + [f"{_csv_cell(a)},{_csv_cell(r['label'])}" for a, mine in _by_asset(rows, assets)
                                  for r in mine]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def _csv_cell(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def _loc(v: float) -> str:
    return f"<loc_{min(max(int(v * 1000), 0), 999):03d}>"


def _openai(polygons: bool) -> Callable[[Export, pd.DataFrame, pd.DataFrame], bytes]:
    """OpenAI fine-tuning JSONL, one chat per image: the answer names each object by its tag and its position as
    ``<loc_NNN>`` tokens (thousandths of the width / height): x0 y0 x1 y1 of a box, x y of each polygon vertex."""
    shape = "x y of each vertex" if polygons else "x0 y0 x1 y1"
    system = f"Locate every object. Answer one object a line: its tag, then {shape} as <loc_NNN> tokens (0-999)."

    def one(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
        lines = []
        for asset, mine in _by_asset(rows, assets):
            if not mine:
                continue
            coords = [r["points"][0] if polygons else (r["x0"], r["y0"], r["x1"], r["y1"]) for r in mine]
            answer = "\n".join(r["label"] + "".join(map(_loc, c)) for r, c in zip(mine, coords, strict=True))
            user = [{"type": "text", "text": "Tags: " + ", ".join(ex.labels["name"])},
                    {"type": "image_url", "image_url": {"url": asset}}]  # fmt: skip
            chat = [{"role": "system", "content": system}, {"role": "user", "content": user},
                    {"role": "assistant", "content": answer}]  # fmt: skip
            lines.append(json.dumps({"messages": chat}, ensure_ascii=False))
        return ("\n".join(lines) + "\n").encode()

    return one


def _keypoints_raw(ex: Export, rows: pd.DataFrame, assets: pd.DataFrame) -> bytes:
    """Datature's own shape: per image its keypoint annotations as the API holds them ([x, y, visibility], 0..1)."""
    doc = []
    for asset, mine in _by_asset(rows, assets):
        w, h = ex.size(asset)
        anns = [{"id": r["id"], "tag": r["label"], "boundType": "Keypoints", "bound": _keypoint_bound(r)} for r in mine]
        doc.append({"filename": asset, "width": w, "height": h, "annotations": anns})
    return _json(doc)


def _keypoint_bound(r: dict[str, Any]) -> list[list[float]]:
    flat = r["points"][0]
    pts = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
    return [[0.0, 0.0, 0] if v == 0 else [x, y, int(v)] for (x, y), v in zip(pts, r["visibility"], strict=True)]


# -- TFRecord ----------------------------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64 is encoded as its two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _bytes(values: list[str]) -> bytes:
    """A ``tf.train.Feature`` holding a BytesList."""
    return _field(1, b"".join(_field(1, v.encode()) for v in values))


def _floats(values: list[float]) -> bytes:
    """A ``tf.train.Feature`` holding a FloatList (packed float32)."""
    return _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)) if values else b"")


def _ints(values: list[int]) -> bytes:
    """A ``tf.train.Feature`` holding an Int64List (packed varints)."""
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)) if values else b"")


def tf_example(features: dict[str, bytes]) -> bytes:
    """A serialised ``tf.train.Example`` of encoded Features (``Example.features.feature``: name -> Feature)."""
    return _field(1, b"".join(_field(1, _field(1, k.encode()) + _field(2, v)) for k, v in features.items()))


def _image_features(ex: Export, asset: str) -> dict[str, bytes]:
    w, h = ex.size(asset)
    kind = "jpeg" if asset.lower().endswith((".jpg", ".jpeg")) else "png"
    return {"image/filename": _bytes([asset]), "image/source_id": _bytes([asset]), "image/height": _ints([h]),
            "image/width": _ints([w]), "image/format": _bytes([kind])}  # fmt: skip


def _object_features(ex: Export, mine: list[dict[str, Any]]) -> dict[str, bytes]:
    """TF Object Detection API objects: normalised boxes (a polygon's or keypoints' extent), tag, 1-based class id."""
    ids = ex.tag_ids()
    out = {f"image/object/bbox/{name}": _floats([r[c] for r in mine])
           for name, c in (("xmin", "x0"), ("xmax", "x1"), ("ymin", "y0"), ("ymax", "y1"))}  # fmt: skip
    out["image/object/class/text"] = _bytes([r["label"] for r in mine])
    out["image/object/class/label"] = _ints([ids[r["label"]] for r in mine])
    return out


def _polygon_features(ex: Export, mine: list[dict[str, Any]]) -> dict[str, bytes]:
    """The objects' vertices one after the other (normalised x, y pairs), and each object's vertex count."""
    return {"image/object/polygon": _floats([c for r in mine for c in r["points"][0]]),
            "image/object/polygon/num_points": _ints([len(r["points"][0]) // 2 for r in mine])}  # fmt: skip


def _keypoint_features(ex: Export, mine: list[dict[str, Any]]) -> dict[str, bytes]:
    """TF Object Detection API keypoints: x, y (unlabelled: 0) and visibility of every object's points in turn."""
    points = [p for r in mine for p in _keypoint_bound(r)]
    return {"image/object/keypoint/x": _floats([p[0] for p in points]),
            "image/object/keypoint/y": _floats([p[1] for p in points]),
            "image/object/keypoint/visibility": _ints([int(p[2]) for p in points]),
            "image/object/keypoint/num": _ints([len(r["points"][0]) // 2 for r in mine])}  # fmt: skip


def _class_features(ex: Export, mine: list[dict[str, Any]]) -> dict[str, bytes]:
    ids = ex.tag_ids()
    return {"image/class/text": _bytes([r["label"] for r in mine]),
            "image/class/label": _ints([ids[r["label"]] for r in mine])}  # fmt: skip


def _tfrecord(*parts: Callable[[Export, list[dict[str, Any]]], dict[str, bytes]]) -> Builder:
    """``<split>.tfrecord`` (one Example per image of the split, with objects or not) and ``label_map.pbtxt``."""

    def build(ex: Export) -> Files:
        from .vi_ops import tfrecord

        files: Files = {}
        for split, rows, assets in ex.parts():
            examples = []
            for asset, mine in _by_asset(rows, assets):
                features = _image_features(ex, asset)
                for part in parts:
                    features |= part(ex, mine)
                examples.append(tf_example(features))
            files[f"{split}.tfrecord"] = tfrecord(examples)
        return files | {"label_map.pbtxt": _label_map(ex)}

    return build


def _label_map(ex: Export) -> bytes:
    items = [f"item {{\n  id: {i}\n  name: {json.dumps(n)}\n}}\n" for n, i in ex.tag_ids().items()]
    return "".join(items).encode()


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


def _as_polygon(r: dict[str, Any]) -> dict[str, Any]:
    """A box row as the 4-vertex polygon Nexus stores for a Rectangle (other rows as they are)."""
    if r["kind"] != "box":
        return r
    x0, y0, x1, y1 = r["x0"], r["y0"], r["x1"], r["y1"]
    return {**r, "kind": "polygon", "points": ((x0, y0, x0, y1, x1, y1, x1, y0),)}


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
        wire = {k: v for k, v in ann.items() if not k.startswith("_")} | {"attributes": ann["_attributes"]}
        row = row_from_wire(wire, "export")
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
    """The zip of an export of ``state`` in ``fmt`` (one of `EXPORT_FORMATS`), laid out as the module docstring says."""
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
    if fmt not in EXPORT_FORMATS:
        return f"format {fmt!r} is not one of the Nexus export formats"
    return None
