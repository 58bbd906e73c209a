"""The SuperAnnotate simulator's team in memory: projects, folders, items, classes, workflow statuses, annotations.

One team (id 1) holds a Vector project "shapes" (its root folder seeded from `annotebook.samples.make_shapes`: boxes
as ``bbox`` or, turned, ``rbbox``; polygons; a pose as one ``point`` per labelled joint; plus a folder "folder1" of
two more images) and a Video project "clips" with one video item of keyframed boxes. ``n_annotations=`` seeds a
synthetic project without pixels instead, fast enough for benchmarks. Each item's annotation JSON is held as the
server keeps it, with its encoded bytes cached for the stream. Item statuses are the system workflow's integers
(`STATUSES`). The seeding converts with this module's own code, never the backend's or the format module's.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._server import Faults
from .kit import UrlSigner

__all__ = ["PROJECT_TYPES", "STATUSES", "SuperAnnotateState"]

_SIGNER = UrlSigner(b"annotebook-superannotate-sim", param="expires")
#: the system workflow's statuses: value -> name (the documented defaults)
STATUSES = {1: "NotStarted", 2: "InProgress", 3: "QualityCheck", 4: "Returned", 5: "Completed", 6: "Skipped"}
PROJECT_TYPES = {"Vector": 1, "Pixel": 2, "Video": 3, "Document": 4, "Tiled": 5, "Other": 6, "PointCloud": 7}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


class SuperAnnotateState:
    """One team with a Vector project "shapes" (root + "folder1") and a Video project "clips"."""

    def __init__(
        self,
        key: str | None = None,
        n_assets: int = 36,
        seed: int = 0,
        image_dir: str | Path | None = None,
        url_ttl: float = 3600.0,
        n_annotations: int | None = None,
        project: str = "shapes",
        group_size: int = 100,
    ):
        self.key, self.url_ttl = key, url_ttl
        #: items per small group of the ``download/method`` answer (the server decides how the SDK batches streams)
        self.group_size = group_size
        self.faults = Faults()
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="superannotate-sim-"))
        self.team_id, self.user_email = 1, "annotator@example.com"
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.projects: dict[int, dict[str, Any]] = {}
        self.folders: dict[int, dict[str, Any]] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.files: dict[int, Path] = {}
        self.annotations: dict[int, dict[str, Any]] = {}  # item id -> its annotation JSON
        self._encoded: dict[int, bytes] = {}
        self.classes: dict[int, list[dict[str, Any]]] = {}  # project id -> its classes
        self.polls: dict[int, int] = {}  # delete poll id -> progress
        self._next = {"item": 1000, "class": 50, "poll": 1}
        self.project_name = project
        self.project_id = self._add_project(10, project, "Vector")
        self.root_id = self._add_folder(100, "root", self.project_id, root=True)
        self.folder_id = self._add_folder(101, "folder1", self.project_id)
        if n_annotations is not None:
            self._seed_synthetic(n_assets, n_annotations, seed)
        else:
            self._seed_shapes(n_assets, seed)
        self.video_project_id = self._add_project(11, "clips", "Video")
        self.video_root_id = self._add_folder(110, "root", self.video_project_id, root=True)
        self._seed_video()

    # -- building ------------------------------------------------------------------------------------------------
    def _add_project(self, pid: int, name: str, kind: str) -> int:
        self.projects[pid] = {"id": pid, "team_id": self.team_id, "name": name, "type": PROJECT_TYPES[kind],
                              "description": "simulated", "status": 2, "workflow_id": 5, "upload_state": 1,
                              "createdAt": self.created, "updatedAt": self.created, "imageCount": 0}  # fmt: skip
        self.classes[pid] = []
        return pid

    def _add_folder(self, fid: int, name: str, project_id: int, root: bool = False) -> int:
        self.folders[fid] = {"id": fid, "name": name, "project_id": project_id, "team_id": self.team_id,
                             "is_root": root, "status": 1, "createdAt": self.created,
                             "updatedAt": self.created}  # fmt: skip
        return fid

    def add_class(self, project_id: int, name: str, groups: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        """A class of ``project_id`` (an object class, type 1) with attribute groups ``{group: [names]}``."""
        cid = self._next["class"]
        self._next["class"] += 1
        attribute_groups = []
        for g, (group, names) in enumerate((groups or {}).items()):
            attrs = [{"id": cid * 100 + g * 10 + i, "group_id": cid * 10 + g, "name": n, "default": 0}
                     for i, n in enumerate(names)]  # fmt: skip
            attribute_groups.append({"id": cid * 10 + g, "class_id": cid, "name": group, "group_type": "radio",
                                     "is_multiselect": 0, "isRequired": False, "attributes": attrs})  # fmt: skip
        cls = {"id": cid, "project_id": project_id, "name": name, "color": _COLORS[cid % len(_COLORS)], "type": 1,
               "count": 0, "attribute_groups": attribute_groups, "createdAt": self.created,
               "updatedAt": self.created}  # fmt: skip
        self.classes[project_id].append(cls)
        return cls

    def add_item(self, folder_id: int, name: str, width: int, height: int, status: int = 1,
                 file: Path | None = None, duration: int | None = None) -> int:  # fmt: skip
        """A new item of ``folder_id`` with an empty annotation JSON."""
        iid = self._next["item"]
        self._next["item"] += 1
        folder = self.folders[folder_id]
        self.items[iid] = {"id": iid, "name": name, "folder_id": folder_id, "project_id": folder["project_id"],
                           "annotation_status": status, "approval_status": None, "is_pinned": False,
                           "createdAt": self.created, "updatedAt": self.created, "width": width,
                           "height": height, "duration": duration}  # fmt: skip
        if file is not None:
            self.files[iid] = file
        self.projects[folder["project_id"]]["imageCount"] += 1
        self.set_annotation(iid, {"instances": [], "tags": [], "comments": []})
        return iid

    def _seed_shapes(self, n_assets: int, seed: int) -> None:
        from ..samples import make_shapes

        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets + 2, seed=seed)
        for name in dict.fromkeys([*map(str, labels["name"]), *map(str, anns["label"].dropna())]):
            self.add_class(self.project_id, name, {"quality": ["clear", "blurred"]} if name == "square" else None)
        ids: dict[str, int] = {}
        for n, r in enumerate(assets.to_dict("records")):
            folder = self.root_id if n < n_assets else self.folder_id
            status = 5 if r["status"] == "Completed" else 1
            ids[str(r["asset"])] = self.add_item(folder, str(r["name"]), int(r["width"]), int(r["height"]), status,
                                                 Path(str(r["uri"])))  # fmt: skip
        for r in anns.to_dict("records"):
            iid = ids[str(r["asset"])]
            item = self.items[iid]
            doc = self.annotations[iid]
            doc["instances"] += _seed_instances(r, float(item["width"]), float(item["height"]))
            self.set_annotation(iid, doc)

    def _seed_synthetic(self, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        names = ("circle", "square", "triangle")
        for name in names:
            self.add_class(self.project_id, name)
        ids = [self.add_item(self.root_id, f"synthetic-{i:06d}.png", 640, 480) for i in range(n_assets)]
        docs: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for n in range(n_annotations if ids else 0):
            x, y = round(rng.random() * 500, 2), round(rng.random() * 380, 2)
            pts = {
                "x1": x,
                "y1": y,
                "x2": round(x + 20 + rng.random() * 100, 2),
                "y2": round(y + 20 + rng.random() * 80, 2),
            }
            inst = {"type": "bbox", "className": rng.choice(names), "points": pts, "attributes": []}
            docs[ids[n % len(ids)]].append({**inst, "probability": 100, "creationType": "Manual"})
        for iid, instances in docs.items():
            self.set_annotation(iid, {"instances": instances, "tags": [], "comments": []})

    def _seed_video(self) -> None:
        self.add_class(self.video_project_id, "car")
        iid = self.add_item(self.video_root_id, "drive.mp4", 640, 360, 1, duration=3_000_000)
        stamps: list[dict[str, Any]] = []
        for t in (0, 1_000_000, 2_000_000):
            box = {"x1": 10.0 + t / 1e5, "y1": 20.0, "x2": 110.0 + t / 1e5, "y2": 120.0}
            stamps.append({"timestamp": t, "points": box, "attributes": []})
        inst = {"meta": {"type": "bbox", "className": "car", "start": 0, "end": 2_000_000},
                "parameters": [{"start": 0, "end": 2_000_000, "timestamps": stamps}]}  # fmt: skip
        self.set_annotation(iid, {"instances": [inst], "tags": [], "comments": []})

    # -- what the server keeps -----------------------------------------------------------------------------------
    def metadata(self, iid: int) -> dict[str, Any]:
        """The ``metadata`` the server writes into an item's annotation JSON (from the item, never the upload)."""
        item = self.items[iid]
        meta: dict[str, Any] = {"name": item["name"], "id": iid, "width": item["width"], "height": item["height"],
                                "status": STATUSES.get(item["annotation_status"], "NotStarted"), "pinned": False,
                                "isPredicted": False, "projectId": item["project_id"], "annotatorEmail": None,
                                "qaEmail": None}  # fmt: skip
        if item.get("duration") is not None:
            meta["duration"] = item["duration"]
        return meta

    def set_annotation(self, iid: int, doc: Mapping[str, Any], last_action: Any = None) -> None:
        """Store ``doc`` as the item's annotation JSON (metadata from the server, classIds filled by name)."""
        ids = {c["name"]: c["id"] for c in self.classes[self.items[iid]["project_id"]]}
        instances = []
        for inst in doc.get("instances") or []:
            inst = dict(inst)
            holder = inst["meta"] if isinstance(inst.get("meta"), dict) else inst
            if isinstance(holder.get("className"), str) and holder["className"] in ids:
                holder["classId"] = ids[holder["className"]]
            instances.append(inst)
        stored = {"metadata": {**self.metadata(iid), **({"lastAction": last_action} if last_action else {})},
                  "instances": instances, "tags": list(doc.get("tags") or []),
                  "comments": list(doc.get("comments") or [])}  # fmt: skip
        self.annotations[iid] = stored
        self._encoded.pop(iid, None)
        self.items[iid]["updatedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())

    def encoded(self, iid: int) -> bytes:
        """The item's annotation JSON as the stream sends it (status read fresh from the item)."""
        doc = self.annotations[iid]
        status = STATUSES.get(self.items[iid]["annotation_status"], "NotStarted")
        if doc["metadata"].get("status") != status:
            doc["metadata"]["status"] = status
            self._encoded.pop(iid, None)
        if iid not in self._encoded:
            self._encoded[iid] = json.dumps(doc, separators=(",", ":")).encode()
        return self._encoded[iid]

    def set_status(self, iid: int, value: int) -> None:
        self.items[iid]["annotation_status"] = value

    def next_poll(self) -> int:
        poll = self._next["poll"]
        self._next["poll"] += 1
        self.polls[poll] = 100
        return poll

    # -- lookups ---------------------------------------------------------------------------------------------------
    def project_by_name(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.projects.values() if p["name"] == name), None)

    def folder_by_name(self, project_id: int, name: str) -> dict[str, Any] | None:
        for f in self.folders.values():
            if f["project_id"] == project_id and (f["name"] == name or (name == "root" and f["is_root"])):
                return f
        return None

    def root_of(self, project_id: int) -> int:
        return next(f["id"] for f in self.folders.values() if f["project_id"] == project_id and f["is_root"])

    def item_by_name(self, folder_id: int, name: str) -> int | None:
        return next((i for i, it in self.items.items() if it["folder_id"] == folder_id and it["name"] == name), None)

    def signed_url(self, base: str, iid: int) -> str:
        query, _ = _SIGNER.sign("file", str(iid), self.url_ttl)
        return f"{base}/files/{iid}/{self.items[iid]['name']}?{query}"

    def signed_ok(self, iid: int, query: Mapping[str, str]) -> bool:
        return _SIGNER.valid("file", str(iid), query)

    def digest(self) -> str:
        return hashlib.md5(json.dumps(sorted(self.items)).encode()).hexdigest()


def _seed_instances(r: Mapping[Any, Any], w: float, h: float) -> list[dict[str, Any]]:
    """A canonical sample row as SuperAnnotate instances in pixels (a pose: one ``point`` per labelled joint)."""
    base = {"className": str(r["label"]), "attributes": [], "probability": 100, "creationType": "Manual"}
    if r["label"] == "square":
        base["attributes"] = [{"name": "clear", "groupName": "quality"}]
    if r["kind"] == "box":
        x0, y0, x1, y1 = float(r["x0"]) * w, float(r["y0"]) * h, float(r["x1"]) * w, float(r["y1"]) * h
        rotation = r["rotation"]
        if rotation is None or math.isnan(rotation) or not rotation:
            return [{**base, "type": "bbox", "points": {"x1": x0, "y1": y0, "x2": x1, "y2": y1}}]
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        pts: dict[str, float] = {}
        for i, (dx, dy) in enumerate(((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)), start=1):
            pts[f"x{i}"], pts[f"y{i}"] = cx + dx * c - dy * s, cy + dx * s + dy * c
        return [{**base, "type": "rbbox", "points": pts}]
    rings = [[v * (w if i % 2 == 0 else h) for i, v in enumerate(part)] for part in r["points"]]
    if r["kind"] == "polygon":
        inst = {**base, "type": "polygon", "points": rings[0]}
        if len(rings) > 1:
            inst["exclude"] = rings[1:]
        return [inst]
    if r["kind"] == "keypoints":
        flat = rings[0]
        return [{**base, "type": "point", "x": flat[2 * j], "y": flat[2 * j + 1]}
                for j, v in enumerate(r["visibility"]) if int(v) and not math.isnan(flat[2 * j])]  # fmt: skip
    return []
