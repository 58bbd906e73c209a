"""The Pictograph simulator's organization in memory: one dataset, its classes, images and annotation lists.

The dataset ("shapes") is seeded from `annotebook.samples.make_shapes` (its images; its boxes, polygons and
keypoints in pixels, a pose as one keypoint annotation per joint, named for the joint's own class ``tip1`` ...
``tip5``, sharing an ``instance_id``; the pose class "star-tips" lists them as its skeleton's nodes), or with
``n_annotations=`` as a synthetic dataset without pixels, fast enough for benchmarks. Annotations are held per image
as Pictograph returns them. Idempotency keys map to the answer first given, so a retried write is answered again,
not applied again. The seeding converts with this module's own code, never the backend's.
"""

from __future__ import annotations

import hashlib
import math
import random
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._server import Faults
from .kit import UrlSigner

__all__ = ["PictographState"]

_SIGNER = UrlSigner(b"annotebook-pictograph-sim", param="expires")
_STATUS = {"Completed": "complete", "NotStarted": "new"}


class PictographState:
    """One organization with one dataset, seeded from `annotebook.samples.make_shapes`."""

    def __init__(
        self,
        key: str | None = None,
        n_assets: int = 36,
        seed: int = 0,
        image_dir: str | Path | None = None,
        url_ttl: float = 3600.0,
        n_annotations: int | None = None,
        dataset: str = "shapes",
    ):
        from ..samples import make_shapes

        self.key, self.url_ttl = key, url_ttl
        self.faults = Faults()
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="pictograph-sim-"))
        digest = hashlib.md5(f"pictograph-{seed}".encode()).hexdigest()
        self.org_id = str(uuid.uuid5(uuid.NAMESPACE_URL, digest + "/org"))
        self.dataset_name = dataset
        self.dataset_id = str(uuid.uuid5(uuid.NAMESPACE_URL, digest + "/" + dataset))
        self.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.images: dict[str, dict[str, Any]] = {}  # image id -> Image (without URLs)
        self.files: dict[str, Path] = {}
        self.annotations: dict[str, list[dict[str, Any]]] = {}  # image id -> its list, as saved
        self._by_path: dict[str, str] = {}  # "directory/filename" -> image id
        #: Idempotency-Key -> (status, answer) of the write that first carried it
        self.idempotent: dict[str, tuple[int, Any]] = {}
        self.classes: list[dict[str, Any]] = []
        #: export id -> its job (`pictograph_exports`); the failure the next export ends with; downloads to cut
        self.exports: dict[str, Any] = {}
        self.export_failure: str | None = None
        self.cut_downloads = 0
        #: how many items the dataset download listing gives at most (the platform's 10,000)
        self.download_cap = 10_000
        if n_annotations is not None:
            self._seed_synthetic(digest, n_assets, n_annotations, seed)
            return
        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets, seed=seed)
        joints: dict[str, tuple[str, ...]] = {}
        for r in labels.to_dict("records"):
            kind = "keypoint" if r["keypoints"] else "bbox"
            # the SDK's shape of a class skeleton: its joints, each a class of its own, and index-pair edges
            skeleton = (
                {"nodes": [{"name": str(n), "x": 0.5, "y": 0.5} for n in r["keypoints"]],
                 "edges": [list(p) for p in (r["skeleton"] or ())]}
                if r["keypoints"] else None
            )  # fmt: skip
            self.classes.append({"name": str(r["name"]), "type": kind, "color": str(r["color"]), "attributes": [],
                                 "skeleton": skeleton})  # fmt: skip
            if r["keypoints"]:
                joints[str(r["name"])] = tuple(str(n) for n in r["keypoints"])
        for name in dict.fromkeys(n for names in joints.values() for n in names):
            self.classes.append({"name": name, "type": "keypoint", "color": "#f0c000", "attributes": [],
                                 "skeleton": None})  # fmt: skip
        for name in sorted(set(anns["label"].dropna()) - {c["name"] for c in self.classes}):
            self.classes.append({"name": str(name), "type": "bbox", "color": "#888888", "attributes": [],
                                 "skeleton": None})  # fmt: skip
        ids: dict[str, tuple[str, float, float]] = {}
        for r in assets.to_dict("records"):
            image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, digest + "/" + str(r["asset"])))
            path = Path(str(r["uri"]))
            ids[str(r["asset"])] = (image_id, float(r["width"]), float(r["height"]))
            self.files[image_id] = path
            self._add_image(image_id, str(r["name"]), int(r["width"]), int(r["height"]),
                            _STATUS.get(str(r["status"]), "new"), path.stat().st_size)  # fmt: skip
        for n, r in enumerate(anns.to_dict("records")):
            image_id, w, h = ids[str(r["asset"])]
            instance = 1 + len({a.get("instance_id") for a in self.annotations[image_id]} - {None})
            self.annotations[image_id] += _seed_annotations(r, w, h, f"{digest[:8]}-{n}", joints, instance)

    def _add_image(self, image_id: str, filename: str, width: int, height: int, status: str, size: int) -> None:
        self._by_path[filename] = image_id  # at the dataset's root: no directory
        self.images[image_id] = {
            "id": image_id, "dataset_id": self.dataset_id, "filename": filename, "status": status, "split": None,
            "file_size": size, "width": width, "height": height,
            "content_type": "image/jpeg" if filename.lower().endswith((".jpg", ".jpeg")) else "image/png",
            "directory_path": None, "tags": [], "is_archived": False, "created_at": self.created,
        }  # fmt: skip
        self.annotations[image_id] = []

    def _seed_synthetic(self, digest: str, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        names = ("circle", "square", "triangle")
        self.classes = [{"name": n, "type": "bbox", "color": "#888888", "attributes": [], "skeleton": None}
                        for n in names]  # fmt: skip
        ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{digest}/synthetic-{i}")) for i in range(n_assets)]
        for i, image_id in enumerate(ids):
            self._add_image(image_id, f"synthetic-{i:06d}.png", 640, 480, "new", 0)
        for n in range(n_annotations if ids else 0):
            x, y = rng.random() * 500, rng.random() * 380
            box = {"x": x, "y": y, "w": 20 + rng.random() * 100, "h": 20 + rng.random() * 80}
            ann = {"id": f"syn-{n}", "name": rng.choice(names), "type": "bbox", "bounding_box": box}
            self.annotations[ids[n % len(ids)]].append({**ann, "confidence": 1.0, "attributes": []})

    # -- lookups ---------------------------------------------------------------------------------------------------
    def image_by_path(self, dataset: str, path: str) -> str | None:
        """The id of the image at ``{directory/filename}`` of ``dataset`` (name or id); a bare id is taken too."""
        if dataset not in (self.dataset_name, self.dataset_id):
            return None
        found = self._by_path.get(path.strip("/"))
        return found if found is not None else path if path in self.images else None

    def dataset(self) -> dict[str, Any]:
        count = sum(len(v) for v in self.annotations.values())
        return {"id": self.dataset_id, "organization_id": self.org_id, "name": self.dataset_name,
                "description": "simulated", "annotation_types": ["bbox", "polygon", "polyline", "keypoint"],
                "classes": self.classes, "image_count": len(self.images), "annotation_count": count,
                "created_at": self.created}  # fmt: skip

    def image(self, image_id: str, base: str) -> dict[str, Any]:
        """The Image model of ``image_id``, with a signed ``image_url`` under ``base``."""
        img = self.images[image_id]
        anns = self.annotations[image_id]
        confidences = [float(a.get("confidence", 1.0)) for a in anns]
        path = f"{self.dataset_name}/{img['filename']}"
        return {**img, "annotation_count": len(anns), "min_confidence": min(confidences, default=None),
                "image_url": self.signed_url(base, image_id) if image_id in self.files else None,
                "thumbnail_url": None, "annotation_url": f"{base}/api/v1/developer/annotations/{path}"}  # fmt: skip

    def status_is(self, image_id: str, wanted: str | None) -> bool:
        """Whether the image has status ``wanted`` (None: any); ``in_progress`` and ``annotate`` are one status."""
        have = self.images[image_id]["status"]
        return not wanted or have == wanted or {have, wanted} == {"annotate", "in_progress"}

    def sign(self, kind: str, ident: str) -> str:
        """The query of a signed URL of ``kind`` naming ``ident``, valid ``url_ttl`` seconds."""
        return _SIGNER.sign(kind, ident, self.url_ttl)[0]

    def signed_url(self, base: str, image_id: str) -> str:
        query, _ = _SIGNER.sign("file", image_id, self.url_ttl)
        return f"{base}/files/{image_id}/{self.images[image_id]['filename']}?{query}"

    def signed_ok(self, image_id: str, query: Mapping[str, str], kind: str = "file") -> bool:
        return _SIGNER.valid(kind, image_id, query)


def _pt(x: float, y: float) -> dict[str, float]:
    return {"x": x, "y": y}


def _seed_annotations(
    r: Mapping[Any, Any], w: float, h: float, ident: str, joints: Mapping[str, tuple[str, ...]], instance: int
) -> list[dict[str, Any]]:
    """A canonical sample row as Pictograph holds it, in pixels (a pose: one keypoint per labelled joint, named for
    its joint's class, sharing the pose's ``instance``)."""
    attrs = {str(k): (str(v).lower() if isinstance(v, bool) else v) for k, v in (r["attributes"] or {}).items()}
    base = {"id": ident, "name": str(r["label"]), "confidence": 1.0, "attributes": attrs}
    if r["kind"] == "box":
        x0, y0, x1, y1 = float(r["x0"]) * w, float(r["y0"]) * h, float(r["x1"]) * w, float(r["y1"]) * h
        ann = {**base, "type": "bbox", "bounding_box": {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}}
        rotation = r["rotation"]
        if rotation is not None and not math.isnan(rotation) and rotation:
            ann["oriented_box"] = {"cx": (x0 + x1) / 2, "cy": (y0 + y1) / 2, "w": x1 - x0, "h": y1 - y0,
                                   "angle": float(rotation) % 360}  # fmt: skip
        return [ann]
    parts = [[_pt(p[i] * w, p[i + 1] * h) for i in range(0, len(p) - 1, 2)] for p in r["points"]]
    if r["kind"] == "polygon":
        return [{**base, "type": "polygon", "polygon": {"paths": parts}, "bounding_box": _extent(parts)}]
    if r["kind"] == "keypoints":
        out = []
        for j, (p, v) in enumerate(zip(parts[0], r["visibility"], strict=True)):
            if int(v) == 0 or math.isnan(p["x"]):
                continue
            # a joint's "occluded" is its visibility (1): a pose-wide flag has no place on Pictograph
            shared = {k: x for k, x in attrs.items() if k != "occluded"}
            joint = {**shared, **({"occluded": "true"} if int(v) == 1 else {})}
            out.append({**base, "id": f"{ident}-{j}", "name": joints[str(r["label"])][j], "type": "keypoint",
                        "keypoint": p, "instance_id": instance, "attributes": joint})  # fmt: skip
        return out
    return []


def _extent(parts: list[list[dict[str, float]]]) -> dict[str, float]:
    xs = [p["x"] for part in parts for p in part]
    ys = [p["y"] for part in parts for p in part]
    return {"x": min(xs), "y": min(ys), "w": max(xs) - min(xs), "h": max(ys) - min(ys)}
