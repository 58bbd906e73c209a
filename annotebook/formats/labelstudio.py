"""Label Studio JSON export: a list of tasks, each with ``data`` (the image URL), ``annotations[].result[]`` and
``predictions[].result[]``.

Pixel convention: percent (0-100) of original_width/height; a rectangle rotates clockwise about its top-left corner.

Rows. ``rectanglelabels`` / ``rectangle`` -> box (the contract's rotation is about the box centre, so a rotated
rectangle is converted through pixels, which needs ``original_width`` / ``original_height`` or the assets' size);
``polygonlabels`` / ``polygon`` -> polygon (``"closed": false`` -> polyline); ``keypointlabels`` / ``keypoint`` ->
a one-point keypoints row (the keypoint's display ``width`` is not kept); ``choices`` -> one tag row per choice,
value True; ``textarea`` -> one caption row per text. A result that shares its ``id`` with a region of the same
annotation is that region's per-region control: ``labels`` gives its label; ``choices`` becomes
``attributes[from_name]``, other types ``attributes["from_name:type"]`` (a single value unwrapped from its list).
Other result types (brushes, ellipses, ...) are a FormatError unless ``skip_unsupported=True``.

Ids are the result ids; a result id met again in another annotation or prediction gets ``#1``, ``#2``...; the
further choices or texts of one result get ``<id>#1``... The asset is the task's image URL as written (``data``
key ``image``, or ``image_key=``, or the key a result's ``source`` names). ``author`` is the annotation's
``completed_by`` (an id or an e-mail), or ``model:<model_version>`` for a prediction, whose result (or
prediction) ``score`` goes to ``score``.

Writing groups an asset's rows into one annotation per author and one prediction per model. The control names
default to ``label`` (rectangles), ``polygon``, ``keypoint``, ``choice``, ``caption`` on an Image named ``image``
with data key ``image``; a row read from Label Studio keeps its own names (kept in ``attributes`` as
``ls_from_name`` / ``ls_to_name`` only when they differ from those defaults). ``label_config(tasks)`` returns a
labelling config that accepts what was written. ``original_width`` / ``original_height`` are always written when
the assets table knows the size (Label Studio's COCO/YOLO converters need them).

Sources: Label Studio "Task format" (https://labelstud.io/guide/task_format), "RectangleLabels"
(https://labelstud.io/tags/rectanglelabels), "Object detection with bounding boxes: rotation and anchor point"
(https://labelstud.io/templates/image_bbox), and label-studio-converter 0.0.59 ``convert_annotation_to_yolo_obb``
(the corners of a rotated rectangle), whose test values tests/formats/test_labelstudio.py checks.

Keeps (`annotebook.formats._kept`, a write warns about the rest): score no, split no, status no, author no,
attributes as text and numbers (a boolean reads back as text).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import FormatError
from ._io import atomic_write, head, read_text
from ._registry import FormatSpec, Tables, register_format
from ._rows import asset_sizes, carried, dataset_name, file_name, number, records, size_of, uri_beside
from ._xml_text import quoteattr

__all__ = ["label_config", "labelstudio_to_tables", "load_labelstudio", "save_labelstudio", "tables_to_labelstudio"]

REGION_TYPES = ("rectanglelabels", "rectangle", "polygonlabels", "polygon", "keypointlabels", "keypoint")
BRUSH_TYPES = ("brushlabels", "brush")
DEFAULT_FROM = {
    "box": "label",
    "polygon": "polygon",
    "polyline": "polygon",
    "keypoints": "keypoint",
    "tag": "choice",
    "caption": "caption",
    "mask": "brush",  # a tag row with attributes["mask"]: a brush result
}
DEFAULT_TO = "image"
WRITE_TYPE = {
    "box": "rectanglelabels",
    "polygon": "polygonlabels",
    "polyline": "polygonlabels",
    "keypoints": "keypointlabels",
    "tag": "choices",
    "caption": "textarea",
}
TASK_KEYS = ("annotations", "predictions", "drafts", "id", "meta", "created_at", "updated_at")


# ---------------------------------------------------------------------------------------------------------------
# Rotation: Label Studio's top-left anchor <-> the contract's centre


def box_from_ls(
    x: float, y: float, w: float, h: float, rotation: float, size: tuple[int, int] | None
) -> tuple[float, float, float, float]:
    """Normalised (x0, y0, x1, y1) of the unrotated box turned ``rotation`` degrees about its centre."""
    if rotation == 0 or size is None:
        return (x / 100, y / 100, (x + w) / 100, (y + h) / 100)
    width, height = size
    px, py, pw, ph = x / 100 * width, y / 100 * height, w / 100 * width, h / 100 * height
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    cx, cy = px + pw / 2 * c - ph / 2 * s, py + pw / 2 * s + ph / 2 * c
    return ((cx - pw / 2) / width, (cy - ph / 2) / height, (cx + pw / 2) / width, (cy + ph / 2) / height)


def box_to_ls(
    x0: float, y0: float, x1: float, y1: float, rotation: float, size: tuple[int, int] | None
) -> tuple[float, float, float, float]:
    """Label Studio's percent (x, y, width, height) of a box turned ``rotation`` degrees about its centre."""
    w, h = (x1 - x0) * 100, (y1 - y0) * 100
    if rotation == 0 or size is None:
        return (x0 * 100, y0 * 100, w, h)
    width, height = size
    cx, cy, pw, ph = (x0 + x1) / 2 * width, (y0 + y1) / 2 * height, (x1 - x0) * width, (y1 - y0) * height
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    px, py = cx - pw / 2 * c + ph / 2 * s, cy - pw / 2 * s - ph / 2 * c
    return (px / width * 100, py / height * 100, w, h)


# ---------------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class _Reader:
    file: str
    dataset: str
    image_key: str | None
    sizes: Mapping[str, tuple[int, int]]
    skip: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    #: the server's reading (`read_tasks`): the asset is the task's id, ids are ``<annotation>/<result id>``, the rev
    #: is the annotation's ``updated_at``
    server: bool = False
    #: per annotation (its ``annotation`` value), the results no row holds (kept so a write sends them back)
    skipped: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)

    def error(self, message: str, path: str) -> FormatError:
        return FormatError(message, file=self.file, field=path)

    def unique(self, rid: Any, asset: str, group: str | None = None) -> str:
        n = self.counts[asset] = self.counts.get(asset, -1) + 1
        base = f"{asset}#{n}" if rid is None or isinstance(rid, (dict, list, bool)) else str(rid)
        if self.server and group is not None:
            base = f"{group}/{base}"
        out, k = base, 0
        while out in self.used:
            k += 1
            out = f"{base}#{k}"
        self.used.add(out)
        return out


def _image(rd: _Reader, task: dict[str, Any], t: int) -> str:
    """The task's image URL: ``image_key``, else ``image``, else the key a result's ``source`` names, else the only
    text value of the task data."""
    data = task.get("data")
    if data is None:  # Label Studio also imports flat tasks: {"image": ...}
        data = {k: v for k, v in task.items() if k not in TASK_KEYS}
    if not isinstance(data, dict):
        raise rd.error(f"expected an object, got {type(data).__name__}", f"[{t}].data")
    sources = [r.get("source") for g in _groups(task) for r in g.get("result") or [] if isinstance(r, dict)]
    texts = [k for k, v in data.items() if isinstance(v, str)]
    keys = [rd.image_key] if rd.image_key else []
    keys += ["image", *[s[1:] for s in sources if isinstance(s, str) and s.startswith("$")]]
    keys += texts if len(texts) == 1 else []
    for k in keys:
        if isinstance(data.get(k), str) and data[k]:
            return str(data[k])
    raise rd.error("no image URL in the task data; pass image_key=", f"[{t}].data.{rd.image_key or 'image'}")


def _groups(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for k in ("annotations", "predictions") for a in task.get(k) or [] if isinstance(a, dict)]


def _size(rd: _Reader, results: list[Any], path: str, asset: str) -> tuple[int, int] | None:
    size = None
    for j, r in enumerate(results):
        if isinstance(r, dict) and ("original_width" in r or "original_height" in r):
            s = size_of(r.get("original_width"), r.get("original_height"), file=rd.file, field=f"{path}[{j}]")
            if size is not None and s != size:
                raise rd.error(f"original size {s} differs from {size} in the same task", f"{path}[{j}].original_width")
            size = s
    return size or rd.sizes.get(asset)


def _labels(value: dict[str, Any], rtype: str, rd: _Reader, path: str) -> list[str]:
    labels = value.get(rtype, []) if rtype.endswith("labels") or rtype == "choices" else []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise rd.error(f"expected a list of strings, got {labels!r}", f"{path}.value.{rtype}")
    return labels


def _region(rd: _Reader, r: dict[str, Any], path: str, size: tuple[int, int] | None) -> dict[str, Any]:
    """The geometry fields of a region result."""
    value, rtype = r["value"], r["type"]
    num = lambda k, neg=True: number(value.get(k), file=rd.file, field=f"{path}.value.{k}", allow_negative=neg)  # noqa: E731
    if rtype.startswith("rectangle"):
        x, y, w, h = num("x"), num("y"), num("width", False), num("height", False)
        rot = num("rotation") if "rotation" in value else 0.0
        if rot != 0 and size is None:
            raise rd.error("a rotated rectangle needs original_width / original_height", f"{path}.original_width")
        x0, y0, x1, y1 = box_from_ls(x, y, w, h, rot, size)
        return {"kind": "box", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "rotation": rot}
    if rtype.startswith("polygon"):
        pts = value.get("points")
        if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
            raise rd.error(f"expected a list of [x, y] points, got {pts!r}", f"{path}.value.points")
        flat = tuple(
            number(c, file=rd.file, field=f"{path}.value.points[{i}]") / 100 for i, p in enumerate(pts) for c in p
        )
        closed = value.get("closed", True) is not False
        if len(pts) < (3 if closed else 2):
            raise rd.error(f"a polygon needs at least 3 points, got {len(pts)}", f"{path}.value.points")
        return {"kind": "polygon" if closed else "polyline", "points": (flat,)}
    x, y = num("x"), num("y")
    return {"kind": "keypoints", "points": ((x / 100, y / 100),), "visibility": (2,)}


def _names(r: dict[str, Any], kind: str) -> dict[str, Any]:
    out = {}
    if r.get("from_name") not in (None, DEFAULT_FROM[kind]):
        out["ls_from_name"] = r["from_name"]
    if r.get("to_name") not in (None, DEFAULT_TO):
        out["ls_to_name"] = r["to_name"]
    return out


def _result_ok(rd: _Reader, r: Any, path: str) -> bool:
    if not isinstance(r, dict):
        raise rd.error(f"expected an object, got {type(r).__name__}", path)
    if rd.skip and r.get("type") == "relation":  # a link between two regions: no row holds it
        return False
    for key, kind in (("type", str), ("value", dict)):
        if not isinstance(r.get(key), kind):
            raise rd.error(f"missing or not {kind.__name__}: {r.get(key)!r}", f"{path}.{key}")
    if r.get("image_rotation", 0) not in (0, None):
        if rd.skip:
            return False
        raise rd.error(
            "results on a rotated image are not supported; pass skip_unsupported=True", f"{path}.image_rotation"
        )
    return True


def _group(rd: _Reader, g: dict[str, Any], path: str, asset: str, meta: dict[str, Any]) -> None:
    results = g.get("result") or []
    if not isinstance(results, list):
        raise rd.error(f"expected a list, got {type(results).__name__}", f"{path}.result")
    size = _size(rd, results, f"{path}.result", asset)
    if size is not None:
        rd.assets[asset].setdefault("width", size[0])
        rd.assets[asset].setdefault("height", size[1])
    regions: dict[Any, dict[str, Any]] = {}
    rest = []
    for j, r in enumerate(results):
        p = f"{path}.result[{j}]"
        if not _result_ok(rd, r, p):
            rd.skipped.setdefault(meta.get("annotation"), []).append(r)
            continue
        if r["type"] not in REGION_TYPES:
            rest.append((p, r))
            continue
        row = {"dataset": rd.dataset, "asset": asset, **meta, **_region(rd, r, p, size)}
        labels = _labels(r["value"], r["type"], rd, p)
        row["label"] = labels[0] if labels else None
        attrs = _names(r, row["kind"]) | ({"labels": labels} if len(labels) > 1 else {})
        row["attributes"], row["id"] = attrs or None, rd.unique(r.get("id"), asset, meta.get("annotation"))
        row["score"] = _score(r, g, meta)
        regions.setdefault(r.get("id"), row)
        rd.rows.append(row)
    for p, r in rest:
        if not _other(rd, r, p, asset, meta, regions.get(r.get("id")) if r.get("id") is not None else None, g):
            rd.skipped.setdefault(meta.get("annotation"), []).append(r)


def _score(r: dict[str, Any], g: dict[str, Any], meta: dict[str, Any]) -> float | None:
    if not str(meta.get("author") or "").startswith("model:"):
        return None
    s = r.get("score", g.get("score"))
    return float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def _other(rd: _Reader, r: dict[str, Any], p: str, asset: str, meta: dict, region: dict | None, g: dict) -> bool:
    """A non-region result: a per-region control of ``region``, task-level choices / textarea, or a brush mask.
    False when it was skipped."""
    rtype, value, name = r["type"], r["value"], r.get("from_name")
    content = value.get(rtype, value.get("text") if rtype == "textarea" else None)
    if region is not None:
        if rtype == "labels" and isinstance(content, list) and content:
            region["label"] = region["label"] or str(content[0])
            return True
        key = str(name) if rtype in ("choices", "number") else f"{name}:{rtype}"
        one = content[0] if isinstance(content, list) and len(content) == 1 else content
        region["attributes"] = (region["attributes"] or {}) | {key: one}
        return True
    if rtype in BRUSH_TYPES:
        _brush(rd, r, p, asset, meta, g)
        return True
    if rtype not in ("choices", "textarea"):
        if rd.skip:
            return False
        raise rd.error(f"result type {rtype!r} is not supported; pass skip_unsupported=True", f"{p}.type")
    if not isinstance(content, list) or not all(isinstance(x, str) for x in content):
        raise rd.error(
            f"expected a list of strings, got {content!r}", f"{p}.value.{'text' if rtype == 'textarea' else rtype}"
        )
    kind = "tag" if rtype == "choices" else "caption"
    attrs = _names(r, kind) or None
    for k, item in enumerate(content):
        rid = r.get("id") if k == 0 or r.get("id") is None else f"{r['id']}#{k}"
        row = {
            "dataset": rd.dataset,
            "asset": asset,
            "id": rd.unique(rid, asset, meta.get("annotation")),
            "kind": kind,
            **meta,
            "attributes": attrs,
            "score": _score(r, g, meta),
        }
        row.update({"label": item, "value": True} if kind == "tag" else {"text": item})
        rd.rows.append(row)
    return True


def _brush(rd: _Reader, r: dict[str, Any], p: str, asset: str, meta: dict, g: dict) -> None:
    """A brush result as a tag row of its label whose ``attributes["mask"]`` holds the mask as Label Studio wrote
    it (``format``, ``rle``, ``original_width`` / ``original_height``): kept whole, written back unchanged."""
    value = dict(r["value"])
    labels = _labels(value, "brushlabels", rd, p) if r["type"] == "brushlabels" else []
    mask = {k: v for k, v in value.items() if k != r["type"]}
    mask.update({k: r[k] for k in ("original_width", "original_height") if k in r})
    attrs = _names(r, "mask") | {"mask": mask}
    row = {"dataset": rd.dataset, "asset": asset, "id": rd.unique(r.get("id"), asset, meta.get("annotation")),
           "kind": "tag", **meta, "label": labels[0] if labels else None, "value": True, "attributes": attrs,
           "score": _score(r, g, meta)}  # fmt: skip
    rd.rows.append(row)


def _author(g: dict[str, Any], prediction: bool) -> str | None:
    if prediction:
        return f"model:{g.get('model_version') or ''}"
    who = g.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return None if who is None or isinstance(who, (list, bool)) else str(who)


def _task(rd: _Reader, task: Any, t: int, root: Path | None) -> None:
    if not isinstance(task, dict):
        raise rd.error(f"expected a task object, got {type(task).__name__}", f"[{t}]")
    image = _image(rd, task, t)
    asset = str(task.get("id")) if rd.server else image
    rd.assets.setdefault(asset, {"dataset": rd.dataset, "asset": asset, "name": _name(image), "uri": _uri(image, root)})
    for key in ("annotations", "predictions"):
        groups = task.get(key)
        groups = [] if groups is None else groups
        if not isinstance(groups, list):
            raise rd.error(f"expected a list, got {type(groups).__name__}", f"[{t}].{key}")
        for i, g in enumerate(groups):
            if isinstance(g, int) and not isinstance(g, bool):  # an id only: Label Studio's JSON export lists them
                continue
            if not isinstance(g, dict):
                raise rd.error(f"expected an object, got {type(g).__name__}", f"[{t}].{key}[{i}]")
            meta: dict[str, Any] = {"author": _author(g, key == "predictions")}
            if g.get("id") is not None:  # the annotation (a prediction: p<id>) holding the rows
                meta["annotation"] = f"{'p' if key == 'predictions' else ''}{g['id']}"
            if rd.server:
                meta["rev"] = str(g.get("updated_at") or g.get("created_at"))
            _group(rd, g, f"[{t}].{key}[{i}]", asset, meta)


def _name(url: str) -> str:
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    d = parse_qs(parts.query).get("d")
    path = d[0] if d else parts.path or url
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or url


def _uri(asset: str, root: Path | None) -> str | None:
    if asset.startswith(("http://", "https://", "file:")):
        return asset
    return uri_beside(root, asset) if root is not None else None


def labelstudio_to_tables(
    obj: Any,
    *,
    file: str = "<json>",
    dataset: str = "labelstudio",
    image_key: str | None = None,
    assets: pd.DataFrame | None = None,
    skip_unsupported: bool = False,
    root: Path | None = None,
) -> Tables:
    """The tables of a Label Studio export (a list of tasks, or one task).

    >>> t = labelstudio_to_tables([{"data": {"image": "a.png"}, "annotations": [{"result": [{"id": "r1",
    ...     "type": "rectanglelabels", "from_name": "label", "to_name": "image",
    ...     "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rectanglelabels": ["cat"]}}]}]}])
    >>> t.annotations[["id", "label", "x0", "y0", "x1", "y1"]].values.tolist()
    [['r1', 'cat', 0.1, 0.2, 0.4, 0.6]]
    """
    tasks = [obj] if isinstance(obj, dict) else obj
    if not isinstance(tasks, list):
        raise FormatError(f"expected a list of tasks, got {type(obj).__name__}", file=file, field="[]")
    rd = _Reader(file, dataset, image_key, asset_sizes(assets), skip_unsupported)
    for t, task in enumerate(tasks):
        _task(rd, task, t, root)
    labels = list(dict.fromkeys(r["label"] for r in rd.rows if r.get("label") is not None))
    return Tables(
        annotations=schema.annotations_frame(rd.rows),
        assets=schema.assets_frame(list(rd.assets.values())),
        labels=schema.labels_frame([{"dataset": dataset, "name": n, "index": i} for i, n in enumerate(labels)]),
    )


def read_tasks(
    tasks: list[Any], *, dataset: str, sizes: Mapping[str, tuple[int, int]] | None = None, image_key: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Tasks as a Label Studio server lists them: (row dicts, assets by task id, per annotation the results no row
    holds). The asset is the task id, a row's id is ``<annotation>/<result id>`` (a prediction's ``p<id>/...``), its
    ``rev`` the annotation's ``updated_at``; unsupported results are kept aside, never an error. ``sizes``: task id
    -> (width, height) where the results do not say."""
    rd = _Reader("<Label Studio>", dataset, image_key, sizes or {}, True, server=True)
    for t, task in enumerate(tasks):
        _task(rd, task, t, None)
    return rd.rows, rd.assets, {str(k): v for k, v in rd.skipped.items() if k is not None}


def load_labelstudio(path: str | Path, *, dataset: str | None = None, **options: Any) -> Tables:
    """Read a Label Studio JSON export file."""
    path = Path(path)
    text = read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno, field="json") from None
    except RecursionError:
        raise FormatError("JSON nested too deeply to read", file=str(path), field="json") from None
    return labelstudio_to_tables(
        obj, file=str(path), dataset=dataset or dataset_name(path), root=path.parent, **options
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _can_write(r: Mapping[str, Any], size: tuple[int, int] | None) -> bool:
    kind = r["kind"]
    if kind == "box":
        return not r.get("rotation") or size is not None
    if kind in ("polygon", "polyline"):
        return r.get("points") is not None and len(r["points"]) == 1
    if kind == "keypoints":
        pts: Any = r.get("points") or ()
        return len(pts) == 1 and len(pts[0]) == 2 and not any(math.isnan(v) for v in pts[0])
    if kind == "tag":
        return r.get("value") is True or r.get("value") is None
    return kind == "caption"


def _value(r: dict[str, Any], size: tuple[int, int] | None) -> dict[str, Any]:
    kind, attrs = r["kind"], r.get("attributes") or {}
    if kind == "box":
        x, y, w, h = box_to_ls(r["x0"], r["y0"], r["x1"], r["y1"], float(r.get("rotation") or 0.0), size)
        value: dict[str, Any] = {"x": x, "y": y, "width": w, "height": h, "rotation": float(r.get("rotation") or 0.0)}
    elif kind in ("polygon", "polyline"):
        ring = r["points"][0]
        value = {
            "points": [[ring[i] * 100, ring[i + 1] * 100] for i in range(0, len(ring) - 1, 2)],
            "closed": kind == "polygon",
        }
    elif kind == "keypoints":
        value = {"x": r["points"][0][0] * 100, "y": r["points"][0][1] * 100}
    elif kind == "caption":
        return {"text": ["" if r.get("text") is None else str(r["text"])]}
    else:
        return {"choices": [str(r["label"])]}
    labels = attrs.get("labels") if isinstance(attrs.get("labels"), list) else None
    value[WRITE_TYPE[kind]] = (
        [str(x) for x in labels] if labels else ([] if r.get("label") is None else [str(r["label"])])
    )
    return value


def _per_region(r: dict[str, Any], rid: str, to_name: str) -> list[dict[str, Any]]:
    """The region's attributes as per-region control results (same id as the region)."""
    out = []
    for key, v in (r.get("attributes") or {}).items():
        if key in ("ls_from_name", "ls_to_name", "labels") or v is None:
            continue
        name, _, rtype = key.partition(":")
        if not rtype:
            rtype = "choices" if isinstance(v, (str, bool, list)) else "number"
        content = v if isinstance(v, list) or rtype == "number" else [str(v) if isinstance(v, bool) else v]
        value = {("text" if rtype == "textarea" else rtype): content}
        out.append({"id": rid, "from_name": name, "to_name": to_name, "type": rtype, "value": value})
    return out


def _brush_result(r: dict[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A tag row with ``attributes["mask"]``: the brush result it was read from (its label may have changed)."""
    mask = dict(attrs["mask"])
    res: dict[str, Any] = {"id": str(r["id"]), "type": "brushlabels",
                           "from_name": str(attrs.get("ls_from_name", DEFAULT_FROM["mask"])),
                           "to_name": str(attrs.get("ls_to_name", DEFAULT_TO))}  # fmt: skip
    res.update({k: mask.pop(k) for k in ("original_width", "original_height") if k in mask})
    res["value"] = {**mask, "brushlabels": [] if r.get("label") is None else [str(r["label"])]}
    if r.get("score") is not None:
        res["score"] = float(r["score"])
    return res


def _results(r: dict[str, Any], size: tuple[int, int] | None) -> list[dict[str, Any]]:
    attrs = r.get("attributes") or {}
    kind = r["kind"]
    if kind == "tag" and isinstance(attrs.get("mask"), Mapping):
        return [_brush_result(r, attrs)]
    to_name = str(attrs.get("ls_to_name", DEFAULT_TO))
    res: dict[str, Any] = {
        "id": str(r["id"]),
        "type": WRITE_TYPE[kind],
        "from_name": str(attrs.get("ls_from_name", DEFAULT_FROM[kind])),
        "to_name": to_name,
        "value": _value(r, size),
    }
    if size is not None and kind not in ("tag", "caption"):
        res["original_width"], res["original_height"], res["image_rotation"] = size[0], size[1], 0
    if r.get("score") is not None:
        res["score"] = float(r["score"])
    extra = _per_region(r, res["id"], to_name) if kind in ("box", "polygon", "polyline", "keypoints") else []
    return [res, *extra]


def _merge_choices(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tag rows of one ``<id>``, ``<id>#1``... and one control back into one choices result."""
    out: list[dict[str, Any]] = []
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for res in results:
        if res["type"] in ("choices", "textarea") and "#" in res["id"]:
            base = res["id"].rsplit("#", 1)[0]
            key = (base, res["from_name"])
            if key in by_key:
                field_ = "choices" if res["type"] == "choices" else "text"
                by_key[key]["value"][field_] += res["value"][field_]
                continue
        if res["type"] in ("choices", "textarea"):
            by_key[(res["id"], res["from_name"])] = res
        out.append(res)
    return out


def _task_of(image: str, rows: list[dict[str, Any]], size: tuple[int, int] | None, image_key: str) -> dict[str, Any]:
    groups: dict[tuple[bool, str | None], list[dict[str, Any]]] = {}
    for r in rows:
        author = r.get("author")
        model = author is not None and str(author).startswith("model:")
        groups.setdefault((model, author), []).append(r)
    task: dict[str, Any] = {"data": {image_key: image}, "annotations": [], "predictions": []}
    for (model, author), members in groups.items():
        results = _merge_choices([res for r in members for res in _results(r, size)])
        if model:
            task["predictions"].append({"model_version": str(author)[len("model:") :], "result": results})
        else:
            group: dict[str, Any] = {"result": results}
            if author is not None and str(author).isdigit():
                group["completed_by"] = int(str(author))
            task["annotations"].append(group)
    return task


def tables_to_labelstudio(
    tables: Tables, *, image_key: str = "image", skip_unsupported: bool = False
) -> list[dict[str, Any]]:
    """The tasks of a Label Studio import: one per asset, every asset (with or without rows)."""
    sizes = asset_sizes(tables.assets)
    anns = tables.annotations
    ok = [
        _can_write(r, sizes.get(str(r["asset"])))
        for r in records(anns[["asset", "kind", "rotation", "points", "value"]])
    ]
    anns = carried(
        anns,
        ok,
        what="Label Studio results",
        why="they hold no multi-point keypoints, polygons with holes, false tags, rotated boxes without an image "
        "size, groundings or qa",
        skip=skip_unsupported,
    )
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in records(anns):
        by_asset.setdefault(str(r["asset"]), []).append(r)
    order = list(dict.fromkeys([*map(str, tables.assets["asset"]), *by_asset]))
    names = {str(r["asset"]): file_name(r["asset"], r.get("name")) for r in records(tables.assets[["asset", "name"]])}
    return [_task_of(names.get(a) or a, by_asset.get(a, []), sizes.get(a), image_key) for a in order]


TAGS = {
    "rectanglelabels": "RectangleLabels",
    "polygonlabels": "PolygonLabels",
    "keypointlabels": "KeyPointLabels",
    "choices": "Choices",
    "textarea": "TextArea",
    "brushlabels": "BrushLabels",
    "number": "Number",
    "rating": "Rating",
}


def _controls(tasks: list[dict[str, Any]]) -> dict[tuple[str, str, str, bool], dict[str, None]]:
    """(type, from_name, to_name, per region) -> the label values the tasks' results use."""
    controls: dict[tuple[str, str, str, bool], dict[str, None]] = {}
    for t in tasks:
        for g in t["annotations"] + t["predictions"]:
            regions = {r["id"] for r in g["result"] if r["type"] in REGION_TYPES}
            for r in g["result"]:
                per = r["type"] not in REGION_TYPES and r["id"] in regions
                names = controls.setdefault((r["type"], r["from_name"], r["to_name"], per), {})
                if r["type"] not in ("textarea", "number", "rating"):
                    names.update(dict.fromkeys(str(v) for v in r["value"].get(r["type"], [])))
    return controls


def label_config(tasks: list[dict[str, Any]], *, image_key: str = "image") -> str:
    """A labelling config (XML) with the controls and labels that ``tasks`` (as written here) use."""
    controls = _controls(tasks)
    images = dict.fromkeys(k[2] for k in controls) or {DEFAULT_TO: None}
    lines = ["<View>", *(f"  <Image name={quoteattr(n)} value={quoteattr('$' + image_key)}/>" for n in images)]
    for (rtype, name, to, per), values in controls.items():
        tag = TAGS.get(rtype, rtype.capitalize())
        attrs = f"name={quoteattr(name)} toName={quoteattr(to)}" + (' perRegion="true"' if per else "")
        if rtype in ("textarea", "number", "rating"):
            lines.append(f"  <{tag} {attrs}/>")
            continue
        child = "Choice" if rtype == "choices" else "Label"
        lines += [f"  <{tag} {attrs}>", *(f"    <{child} value={quoteattr(v)}/>" for v in values), f"  </{tag}>"]
    return "\n".join([*lines, "</View>"]) + "\n"


def save_labelstudio(tables: Tables, path: str | Path, **options: Any) -> list[Path]:
    """Write a Label Studio import file (a list of tasks) to ``path`` (a .json file, or tasks.json in a folder)."""
    path = Path(path)
    tasks = tables_to_labelstudio(tables, **options)
    target = path if path.suffix.lower() == ".json" else path / "tasks.json"
    return [atomic_write(target, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")]


def _sniff(path: Path) -> bool:
    if path.is_dir() or path.suffix.lower() != ".json":
        return False
    start = head(path, 8192)
    return (
        start.startswith(b"[")
        and b'"data"' in start
        and (b'"annotations"' in start or b'"predictions"' in start or b'"result"' in start)
    )


register_format(
    FormatSpec(
        name="labelstudio",
        load=load_labelstudio,
        save=save_labelstudio,
        sniff=_sniff,
        description="Label Studio JSON export (tasks with annotations and predictions; percent coordinates)",
        aliases=("label_studio", "ls_json"),
    )
)
