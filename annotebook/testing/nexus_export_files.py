"""The Nexus export files written here rather than by annotebook's writers, and `Export`, what they are built from.

Here: ``csv_vott``, ``csv_classification``, ``createml``, ``vott``, ``ibm``, the two ``*_openai_positional_encoding``
formats, ``keypoints_datature_raw`` and the TFRecord formats. What each file holds, and the zip around the files of
every format, is the wire contract in `nexus_exports`, whose `EXPORTS` names the builder of each format.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from ._tfrecord import _bytes, _floats, _ints, tf_example, tfrecord

__all__ = ["Builder", "Export", "Files"]

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


def _as_polygon(r: dict[str, Any]) -> dict[str, Any]:
    """A box row as the 4-vertex polygon Nexus stores for a Rectangle (other rows as they are)."""
    if r["kind"] != "box":
        return r
    x0, y0, x1, y1 = r["x0"], r["y0"], r["x1"], r["y1"]
    return {**r, "kind": "polygon", "points": ((x0, y0, x0, y1, x1, y1, x1, y0),)}


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
