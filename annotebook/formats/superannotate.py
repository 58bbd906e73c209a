"""SuperAnnotate vector JSON: one ``<image>___objects.json`` (or the newer ``<image>.json``) per image, with
``metadata`` (name, width, height, status ...), ``instances``, ``tags`` and ``comments``; a folder of those plus
``classes/classes.json`` (class ids, names, colours, attribute groups).

Pixel convention: absolute pixels on the pixel grid (x2 = width spans the whole image), like COCO.

Instances -> rows: ``bbox`` (``points`` x1, y1, x2, y2) -> box; ``rbbox`` (four corners x1, y1 ... x4, y4,
in drawing order) -> a box about its centre with ``rotation`` (degrees clockwise, the angle of the first edge);
``ellipse`` (cx, cy, rx, ry, angle) -> the box of its axes with ``rotation`` = angle and the attribute
``sa.shape: "ellipse"`` (the contract has no ellipse kind; the key tells a writer to send an ellipse back);
``polygon`` (flat ``points``, holes in ``exclude``) -> polygon; ``polyline`` -> polyline; ``point`` (x, y) -> a
one-point keypoints row; the image's ``tags`` (names, or objects with ``name`` / ``className``) -> tag rows with
value True. ``className`` (or the class of ``classId`` in classes.json) is the label; ``attributes``
``[{name, groupName}]`` become ``{groupName: name}`` (a list where a group has several); an instance ``id`` /
``instanceId`` is the row id, else ``<asset>#<n>``; ``createdBy.email`` is the author, else ``creationType``
(Manual, Preannotation, Predicted ...); ``probability`` below 100 is the score (100, SuperAnnotate's default for
every instance, reads as no score). An instance's own platform fields go to attributes under keys that start with
``sa.`` (never an attribute group): ``locked: true`` -> ``sa.locked``, a ``groupId`` other than 0 (instances
grouped together) -> ``sa.group``. ``metadata.status`` goes to the assets table's ``status``.

Video items (``metadata.duration`` in microseconds, ``instances[].meta`` and ``parameters[].timestamps[]``): one
row per keyframe timestamp, ``frame`` = round(timestamp * fps / 1e6) (``fps``, default 1 as the SDK's
``get_annotations_per_frame``), the instance's index in ``sa.instance`` and the exact timestamp in
``sa.timestamp``. Other instance types (cuboid, template, event ...) are a FormatError unless
``skip_unsupported=True``; comments are review notes, not annotations, and are not read.

Writing: one ``<file name>___objects.json`` per asset (``naming="json"`` writes ``<file name>.json``), every asset
of the assets table, and ``classes/classes.json`` with the labels table's ids and colours and the attribute
groups the rows use.

Sources: SuperAnnotate "Vector JSON" (https://doc.superannotate.com/docs/vector-json), the SDK's
``upload_annotations_from_folder_to_project`` naming (``<image_filename>___objects.json``) and
``download_annotations`` (``<item name>.json`` plus ``classes/classes.json``), superannotate 4.6.2.

Keeps (`annotebook.formats._kept`, a write warns about the rest): score yes, split no, status no, author yes,
attributes as text (SuperAnnotate's attributes are names: a number or boolean reads back as text).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..colors import label_color
from ..errors import FormatError
from ._io import head, read_text, write_files
from ._registry import FormatSpec, Tables, register_format
from ._rows import asset_sizes, carried, dataset_name, file_name, number, records, size_of, uri_beside

__all__ = [
    "instance_of",
    "load_superannotate",
    "parse_item",
    "save_superannotate",
    "superannotate_to_tables",
    "tables_to_superannotate",
]

SUFFIX = "___objects.json"
CLASSES = "classes/classes.json"
#: attribute keys that hold an instance's own fields (``sa.locked``, ``sa.shape`` ...), never an attribute group
OWN = "sa."
#: an author that is one of these is written as the instance's ``creationType``, else as ``createdBy.email``
CREATION_TYPES = frozenset({"Manual", "Preannotation", "Predicted", "Imported", "Automatic"})


@dataclass
class _Doc:
    """One image's annotation JSON being read."""

    file: str
    asset: str
    size: tuple[int, int] | None
    classes: Mapping[int, str]
    skip: bool
    rows: list[dict[str, Any]] = field(default_factory=list)

    def error(self, message: str, path: str) -> FormatError:
        return FormatError(message, file=self.file, field=path)

    def num(self, v: Any, path: str) -> float:
        if (type(v) is float or type(v) is int) and math.isfinite(v):  # the common case, without the error path
            return float(v)
        return number(v, file=self.file, field=path)


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _flat(doc: _Doc, pts: Any, path: str, minimum: int) -> tuple[float, ...]:
    """A flat [x, y, x, y ...] list in pixels -> normalised, with at least ``minimum`` vertices."""
    if not isinstance(pts, list) or len(pts) % 2:
        raise doc.error(f"expected a flat list of x, y values, got {pts!r}"[:200], path)
    if len(pts) < 2 * minimum:
        raise doc.error(f"needs at least {minimum} points, got {len(pts) // 2}", path)
    w, h = _need_size(doc, path)
    return tuple(doc.num(v, f"{path}[{i}]") / (w if i % 2 == 0 else h) for i, v in enumerate(pts))


def _need_size(doc: _Doc, path: str) -> tuple[int, int]:
    if doc.size is None:
        raise doc.error("pixel coordinates need metadata.width and metadata.height", "metadata.width")
    return doc.size


def _geometry(doc: _Doc, inst: dict[str, Any], path: str) -> dict[str, Any] | None:
    kind = inst.get("type")
    if kind == "bbox":
        pts = inst.get("points")
        if not isinstance(pts, dict):
            raise doc.error(f"expected an object with x1, y1, x2, y2, got {pts!r}", f"{path}.points")
        x1, y1, x2, y2 = (doc.num(pts.get(k), f"{path}.points.{k}") for k in ("x1", "y1", "x2", "y2"))
        if x2 < x1 or y2 < y1:
            raise doc.error(f"x2/y2 is less than x1/y1 in {pts}", f"{path}.points")
        w, h = _need_size(doc, path)
        return {"kind": "box", "x0": x1 / w, "y0": y1 / h, "x1": x2 / w, "y1": y2 / h, "rotation": 0.0}
    if kind == "rbbox":
        pts = inst.get("points")
        if not isinstance(pts, dict):
            raise doc.error(f"expected an object with x1, y1 ... x4, y4, got {pts!r}", f"{path}.points")
        xs = [doc.num(pts.get(f"x{i}"), f"{path}.points.x{i}") for i in range(1, 5)]
        ys = [doc.num(pts.get(f"y{i}"), f"{path}.points.y{i}") for i in range(1, 5)]
        cx, cy = sum(xs) / 4, sum(ys) / 4
        bw, bh = math.hypot(xs[1] - xs[0], ys[1] - ys[0]), math.hypot(xs[2] - xs[1], ys[2] - ys[1])
        angle = math.degrees(math.atan2(ys[1] - ys[0], xs[1] - xs[0])) % 360
        return _turned(doc, path, cx, cy, bw / 2, bh / 2, angle)
    if kind == "ellipse":
        cx, cy, rx, ry = (doc.num(inst.get(k), f"{path}.{k}") for k in ("cx", "cy", "rx", "ry"))
        angle = doc.num(inst.get("angle", 0), f"{path}.angle") % 360
        return {**_turned(doc, path, cx, cy, abs(rx), abs(ry), angle), "shape": "ellipse"}
    if kind == "polygon":
        rings = [_flat(doc, inst.get("points"), f"{path}.points", 3)]
        exclude = inst.get("exclude") or []
        if not isinstance(exclude, list):
            raise doc.error("expected a list of flat point lists", f"{path}.exclude")
        rings += [_flat(doc, ring, f"{path}.exclude[{i}]", 3) for i, ring in enumerate(exclude)]
        return {"kind": "polygon", "points": tuple(rings)}
    if kind == "polyline":
        return {"kind": "polyline", "points": (_flat(doc, inst.get("points"), f"{path}.points", 2),)}
    if kind == "point":
        w, h = _need_size(doc, path)
        x, y = doc.num(inst.get("x"), f"{path}.x"), doc.num(inst.get("y"), f"{path}.y")
        return {"kind": "keypoints", "points": ((x / w, y / h),), "visibility": (2,)}
    if doc.skip:
        return None
    raise doc.error(f"instance type {kind!r} is not supported; pass skip_unsupported=True", f"{path}.type")


def _turned(doc: _Doc, path: str, cx: float, cy: float, hw: float, hh: float, angle: float) -> dict[str, Any]:
    """A box of half sizes ``hw``, ``hh`` about (cx, cy) in pixels, turned ``angle`` degrees clockwise."""
    w, h = _need_size(doc, path)
    return {"kind": "box", "x0": (cx - hw) / w, "y0": (cy - hh) / h, "x1": (cx + hw) / w, "y1": (cy + hh) / h,
            "rotation": 0.0 if angle == 0 else angle}  # fmt: skip


def _attributes(doc: _Doc, attrs: Any, path: str) -> dict[str, Any] | None:
    if attrs is None:
        return None
    if not isinstance(attrs, list):
        raise doc.error(f"expected a list of {{name, groupName}}, got {type(attrs).__name__}", path)
    out: dict[str, Any] = {}
    for i, a in enumerate(attrs):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise doc.error(f"expected {{name, groupName}}, got {a!r}", f"{path}[{i}]")
        group = str(a.get("groupName") or a.get("groupId") or "")
        if group in out:
            prev = out[group]
            out[group] = [*prev, a["name"]] if isinstance(prev, list) else [prev, a["name"]]
        else:
            out[group] = a["name"]
    return out or None


def _label(doc: _Doc, inst: dict[str, Any], path: str) -> str | None:
    if isinstance(inst.get("className"), str):
        return str(inst["className"])
    cid = inst.get("classId")
    if cid is None or cid == -1:
        return None
    if isinstance(cid, bool) or not isinstance(cid, int) or cid not in doc.classes:
        raise doc.error(f"unknown class id {cid!r} (not in classes/classes.json)", f"{path}.classId")
    return doc.classes[cid]


_PLAIN = frozenset({"bbox", "polygon", "polyline", "point"})
_NUMBER = (int, float)


def _plain_instance(doc: _Doc, inst: Any) -> dict[str, Any] | None:
    """The common instance in one step: a bbox, polygon (no holes), polyline or point of plain numbers on a sized
    image, a ``className``, ``{name, groupName}`` attributes, none of the ``sa.`` fields. Anything else (and anything
    malformed) is None and goes to `_instance`, which checks every field and names what is wrong: the rows are the
    same either way (a test reads both paths)."""
    if type(inst) is not dict or doc.size is None:
        return None
    kind, label = inst.get("type"), inst.get("className")
    if kind not in _PLAIN or type(label) is not str or inst.get("locked") or inst.get("groupId") or "exclude" in inst:
        return None
    w, h = doc.size
    pts: Any = inst.get("points")
    x1: Any
    y1: Any
    x2: Any
    y2: Any
    if kind == "bbox":
        if type(pts) is not dict:
            return None
        x1, y1, x2, y2 = pts.get("x1"), pts.get("y1"), pts.get("x2"), pts.get("y2")
        if type(x1) not in _NUMBER or type(y1) not in _NUMBER or type(x2) not in _NUMBER or type(y2) not in _NUMBER:
            return None
        if not math.isfinite(x1 + y1 + x2 + y2) or x2 < x1 or y2 < y1:  # the sum is finite when each one is
            return None
        row: dict[str, Any] = {"kind": "box", "x0": x1 / w, "y0": y1 / h, "x1": x2 / w, "y1": y2 / h,
                               "rotation": 0.0}  # fmt: skip
    elif kind == "point":
        x: Any = inst.get("x")
        y: Any = inst.get("y")
        if type(x) not in _NUMBER or type(y) not in _NUMBER or not (math.isfinite(x) and math.isfinite(y)):
            return None
        row = {"kind": "keypoints", "points": ((x / w, y / h),), "visibility": (2,)}
    else:
        least = 6 if kind == "polygon" else 4
        if type(pts) is not list or len(pts) % 2 or len(pts) < least:
            return None
        if not all(type(v) in _NUMBER and math.isfinite(v) for v in pts):
            return None
        row = {"kind": kind, "points": (tuple(v / (w if k % 2 == 0 else h) for k, v in enumerate(pts)),)}
    attrs: dict[str, Any] | None = None
    raw = inst.get("attributes")
    if raw:
        if type(raw) is not list:
            return None
        attrs = {}
        for a in raw:
            if type(a) is not dict or type(a.get("name")) is not str:
                return None
            group = str(a.get("groupName") or a.get("groupId") or "")
            if group in attrs:
                return None  # several of one group: the checked path builds the list
            attrs[group] = a["name"]
    prob = inst.get("probability")
    if prob is not None and (type(prob) not in _NUMBER or not math.isfinite(prob)):
        return None
    created = inst.get("createdBy")
    author = created.get("email") if type(created) is dict else None
    if author is None and type(inst.get("creationType")) is str:
        author = inst["creationType"]
    own = inst.get("id", inst.get("instanceId"))
    row["own"] = None if own is None or isinstance(own, (bool, dict, list)) else str(own)
    row["label"], row["attributes"], row["author"] = label, attrs or None, author
    row["score"] = prob / 100 if prob is not None and prob < 100 else None
    return row


def _instance(doc: _Doc, inst: Any, i: int) -> None:
    plain = _plain_instance(doc, inst)
    if plain is not None:
        doc.rows.append(plain)
        return
    path = f"instances[{i}]"
    if not isinstance(inst, dict):
        raise doc.error(f"expected an object, got {type(inst).__name__}", path)
    geometry = _geometry(doc, inst, path)
    if geometry is None:
        return
    shape = geometry.pop("shape", None)
    own = inst.get("id", inst.get("instanceId"))
    doc.rows.append(
        {
            **geometry,
            "own": None if own is None or isinstance(own, (bool, dict, list)) else str(own),
            **_common(doc, inst, path, inst),
        }
    )
    if shape is not None:
        doc.rows[-1]["attributes"] = {**(doc.rows[-1]["attributes"] or {}), "sa.shape": shape}


def _common(doc: _Doc, inst: dict[str, Any], path: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Label, attributes (with the ``sa.`` keys of ``meta``'s own fields), score and author of an instance."""
    prob = meta.get("probability", inst.get("probability"))
    score = None
    if prob is not None:
        p = doc.num(prob, f"{path}.probability")
        score = p / 100 if p < 100 else None
    created = meta.get("createdBy")
    author = created.get("email") if isinstance(created, dict) else None
    if author is None and isinstance(meta.get("creationType"), str):
        author = meta["creationType"]
    attrs = _attributes(doc, inst.get("attributes"), f"{path}.attributes") or {}
    if meta.get("locked") is True:
        attrs["sa.locked"] = True
    group = meta.get("groupId")
    if isinstance(group, int) and not isinstance(group, bool) and group:
        attrs["sa.group"] = group
    return {"label": _label(doc, meta, path), "attributes": attrs or None, "score": score, "author": author}


def _video_instance(doc: _Doc, inst: Any, i: int, fps: float) -> None:
    """One video instance: a row per keyframe timestamp of each of its parameter spans."""
    path = f"instances[{i}]"
    meta = inst.get("meta") if isinstance(inst, dict) else None
    if not isinstance(meta, dict):
        raise doc.error("a video instance needs a meta object", f"{path}.meta")
    params = inst.get("parameters") or []
    if not isinstance(params, list):
        raise doc.error(f"expected a list, got {type(params).__name__}", f"{path}.parameters")
    for j, span in enumerate(params):
        stamps = span.get("timestamps") if isinstance(span, dict) else None
        if not isinstance(stamps, list):
            raise doc.error("expected a list of timestamps", f"{path}.parameters[{j}].timestamps")
        for k, ts in enumerate(stamps):
            at = f"{path}.parameters[{j}].timestamps[{k}]"
            if not isinstance(ts, dict):
                raise doc.error(f"expected an object, got {type(ts).__name__}", at)
            geometry = _geometry(doc, {**ts, "type": meta.get("type")}, at)
            if geometry is None:
                return
            shape = geometry.pop("shape", None)
            stamp = doc.num(ts.get("timestamp"), f"{at}.timestamp")
            common = _common(doc, ts, at, meta)
            attrs = {**(common.pop("attributes") or {}), "sa.instance": i, "sa.timestamp": int(stamp)}
            if shape is not None:
                attrs["sa.shape"] = shape
            frame = round(stamp * fps / 1e6)
            doc.rows.append({**geometry, "own": None, **common, "attributes": attrs, "frame": frame})


def _tags(doc: _Doc, tags: Any) -> None:
    if not isinstance(tags, list):
        raise doc.error(f"expected a list, got {type(tags).__name__}", "tags")
    for i, t in enumerate(tags):
        name = t if isinstance(t, str) else (t.get("name") or t.get("className")) if isinstance(t, dict) else None
        if not isinstance(name, str):
            raise doc.error(f"expected a tag name, got {t!r}", f"tags[{i}]")
        doc.rows.append({"kind": "tag", "label": name, "value": True})


def parse_item(
    obj: Any,
    *,
    file: str,
    asset: str | None = None,
    classes: Mapping[int, str] | None = None,
    skip_unsupported: bool = False,
    fps: float = 1.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(asset row, annotation rows without dataset/id) of one item's annotation JSON (an image's or a video's)."""
    if not isinstance(obj, dict):
        raise FormatError(f"expected an object, got {type(obj).__name__}", file=file, field="metadata")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise FormatError("missing or not an object", file=file, field="metadata")
    name = meta.get("name")
    if name is not None and not isinstance(name, str):
        raise FormatError(f"expected a string, got {name!r}", file=file, field="metadata.name")
    asset = asset or name
    if not asset:
        raise FormatError("no image name", file=file, field="metadata.name")
    has_size = meta.get("width") is not None or meta.get("height") is not None
    size = size_of(meta.get("width"), meta.get("height"), file=file, field="metadata") if has_size else None
    doc = _Doc(file, asset, size, classes or {}, skip_unsupported)
    instances = obj.get("instances", [])
    if not isinstance(instances, list):
        raise doc.error(f"expected a list, got {type(instances).__name__}", "instances")
    video = meta.get("duration") is not None or any(isinstance(x, dict) and "parameters" in x for x in instances)
    for i, inst in enumerate(instances):
        if video:
            _video_instance(doc, inst, i, fps)
        else:
            _instance(doc, inst, i)
    _tags(doc, obj.get("tags") or [])
    status = meta.get("status")
    duration = meta.get("duration")
    row = {
        "asset": asset,
        "name": name or asset.rsplit("/", 1)[-1],
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "status": status if isinstance(status, str) else None,
    }
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        row["frames"] = max(1, math.ceil(duration * fps / 1e6))
    return row, doc.rows


def _classes(obj: Any, file: str) -> list[dict[str, Any]]:
    """The labels of classes.json: id, name, colour."""
    if not isinstance(obj, list):
        raise FormatError(f"expected a list of classes, got {type(obj).__name__}", file=file, field="[]")
    out = []
    for i, c in enumerate(obj):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise FormatError(f"expected a class with a name, got {c!r}"[:200], file=file, field=f"[{i}].name")
        cid = c.get("id")
        if cid is not None and (isinstance(cid, bool) or not isinstance(cid, int)):
            raise FormatError(f"expected an integer id, got {cid!r}", file=file, field=f"[{i}].id")
        color = c.get("color") if isinstance(c.get("color"), str) else None
        out.append({"name": c["name"], "index": cid, "color": color})
    return out


def superannotate_to_tables(
    items: Mapping[str, Any],
    *,
    classes: Any = None,
    dataset: str = "superannotate",
    files: Mapping[str, str] | None = None,
    root: Path | None = None,
    skip_unsupported: bool = False,
) -> Tables:
    """The tables of ``{asset: annotation JSON object}`` and an optional classes.json list.

    ``files`` maps an asset to the file it came from (for error messages).

    >>> t = superannotate_to_tables({"a.jpg": {"metadata": {"name": "a.jpg", "width": 100, "height": 50},
    ...     "instances": [{"type": "bbox", "className": "cat", "points": {"x1": 10, "y1": 5, "x2": 60, "y2": 50}}]}})
    >>> t.annotations[["id", "label", "x0", "y0", "x1", "y1"]].values.tolist()
    [['a.jpg#0', 'cat', 0.1, 0.1, 0.6, 1.0]]
    """
    labels = _classes(classes, CLASSES) if classes is not None else []
    by_id = {c["index"]: c["name"] for c in labels if c["index"] is not None}
    rows: list[dict[str, Any]] = []
    assets, used = [], set()
    for asset, obj in items.items():
        file = (files or {}).get(asset, asset)
        arow, found = parse_item(obj, file=file, asset=asset, classes=by_id, skip_unsupported=skip_unsupported)
        uri = uri_beside(root, asset) if root is not None else None
        assets.append({"dataset": dataset, **arow, "uri": uri})
        for n, r in enumerate(found):
            own = r.pop("own", None)
            rid = own if own is not None and own not in used else f"{asset}#{n}"
            used.add(rid)
            rows.append({"dataset": dataset, "asset": asset, "id": rid, **r})
    names = {c["name"] for c in labels}
    used_labels = dict.fromkeys(r["label"] for r in rows if r.get("label"))
    labels += [{"name": n, "index": None, "color": None} for n in used_labels if n not in names]
    return Tables(
        annotations=schema.annotations_frame(rows),
        assets=schema.assets_frame(assets),
        labels=schema.labels_frame([{"dataset": dataset, **c} for c in labels]),
    )


def _item_files(path: Path) -> dict[Path, str]:
    """annotation file -> asset, for a folder (paths relative to it, ___objects.json / .json stripped)."""
    found = sorted(p for p in path.rglob("*.json") if p.is_file() and not p.name.startswith("."))
    for p in found:
        try:
            p.relative_to(path).as_posix().encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(p.relative_to(path)).decode("utf-8", "backslashreplace")
            raise FormatError("the file name is not UTF-8, so it cannot name an image", file=shown) from None
    return {
        p: "/".join([*p.relative_to(path).parts[:-1], _asset_of(p.name)]) for p in found if p.name != "classes.json"
    }


def _asset_of(name: str) -> str:
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name[: -len(".json")] if name.endswith(".json") else name


def _json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno, field="json") from None
    except RecursionError:
        raise FormatError("JSON nested too deeply to read", file=str(path), field="json") from None


def load_superannotate(path: str | Path, *, dataset: str | None = None, skip_unsupported: bool = False) -> Tables:
    """Read one image's annotation JSON, or a folder of them with classes/classes.json."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        files = _item_files(path)
        if not files:
            raise FormatError("no annotation JSON in this folder", file=str(path))
        items = {asset: _json(f) for f, asset in files.items()}
    else:
        obj = _json(path)
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        files = {path: name if isinstance(name, str) and name else _asset_of(path.name)}
        items = {files[path]: obj}
    classes_file = next((p for p in (root / CLASSES, root.parent / CLASSES) if p.is_file()), None)
    classes = _json(classes_file) if classes_file else None
    return superannotate_to_tables(
        items,
        classes=classes,
        dataset=dataset or dataset_name(path),
        files={asset: str(f) for f, asset in files.items()},
        root=root,
        skip_unsupported=skip_unsupported,
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _can_write(r: Mapping[str, Any], sized: bool) -> bool:
    kind = r["kind"]
    if r.get("frame") is not None:
        return False  # a video's rows: its JSON is per instance over timestamps, which this writer does not build
    if kind == "tag":
        return r.get("value") is not False
    if kind not in ("box", "polygon", "polyline", "keypoints") or not sized:
        return False
    if kind == "box":
        return True
    pts: Any = r.get("points") or ()
    if kind == "keypoints":
        return len(pts) == 1 and len(pts[0]) == 2 and not any(math.isnan(v) for v in pts[0])
    return kind == "polygon" or len(pts) == 1


def _sa_attributes(attrs: Mapping[str, Any] | None) -> list[dict[str, str]]:
    out = []
    for group, v in (attrs or {}).items():
        if str(group).startswith(OWN):
            continue
        for name in v if isinstance(v, list) else [v]:
            if name is not None:
                out.append({"name": str(name), "groupName": str(group)})
    return out


def instance_of(r: Mapping[str, Any], size: tuple[float, float], ident: bool = True) -> dict[str, Any]:
    """The vector instance of a canonical row (not a tag) on an image of ``size`` pixels; ``ident``: with its id."""
    w, h = size
    kind = r["kind"]
    attrs = r.get("attributes") or {}
    inst: dict[str, Any] = {"type": {"box": "bbox", "keypoints": "point"}.get(kind, kind)}
    if ident:
        inst["id"] = str(r["id"])
    if kind == "box":
        x0, y0, x1, y1 = r["x0"] * w, r["y0"] * h, r["x1"] * w, r["y1"] * h
        angle = float(r.get("rotation") or 0.0)
        if attrs.get("sa.shape") == "ellipse":
            inst.update(type="ellipse", cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, rx=(x1 - x0) / 2, ry=(y1 - y0) / 2,
                        angle=angle)  # fmt: skip
        elif angle:
            inst.update(type="rbbox", points=_corners(x0, y0, x1, y1, angle))
        else:
            inst["points"] = {"x1": x0, "y1": y0, "x2": x1, "y2": y1}
    elif kind == "keypoints":
        inst["x"], inst["y"] = r["points"][0][0] * w, r["points"][0][1] * h
    else:
        pix = [[v * (w if i % 2 == 0 else h) for i, v in enumerate(ring)] for ring in r["points"]]
        inst["points"] = pix[0]
        if len(pix) > 1:
            inst["exclude"] = pix[1:]
    if r.get("label") is not None:
        inst["className"] = str(r["label"])
    inst["attributes"] = _sa_attributes(attrs)
    inst["probability"] = 100 if r.get("score") is None else float(r["score"]) * 100
    author = r.get("author")
    if author in CREATION_TYPES:
        inst["creationType"] = author
    elif author is not None:
        inst["createdBy"] = {"email": str(author)}
    if attrs.get("sa.locked") is True:
        inst["locked"] = True
    if attrs.get("sa.group"):
        inst["groupId"] = int(attrs["sa.group"])
    return inst


def _corners(x0: float, y0: float, x1: float, y1: float, angle: float) -> dict[str, float]:
    """The four corners of a box turned ``angle`` degrees clockwise about its centre, as rbbox points."""
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    out: dict[str, float] = {}
    for i, (dx, dy) in enumerate(((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)), start=1):
        out[f"x{i}"], out[f"y{i}"] = cx + dx * c - dy * s, cy + dx * s + dy * c
    return out


def _item(arow: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    size = (int(arow["width"]), int(arow["height"])) if arow.get("width") and arow.get("height") else None
    meta: dict[str, Any] = {"name": str(arow["fname"]).rsplit("/", 1)[-1]}
    if size is not None:
        meta["width"], meta["height"] = size
    if arow.get("status") is not None:
        meta["status"] = str(arow["status"])
    instances = [instance_of(r, size) for r in rows if r["kind"] != "tag" and size is not None]
    tags = [str(r["label"]) for r in rows if r["kind"] == "tag" and r.get("label") is not None]
    return {"metadata": meta, "instances": instances, "tags": tags, "comments": []}


def _classes_json(tables: Tables, anns: pd.DataFrame) -> list[dict[str, Any]]:
    labels = schema.labels_frame(tables.labels)
    groups: dict[str, dict[str, dict[str, None]]] = {}
    for r in records(anns[["label", "attributes"]]):
        for a in _sa_attributes(r.get("attributes")):
            groups.setdefault(str(r["label"]), {}).setdefault(a["groupName"], {})[a["name"]] = None
    used = [str(x) for x in anns["label"].dropna().unique()]
    names = list(dict.fromkeys([*map(str, labels["name"]), *used]))
    ids = {str(n): int(i) for n, i in zip(labels["name"], labels["index"], strict=True) if not pd.isna(i)}
    top = max(ids.values(), default=0)
    out = []
    for n in names:
        if n not in ids:
            top = ids[n] = top + 1
        out.append(
            {
                "id": ids[n],
                "name": n,
                "color": label_color(n, labels),
                "type": 1,
                "attribute_groups": [
                    {"name": g, "attributes": [{"name": a} for a in vals]} for g, vals in groups.get(n, {}).items()
                ],
            }
        )
    return out


def _relative(fname: str) -> str:
    """A file name safe to join under the output folder: a URL, absolute or ``..`` path keeps its last part."""
    parts = fname.replace("\\", "/").split("/")
    if "://" in fname or fname.startswith("/") or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        return parts[-1] or "image"
    return fname


def tables_to_superannotate(
    tables: Tables, *, naming: str = "objects", skip_unsupported: bool = False
) -> dict[str, str]:
    """``{relative file name: JSON text}``: one annotation JSON per asset plus classes/classes.json."""
    sizes = asset_sizes(tables.assets)
    anns = tables.annotations
    ok = [
        _can_write(r, str(r["asset"]) in sizes)
        for r in records(anns[["asset", "kind", "rotation", "points", "value", "frame"]])
    ]
    anns = carried(
        anns,
        ok,
        what="SuperAnnotate vector JSON",
        why="it holds no captions, groundings, qa, multi-point keypoints, false tags or video frames, "
        "nor shapes on an image of unknown size",
        skip=skip_unsupported,
    )
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in records(anns):
        by_asset.setdefault(str(r["asset"]), []).append(r)
    arows = {str(r["asset"]): r for r in records(tables.assets)}
    files: dict[str, str] = {}
    for asset in dict.fromkeys([*arows, *by_asset]):
        arow = dict(arows.get(asset, {"asset": asset}))
        arow["fname"] = _relative(file_name(asset, arow.get("name")))
        suffix = SUFFIX if naming == "objects" else ".json"
        files[f"{arow['fname']}{suffix}"] = json.dumps(
            _item(arow, by_asset.get(asset, [])), ensure_ascii=False, indent=1
        )
    files[CLASSES] = json.dumps(_classes_json(tables, anns), ensure_ascii=False, indent=1)
    return files


def save_superannotate(tables: Tables, path: str | Path, **options: Any) -> list[Path]:
    """Write a folder of ``<image>___objects.json`` files and ``classes/classes.json``."""
    return write_files(Path(path), tables_to_superannotate(tables, **options))


def _sniff(path: Path) -> bool:
    if path.is_dir():
        if (path / CLASSES).is_file() or next(path.glob(f"*{SUFFIX}"), None) is not None:
            return True
        first = next((p for p in sorted(path.glob("*.json")) if p.name != "classes.json"), None)
        return first is not None and _sniff(first)
    if path.name.endswith(SUFFIX):
        return True
    start = head(path, 4096)
    return (
        path.suffix.lower() == ".json"
        and start.startswith(b"{")
        and b'"metadata"' in start
        and (b'"instances"' in start or b'"tags"' in start)
    )


register_format(
    FormatSpec(
        name="superannotate",
        load=load_superannotate,
        save=save_superannotate,
        sniff=_sniff,
        description="SuperAnnotate vector JSON (<image>___objects.json per image, classes/classes.json)",
        aliases=("sa_json",),
    )
)
