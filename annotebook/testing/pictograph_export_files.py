"""The files of a Pictograph export, one writer per format, written from the simulator's own annotation lists.

The SDK names the formats (``pictograph/models/export.py``) but not what the ZIP holds, so the layouts are ours, in
each format's usual shape, from Pictograph's canonical annotations (pixels; see `pictograph_state`):

- ``pictograph``: ``annotations/<file>.json`` per image, the seed doc's export file (``image``, ``image_uuid``,
  ``image_path``, ``width``, ``height``, ``annotation_count``, ``dataset``, ``annotations`` as held), and
  ``classes.json`` (the dataset's classes, skeletons included);
- ``coco``: ``annotations.json``; categories are the classes in dataset order (ids 1..n); a polygon's rings are
  its ``segmentation``; a pose (joints sharing an ``instance_id`` that a class template covers, as the SDK groups
  them) is one annotation of its class with ``[x, y, v]`` triplets in node order and a 1-based ``skeleton``; other
  keypoints are one-point annotations of their own class; polylines have no COCO form;
- ``yolo``: ``data.yaml`` and ``labels/<stem>.txt`` (``cls cx cy w h`` for a box, ``cls x y ...`` for a polygon's
  outline, normalised); ``yolo_obb``: ``labels/<stem>.txt`` with a box's four (rotated) corners; ``yolo_pose``:
  ``labels/<stem>.txt`` with ``cls cx cy w h`` and ``x y v`` per node of each pose, ``data.yaml`` with ``kpt_shape``;
- ``dota``: ``labelTxt/<stem>.txt``, ``x1 y1 ... x4 y4 class 0`` in pixels;
- ``pascal_voc``: ``Annotations/<stem>.xml`` (boxes, 1-based inclusive pixels rounded half up, as VOC has it);
- ``cvat``: ``annotations.xml`` (CVAT for images 1.1: box, polygon outline, polyline, points);
- ``datumaro``: ``annotations/default.json``; ``labelme``: ``<stem>.json`` per image; ``darwin``: ``<stem>.json``
  per image (Darwin JSON 2.0); ``csv``: ``annotations.csv`` of boxes, ``filename,xmin,ymin,xmax,ymax,label`` in
  pixels.

With ``include_images`` each image with pixels is placed in ``images/`` (VOC: ``JPEGImages/``); with
``organize_by_split`` every path goes under ``train/``, ``valid/`` or ``test/`` by the image's split.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["FORMATS", "Source", "write_export"]

Files = dict[str, bytes]


@dataclass
class Source:
    """What an export is made of: each image with its annotations as held, the classes, the pixels."""

    images: list[tuple[dict[str, Any], list[dict[str, Any]]]]
    classes: list[dict[str, Any]]
    dataset: str
    files: Mapping[str, Path] = field(default_factory=dict)

    def index(self) -> dict[str, int]:
        return {str(c["name"]): i for i, c in enumerate(self.classes)}

    def templates(self) -> dict[str, list[str]]:
        out = {}
        for c in self.classes:
            nodes = (c.get("skeleton") or {}).get("nodes") or []
            if nodes:
                out[str(c["name"])] = [str(n["name"]) for n in nodes]
        return out


def _stem(img: Mapping[str, Any]) -> str:
    return PurePosixPath(str(img["filename"])).stem


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _corners(a: Mapping[str, Any]) -> list[tuple[float, float]]:
    """A box's four corners (clockwise from top-left), turned by its ``oriented_box`` when it has one."""
    ob = a.get("oriented_box")
    if isinstance(ob, Mapping):
        cx, cy, w, h, t = ob["cx"], ob["cy"], ob["w"], ob["h"], math.radians(float(ob.get("angle") or 0))
        c, s = math.cos(t), math.sin(t)
        offsets = ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))
        return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in offsets]
    b = a["bounding_box"]
    x, y, w, h = b["x"], b["y"], b["w"], b["h"]
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _box(a: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """An annotation's extent (x, y, w, h) in pixels."""
    if a["type"] == "bbox":
        b = a["bounding_box"]
        return float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"])
    pts = _points(a)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def _rings(a: Mapping[str, Any]) -> list[list[tuple[float, float]]]:
    geom = a["polygon"]
    rings = geom["paths"] if "paths" in geom else [geom["path"]]
    return [[(float(p["x"]), float(p["y"])) for p in ring] for ring in rings]


def _points(a: Mapping[str, Any]) -> list[tuple[float, float]]:
    if a["type"] == "polygon":
        return _rings(a)[0]
    if a["type"] == "polyline":
        return [(float(p["x"]), float(p["y"])) for p in a["polyline"]["path"]]
    if a["type"] == "keypoint":
        return [(float(a["keypoint"]["x"]), float(a["keypoint"]["y"]))]
    return _corners(a)


def _occluded(a: Mapping[str, Any]) -> bool:
    attrs = a.get("attributes")
    raw = attrs.get("occluded") if isinstance(attrs, Mapping) else None
    return raw is True or str(raw).strip().lower() in {"true", "1", "yes", "y", "t", "occluded"}


def _poses(anns: Sequence[dict[str, Any]], templates: Mapping[str, list[str]]) -> tuple[list[Any], list[Any]]:
    """The image's poses as (class, joints by node or None) and the keypoints that are not part of one."""
    objects: dict[int, list[dict[str, Any]]] = {}
    loose = []
    for a in anns:
        if a["type"] != "keypoint":
            continue
        if isinstance(a.get("instance_id"), int):
            objects.setdefault(a["instance_id"], []).append(a)
        else:
            loose.append(a)
    poses = []
    for _, joints in sorted(objects.items()):
        names = {j["name"] for j in joints}
        best = max(templates, key=lambda c: len(names & set(templates[c])), default=None)
        if best is None or not names & set(templates[best]):
            loose += joints
            continue
        slots: list[dict[str, Any] | None] = [None] * len(templates[best])
        for j in joints:
            k = templates[best].index(j["name"]) if j["name"] in templates[best] else -1
            if k < 0 or slots[k] is not None:
                loose.append(j)
            else:
                slots[k] = j
        poses.append((best, slots))
    return poses, loose


def _triplets(slots: Sequence[Mapping[str, Any] | None]) -> list[float]:
    out: list[float] = []
    for j in slots:
        if j is None:
            out += [0.0, 0.0, 0.0]
        else:
            out += [float(j["keypoint"]["x"]), float(j["keypoint"]["y"]), 1.0 if _occluded(j) else 2.0]
    return out


# -- the formats ---------------------------------------------------------------------------------------------------
def _pictograph(src: Source) -> Files:
    out = {"classes.json": _json(src.classes)}
    for img, anns in src.images:
        out[f"annotations/{img['filename']}.json"] = _json({
            "image": img["filename"], "image_uuid": img["id"], "image_path": "/" + str(img.get("directory_path") or ""),
            "width": img["width"], "height": img["height"], "annotation_count": len(anns),
            "dataset": {"name": src.dataset, "slug": src.dataset}, "annotations": anns})  # fmt: skip
    return out


def _coco(src: Source) -> Files:
    index, templates = src.index(), src.templates()
    cats = []
    for i, c in enumerate(src.classes):
        cat: dict[str, Any] = {"id": i + 1, "name": c["name"], "supercategory": ""}
        if c["name"] in templates:
            nodes = c["skeleton"]
            cat["keypoints"] = templates[c["name"]]
            cat["skeleton"] = [[a + 1, b + 1] for a, b in nodes.get("edges") or []]
        cats.append(cat)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []

    def add(image_id: int, name: str, box: tuple[float, float, float, float], **more: Any) -> None:
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": index[name] + 1,
                            "bbox": list(box), "area": box[2] * box[3], "iscrowd": 0, **more})  # fmt: skip

    for n, (img, anns) in enumerate(src.images, start=1):
        images.append({"id": n, "file_name": img["filename"], "width": img["width"], "height": img["height"]})
        for a in anns:
            if a["type"] == "bbox":
                add(n, a["name"], _box(a), segmentation=[])
            elif a["type"] == "polygon":
                add(n, a["name"], _box(a), segmentation=[[c for p in r for c in p] for r in _rings(a)])
        poses, loose = _poses(anns, templates)
        for label, slots in poses:
            flat = _triplets(slots)
            placed = [j for j in slots if j is not None]
            xs, ys = [float(j["keypoint"]["x"]) for j in placed], [float(j["keypoint"]["y"]) for j in placed]
            box = (min(xs), min(ys), max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0))
            add(n, label, box, segmentation=[], keypoints=flat, num_keypoints=len(placed))
        for j in loose:
            x, y = float(j["keypoint"]["x"]), float(j["keypoint"]["y"])
            add(n, j["name"], (x - 0.5, y - 0.5, 1.0, 1.0), segmentation=[],
                keypoints=[x, y, 1.0 if _occluded(j) else 2.0], num_keypoints=1)  # fmt: skip
    return {"annotations.json": _json({"images": images, "annotations": annotations, "categories": cats})}


def _yaml(src: Source, extra: str = "") -> bytes:
    names = "".join(f"  {i}: {json.dumps(str(c['name']))}\n" for i, c in enumerate(src.classes))
    return f"path: .\ntrain: images\nval: images\n{extra}names:\n{names}".encode()


def _per_image(src: Source, folder: str, suffix: str, line: Callable[[dict[str, Any], Any], list[str]]) -> Files:
    return {f"{folder}/{_stem(img)}{suffix}": "".join(s + "\n" for s in line(img, anns)).encode()
            for img, anns in src.images}  # fmt: skip


def _n(v: float) -> str:
    return f"{v:.6f}"


def _yolo(src: Source) -> Files:
    index = src.index()

    def lines(img: dict[str, Any], anns: list[dict[str, Any]]) -> list[str]:
        w, h = float(img["width"]), float(img["height"])
        out = []
        for a in anns:
            if a["type"] == "bbox":
                x, y, bw, bh = _box(a)
                out.append(
                    f"{index[a['name']]} {_n((x + bw / 2) / w)} {_n((y + bh / 2) / h)} {_n(bw / w)} {_n(bh / h)}"
                )
            elif a["type"] == "polygon":
                out.append(f"{index[a['name']]} " + " ".join(f"{_n(x / w)} {_n(y / h)}" for x, y in _rings(a)[0]))
        return out

    return {"data.yaml": _yaml(src), **_per_image(src, "labels", ".txt", lines)}


def _yolo_obb(src: Source) -> Files:
    index = src.index()

    def lines(img: dict[str, Any], anns: list[dict[str, Any]]) -> list[str]:
        w, h = float(img["width"]), float(img["height"])
        return [f"{index[a['name']]} " + " ".join(f"{_n(x / w)} {_n(y / h)}" for x, y in _corners(a))
                for a in anns if a["type"] == "bbox"]  # fmt: skip

    return {"data.yaml": _yaml(src), **_per_image(src, "labels", ".txt", lines)}


def _yolo_pose(src: Source) -> Files:
    index, templates = src.index(), src.templates()
    widest = max((len(t) for t in templates.values()), default=0)

    def lines(img: dict[str, Any], anns: list[dict[str, Any]]) -> list[str]:
        w, h = float(img["width"]), float(img["height"])
        out = []
        for label, slots in _poses(anns, templates)[0]:
            flat = _triplets(slots) + [0.0] * 3 * (widest - len(slots))
            placed = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 3) if flat[i + 2] > 0]
            x0, y0 = min(p[0] for p in placed), min(p[1] for p in placed)
            x1, y1 = max(p[0] for p in placed), max(p[1] for p in placed)
            kps = " ".join(
                f"{_n(flat[i] / w)} {_n(flat[i + 1] / h)} {int(flat[i + 2])}" for i in range(0, len(flat), 3)
            )
            out.append(f"{index[label]} {_n((x0 + x1) / 2 / w)} {_n((y0 + y1) / 2 / h)} {_n((x1 - x0) / w)} "
                       f"{_n((y1 - y0) / h)} {kps}")  # fmt: skip
        return out

    return {"data.yaml": _yaml(src, f"kpt_shape: [{widest}, 3]\n"), **_per_image(src, "labels", ".txt", lines)}


def _dota(src: Source) -> Files:
    def lines(img: dict[str, Any], anns: list[dict[str, Any]]) -> list[str]:
        return [" ".join(f"{x:.1f} {y:.1f}" for x, y in _corners(a)) + f" {a['name']} 0"
                for a in anns if a["type"] == "bbox"]  # fmt: skip

    return _per_image(src, "labelTxt", ".txt", lines)


def _voc(src: Source) -> Files:
    out = {}
    for img, anns in src.images:
        objects = []
        for a in anns:
            if a["type"] != "bbox":
                continue
            x, y, w, h = _box(a)
            edges = [math.floor(x + 0.5) + 1, math.floor(y + 0.5) + 1, math.floor(x + w + 0.5),
                     math.floor(y + h + 0.5)]  # fmt: skip
            objects.append(f"<object><name>{escape(a['name'])}</name><pose>Unspecified</pose><truncated>0</truncated>"
                           f"<difficult>0</difficult><bndbox><xmin>{edges[0]}</xmin><ymin>{edges[1]}</ymin>"
                           f"<xmax>{edges[2]}</xmax><ymax>{edges[3]}</ymax></bndbox></object>")  # fmt: skip
        out[f"Annotations/{_stem(img)}.xml"] = (
            f"<annotation><folder>JPEGImages</folder><filename>{escape(img['filename'])}</filename>"
            f"<size><width>{img['width']}</width><height>{img['height']}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{''.join(objects)}</annotation>\n"
        ).encode()
    return out


def _cvat(src: Source) -> Files:
    def pts(points: Sequence[tuple[float, float]]) -> str:
        return quoteattr(";".join(f"{x:.2f},{y:.2f}" for x, y in points))

    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>']
    for n, (img, anns) in enumerate(src.images):
        parts.append(f"<image id=\"{n}\" name={quoteattr(img['filename'])} width=\"{img['width']}\" "
                     f"height=\"{img['height']}\">")  # fmt: skip
        for a in anns:
            label = quoteattr(a["name"])
            if a["type"] == "bbox":
                x, y, w, h = _box(a)
                turn = float((a.get("oriented_box") or {}).get("angle") or 0)
                parts.append(f'<box label={label} xtl="{x:.2f}" ytl="{y:.2f}" xbr="{x + w:.2f}" ybr="{y + h:.2f}" '
                             f'rotation="{turn:.2f}" occluded="0"/>')  # fmt: skip
            else:
                tag = {"polygon": "polygon", "polyline": "polyline", "keypoint": "points"}[a["type"]]
                parts.append(f'<{tag} label={label} points={pts(_points(a))} occluded="{int(_occluded(a))}"/>')
        parts.append("</image>")
    parts.append("</annotations>\n")
    return {"annotations.xml": "".join(parts).encode()}


def _datumaro(src: Source) -> Files:
    index = src.index()
    kinds = {"bbox": "bbox", "polygon": "polygon", "polyline": "polyline", "keypoint": "points"}
    items = []
    for img, anns in src.images:
        out = []
        for n, a in enumerate(anns):
            ann: dict[str, Any] = {"id": n, "type": kinds[a["type"]], "label_id": index[a["name"]],
                                   "attributes": a.get("attributes") or {}}  # fmt: skip
            if a["type"] == "bbox":
                ann["bbox"] = list(_box(a))
            else:
                ann["points"] = [c for p in _points(a) for c in p]
            out.append(ann)
        items.append({"id": _stem(img), "annotations": out,
                      "image": {"path": img["filename"], "size": [img["height"], img["width"]]}})  # fmt: skip
    doc = {"info": {}, "categories": {"label": {"labels": [{"name": c["name"]} for c in src.classes]}},
           "items": items}  # fmt: skip
    return {"annotations/default.json": _json(doc)}


def _labelme(src: Source) -> Files:
    shapes = {"bbox": "rectangle", "polygon": "polygon", "polyline": "linestrip", "keypoint": "point"}
    out = {}
    for img, anns in src.images:
        items = []
        for a in anns:
            if a["type"] == "bbox":
                x, y, w, h = _box(a)
                points = [[x, y], [x + w, y + h]]
            else:
                points = [list(p) for p in _points(a)]
            items.append({"label": a["name"], "points": points, "group_id": a.get("instance_id"),
                          "shape_type": shapes[a["type"]], "flags": {}})  # fmt: skip
        out[f"{_stem(img)}.json"] = _json({"version": "5.4.1", "flags": {}, "shapes": items,
                                           "imagePath": img["filename"], "imageData": None,
                                           "imageHeight": img["height"], "imageWidth": img["width"]})  # fmt: skip
    return out


def _darwin(src: Source) -> Files:
    out = {}
    for img, anns in src.images:
        items = []
        for a in anns:
            item: dict[str, Any] = {"id": a["id"], "name": a["name"]}
            if a["type"] == "bbox":
                x, y, w, h = _box(a)
                item["bounding_box"] = {"x": x, "y": y, "w": w, "h": h}
            elif a["type"] == "polygon":
                item["polygon"] = {"paths": [[{"x": x, "y": y} for x, y in r] for r in _rings(a)]}
            elif a["type"] == "polyline":
                item["line"] = {"path": [{"x": x, "y": y} for x, y in _points(a)]}
            else:
                item["keypoint"] = {"x": a["keypoint"]["x"], "y": a["keypoint"]["y"]}
            items.append(item)
        doc = {"version": "2.0", "item": {"name": img["filename"], "path": "/",
                                          "slots": [{"type": "image", "width": img["width"],
                                                     "height": img["height"]}]},
               "annotations": items}  # fmt: skip
        out[f"{_stem(img)}.json"] = _json(doc)
    return out


def _csv(src: Source) -> Files:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["filename", "xmin", "ymin", "xmax", "ymax", "label"])
    for img, anns in src.images:
        for a in anns:
            if a["type"] == "bbox":
                x, y, w, h = _box(a)
                writer.writerow([img["filename"], repr(x), repr(y), repr(x + w), repr(y + h), a["name"]])
    return {"annotations.csv": text.getvalue().encode()}


#: every export format of the SDK (``ExportFormat``) and its writer
FORMATS: dict[str, Callable[[Source], Files]] = {
    "pictograph": _pictograph, "darwin": _darwin, "coco": _coco, "yolo": _yolo, "yolo_obb": _yolo_obb,
    "yolo_pose": _yolo_pose, "dota": _dota, "pascal_voc": _voc, "cvat": _cvat, "datumaro": _datumaro,
    "labelme": _labelme, "csv": _csv,
}  # fmt: skip
_IMAGE_FOLDERS = {"pascal_voc": "JPEGImages"}
_SPLITS = {"train": "train", "val": "valid", "valid": "valid", "validation": "valid", "test": "test"}


def write_export(fmt: str, src: Source, include_images: bool, by_split: bool) -> Files:
    """Every file of an export in ``fmt``, by path in its ZIP (split folders with ``by_split``)."""
    if not by_split:
        files = FORMATS[fmt](src)
        if include_images:
            folder = _IMAGE_FOLDERS.get(fmt, "images")
            files.update({f"{folder}/{img['filename']}": src.files[img["id"]].read_bytes()
                          for img, _ in src.images if img["id"] in src.files})  # fmt: skip
        return files
    out: Files = {}
    for split in ("train", "valid", "test"):
        part = [(img, anns) for img, anns in src.images if _SPLITS.get(str(img.get("split")), "train") == split]
        if part:
            sub = Source(part, src.classes, src.dataset, src.files)
            out.update({f"{split}/{k}": v for k, v in write_export(fmt, sub, include_images, False).items()})
    return out
