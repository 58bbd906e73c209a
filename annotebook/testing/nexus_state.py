"""The Nexus simulator's workspace in memory: one project, its tags, assets and annotations, and their seeding.

The project is seeded from `annotebook.samples.make_shapes` (its images, boxes, polygons and keypoints, its labels
as tags), or with ``n_annotations=`` as a synthetic project without pixels, fast enough for benchmarks. Annotations
are held as Nexus holds them (`_wire` gives the listed JSON); asset image URLs are signed and expire.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import operator
import random
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ._server import Faults
from .kit import UrlSigner

__all__ = ["NexusState", "canonical_row", "state_frame"]

#: the storage host's signatures: of image files, import uploads and export downloads
_SIGNER = UrlSigner(b"annotebook-nexus-sim", param="expires")


class NexusState:
    """One workspace with one project, seeded from `annotebook.samples.make_shapes`."""

    def __init__(
        self,
        key: str | None = None,
        n_assets: int = 36,
        seed: int = 0,
        image_dir: str | Path | None = None,
        url_ttl: float = 3600.0,
        max_page: int = 1000,
        n_annotations: int | None = None,
    ):
        """``n_annotations`` seeds a synthetic project instead of the sample one: ``n_assets`` assets without
        pixels (an empty URL) and that many boxes spread over them at random, fast enough for benchmarks."""
        from ..samples import make_shapes

        self.key, self.url_ttl, self.max_page = key, url_ttl, max_page
        #: polls an import session or an export operation runs for before it ends
        self.op_steps = 3
        self.sessions: dict[str, Any] = {}
        self.exports: dict[str, Any] = {}
        #: called with the export's open ZipFile before it is closed (a test adds hostile entries)
        self.tamper_export: Any = None
        #: a store that keeps less than a create sends: "drop_attributes", or "round_coordinates" (to 2 decimals)
        self.lossy_create: str | None = None
        self.faults = Faults()
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="nexus-sim-"))
        self._clock = 0
        self._seq = itertools.count(1)
        self._last_seq = 0
        #: per asset its annotations in ``_seq`` order, and each annotation's JSON, rebuilt when the store changed
        self._index_key: tuple[int, int] | None = None
        self._by_asset: dict[str, list[dict[str, Any]]] = {}
        self._json: dict[tuple[str, bool], tuple[dict[str, Any], bytes]] = {}
        digest = hashlib.md5(f"shapes-{seed}".encode()).hexdigest()
        self.workspace = {"id": f"ws_{digest[:24]}", "name": "Simulated workspace", "owner": "user_sim",
                          "tier": "Free", "createDate": self.now(), "object": "workspace"}  # fmt: skip
        self.project_id = f"proj_{digest}"
        self.project_name = "shapes"
        self.assets: dict[str, dict[str, Any]] = {}
        self.files: dict[str, Path] = {}
        self.annotations: dict[str, dict[str, Any]] = {}
        if n_annotations is not None:
            self._seed_synthetic(digest, n_assets, n_annotations, seed)
            return
        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets, seed=seed)
        self.tags: list[dict[str, Any]] = [
            {"index": int(r["index"]), "name": str(r["name"]), "color": str(r["color"]), "description": ""}
            for r in labels.to_dict("records")
        ]
        for name in sorted(set(anns["label"].dropna()) - {t["name"] for t in self.tags}):  # e.g. the typo "sqare"
            self.tags.append({"index": len(self.tags), "name": str(name), "color": "#888888", "description": ""})
        ids: dict[str, str] = {}
        for r in assets.to_dict("records"):
            asset_id = "asset_" + str(uuid.uuid5(uuid.NAMESPACE_URL, digest + "/" + str(r["asset"])))
            ids[str(r["asset"])] = asset_id
            path = Path(str(r["uri"]))
            self.files[asset_id] = path
            self.assets[asset_id] = {
                "id": asset_id, "projectId": self.project_id, "filename": str(r["name"]), "status": "Annotated",
                "createDate": self.now(), "object": "asset",
                "metadata": {"fileSize": path.stat().st_size, "mimeType": _mime(path), "height": int(r["height"]),
                             "width": int(r["width"]), "groups": ["main"]},
            }  # fmt: skip
        for r in anns.to_dict("records"):
            wire = _seed_annotation(r)
            if wire is not None:
                self._store({"assetId": ids[str(r["asset"])], **wire})

    def _seed_synthetic(self, digest: str, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        names = ("circle", "square", "triangle")
        self.tags = [{"index": i, "name": n, "color": "#888888", "description": ""} for i, n in enumerate(names)]
        ids = []
        for i in range(n_assets):
            asset_id = "asset_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{digest}/synthetic-{i}"))
            ids.append(asset_id)
            self.assets[asset_id] = {
                "id": asset_id, "projectId": self.project_id, "filename": f"synthetic-{i:06d}.png",
                "status": "Annotated", "createDate": self.now(), "object": "asset",
                "metadata": {"fileSize": 0, "mimeType": "image/png", "height": 480, "width": 640, "groups": ["main"]},
            }  # fmt: skip
        for _ in range(n_annotations if ids else 0):
            x0, y0 = rng.random() * 0.8, rng.random() * 0.8
            x1, y1 = x0 + 0.05 + rng.random() * 0.15, y0 + 0.05 + rng.random() * 0.15
            bound = [[x0, y0], [x0, y1], [x1, y1], [x1, y0]]
            self._store({"assetId": rng.choice(ids), "tag": rng.choice(names), "boundType": "Rectangle",
                         "bound": bound})  # fmt: skip

    def _next_seq(self) -> int:
        self._last_seq = next(self._seq)
        return self._last_seq

    def annotations_of(self, assets: set[str]) -> list[dict[str, Any]]:
        """The annotations of these assets (all of them when empty), in ``_seq`` order.

        An index by asset serves the filtered lists; it is rebuilt when a row was added or removed (a delete lowers
        the count, a create raises the last sequence number), so tests may still ``del state.annotations[id]``.
        """
        if not assets:
            return list(self.annotations.values())
        key = (len(self.annotations), self._last_seq)
        if key != self._index_key:
            self._by_asset = {}
            for a in self.annotations.values():
                self._by_asset.setdefault(a["assetId"], []).append(a)
            self._index_key = key
            self._json = {k: v for k, v in self._json.items() if k[0] in self.annotations}  # drop deleted rows
        found = [a for asset in assets for a in self._by_asset.get(asset, ())]
        return sorted(found, key=operator.itemgetter("_seq"))

    def wire_json(self, ann: dict[str, Any], attributes: bool) -> bytes:
        """The JSON of an annotation as listed, encoded once (Nexus rows never change: edits replace rows)."""
        cached = self._json.get((ann["id"], attributes))
        if cached is not None and cached[0] is ann:
            return cached[1]
        data = json.dumps(_wire(ann, attributes), ensure_ascii=False, separators=(",", ":")).encode()
        self._json[(ann["id"], attributes)] = (ann, data)
        return data

    def now(self) -> int:
        """Epoch milliseconds, strictly increasing (a create date is unique)."""
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        ann = {
            "id": f"annot_{uuid.uuid4()}",
            "projectId": self.project_id,
            "assetId": body["assetId"],
            "tag": body["tag"],
            "boundType": body["boundType"],
            "bound": body["bound"],
            "createDate": self.now(),
            "object": "annotation",
            "_seq": self._next_seq(),
            "_attributes": [
                {"id": f"attri_{uuid.uuid4()}", "name": str(a["name"]), "value": a.get("value")}
                for a in body.get("attributes") or []
            ],
        }
        if body.get("frame") is not None:
            ann["frame"] = int(body["frame"])
        self.annotations[ann["id"]] = ann
        return ann

    def project(self) -> dict[str, Any]:
        annotated = {a["assetId"] for a in self.annotations.values()}
        counts: dict[str, int] = {}
        for a in self.annotations.values():
            counts[a["tag"]] = counts.get(a["tag"], 0) + 1
        return {
            "id": self.project_id, "name": self.project_name, "workspaceId": self.workspace["id"],
            "type": "ObjectDetection", "createDate": self.workspace["createDate"], "localization": "MULTI",
            "tags": [t["name"] for t in self.tags], "groups": ["main"], "object": "project",
            "statistic": {"tagsCount": [{"name": k, "count": v} for k, v in counts.items()],
                          "totalAssets": len(self.assets), "annotatedAssets": len(annotated),
                          "totalAnnotations": len(self.annotations)},
        }  # fmt: skip

    def sign(self, kind: str, ident: str) -> tuple[str, int]:
        """The query ``expires=<epoch s>&signature=...`` of a URL of ``kind`` (file / upload / download) of
        ``ident``, valid ``url_ttl`` seconds, and that expiry."""
        return _SIGNER.sign(kind, ident, self.url_ttl)

    def signed_ok(self, kind: str, ident: str, query: Mapping[str, str]) -> bool:
        return _SIGNER.valid(kind, ident, query)

    def signed_url(self, base: str, asset_id: str) -> str:
        """The image URL of an asset (``X-Goog-Expires`` as GCS gives it)."""
        query, _ = self.sign("file", asset_id)
        name = self.assets[asset_id]["filename"]
        return f"{base}/files/{asset_id}/{name}?X-Goog-Expires={int(self.url_ttl)}&{query}"


def _mime(path: Path) -> str:
    return "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"


def _seed_annotation(r: Mapping[Any, Any]) -> dict[str, Any] | None:
    """A canonical sample row as Nexus holds it: a Rectangle has no rotation, attributes are strings or numbers."""
    attributes = [
        {"name": k, "value": str(v).lower() if isinstance(v, bool) else v} for k, v in (r["attributes"] or {}).items()
    ]
    base = {"tag": r["label"], "attributes": attributes}
    if r["kind"] == "box":
        x0, y0, x1, y1 = (float(r[c]) for c in ("x0", "y0", "x1", "y1"))
        return {**base, "boundType": "Rectangle", "bound": [[x0, y0], [x0, y1], [x1, y1], [x1, y0]]}
    part = r["points"][0] if r["points"] else ()
    pairs = [[float(part[i]), float(part[i + 1])] for i in range(0, len(part) - 1, 2)]
    if r["kind"] == "polygon":
        return {**base, "boundType": "Polygon", "bound": pairs}
    if r["kind"] == "keypoints":
        bound = [
            [0.0, 0.0, 0] if math.isnan(x) else [x, y, int(v)] for (x, y), v in zip(pairs, r["visibility"], strict=True)
        ]
        return {**base, "boundType": "Keypoints", "bound": bound}
    return None


def canonical_row(ann: Mapping[str, Any], dataset: str) -> dict[str, Any] | None:
    """A stored annotation as a canonical row (the inverse of `_seed_annotation`); None for a bound type the
    contract has no kind for (Bitmask3d).

    This is the simulator's own reading of its store, for the files it writes (exports): a simulator that decoded
    with the client's code would share the client's bugs, and a round trip through both would hide them.
    """
    bound_type, bound = ann["boundType"], ann["bound"] or []
    row: dict[str, Any] = {"dataset": dataset, "asset": ann["assetId"], "id": ann["id"], "label": ann["tag"],
                           "frame": ann.get("frame"), "rev": str(ann["createDate"])}  # fmt: skip
    attributes = {str(a["name"]): a["value"] for a in ann["_attributes"] if a.get("value") is not None}
    row["attributes"] = attributes or None
    if bound_type == "Rectangle":
        xs, ys = [float(p[0]) for p in bound], [float(p[1]) for p in bound]
        return {**row, "kind": "box", "x0": min(xs), "y0": min(ys), "x1": max(xs), "y1": max(ys), "rotation": 0.0}
    if bound_type == "Polygon":
        return {**row, "kind": "polygon", "points": (tuple(float(c) for p in bound for c in p[:2]),)}
    if bound_type == "Keypoints":
        flat: list[float] = []
        for x, y, v in bound:  # an invisible point (v 0) has no position, whatever its x and y say
            flat += [math.nan, math.nan] if int(v) == 0 else [float(x), float(y)]
        return {**row, "kind": "keypoints", "points": (tuple(flat),), "visibility": tuple(int(p[2]) for p in bound)}
    if bound_type == "Classification":
        return {**row, "kind": "tag", "value": True}
    return None


def _wire(ann: dict[str, Any], attributes: bool) -> dict[str, Any]:
    out = {k: v for k, v in ann.items() if not k.startswith("_")}
    if attributes:
        out["attributes"] = ann["_attributes"]
    return out


def state_frame(state: NexusState) -> pd.DataFrame:
    """The simulator's annotations as a plain frame (tests compare against it)."""
    return pd.DataFrame([_wire(a, True) for a in state.annotations.values()])
