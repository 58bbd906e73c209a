"""The Clarifai simulator's app in memory: inputs, concepts and annotations, their seeding, and how they are edited.

The app is seeded from `annotebook.samples.make_shapes` (inputs with pixels; boxes, polygons and keypoints made by
the user; a model's whole-image concept predictions on every other input; one empty input-level annotation per
input, as Clarifai makes), or with ``n_annotations=`` as a synthetic app without pixels, fast enough for benchmarks.
Annotations are held as Clarifai's JSON (snake_case proto field names); `encode_annotation` gives the listed form.
This module reads and writes that JSON with its own code: it never imports `annotebook.backends`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._server import Faults

__all__ = ["ANNOTATION_STATUSES", "ClarifaiState", "WireError", "encode_annotation"]

ANNOTATION_STATUSES = {24150: "Annotation success", 24151: "Annotation pending", 24152: "Annotation failed",
                       24154: "Annotation unknown status", 24155: "Annotation invalid argument",
                       24156: "Annotation permission denied", 24157: "Annotation awaiting review",
                       24158: "Annotation review denied", 24159: "Annotation awaiting consensus review"}  # fmt: skip
_STATUS_BY_NAME = {
    "ANNOTATION_SUCCESS": 24150, "ANNOTATION_PENDING": 24151, "ANNOTATION_FAILED": 24152,
    "ANNOTATION_UNKNOWN_STATUS": 24154, "ANNOTATION_INVALID_ARGUMENT": 24155, "ANNOTATION_PERMISSION_DENIED": 24156,
    "ANNOTATION_AWAITING_REVIEW": 24157, "ANNOTATION_REVIEW_DENIED": 24158,
    "ANNOTATION_AWAITING_CONSENSUS_REVIEW": 24159,
}  # fmt: skip
_VIS = {2: "VISIBLE", 1: "NOT_VISIBLE", 0: "NOT_PRESENT"}
MODEL_VERSION = "sim-general-v1"


class WireError(Exception):
    """A request the app refuses: the HTTP status, Clarifai's status code and its description."""

    def __init__(self, http: int, code: int, description: str):
        super().__init__(description)
        self.http, self.code, self.description = http, code, description


def status_code(status: Any) -> int:
    """An annotation status as a number: Clarifai takes enum names or numbers."""
    code = status.get("code") if isinstance(status, Mapping) else status
    if isinstance(code, str) and not code.isdigit():
        if code not in _STATUS_BY_NAME:
            raise WireError(400, 11102, f"unknown annotation status {code!r}")
        return _STATUS_BY_NAME[code]
    number = int(code or 24150)
    if number not in ANNOTATION_STATUSES:
        raise WireError(400, 11102, f"unknown annotation status {number}")
    return number


def _unit(value: Any, what: str) -> float:
    """A normalised coordinate (an omitted one is 0); outside [0, 1] is refused."""
    try:
        x = float(value or 0.0)
    except (TypeError, ValueError) as exc:
        raise WireError(400, 11102, f"{what} is not a number") from exc
    if not 0.0 <= x <= 1.0 or math.isnan(x):
        raise WireError(400, 24155, f"{what} {x} is outside [0, 1]")
    return x


def _check_region(region: Any) -> None:
    info = region.get("region_info") or {} if isinstance(region, Mapping) else None
    if info is None:
        raise WireError(400, 11102, "a region must be an object")
    if "bounding_box" in info:
        b = info["bounding_box"] or {}
        t, left, bot, r = (_unit(b.get(k), f"bounding_box.{k}") for k in ("top_row", "left_col", "bottom_row",
                                                                         "right_col"))  # fmt: skip
        if t > bot or left > r:
            raise WireError(400, 24155, "bounding_box: top_row > bottom_row or left_col > right_col")
    for p in ((info.get("polygon") or {}).get("points") or []) + (info.get("keypoint_locations") or []):
        _unit(p.get("row"), "point.row")
        _unit(p.get("col"), "point.col")


def _concepts_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every concept of a Data message, whole-input, per region and per frame."""
    found = list(data.get("concepts") or [])
    for r in data.get("regions") or []:
        found += (r.get("data") or {}).get("concepts") or []
    for f in data.get("frames") or []:
        found += _concepts_of(f.get("data") or {})
    return found


COORDINATES = ("top_row", "left_col", "bottom_row", "right_col", "row", "col", "z")


def _float32(value: Any) -> float:
    """A proto ``float`` as the REST gateway prints it: stored in 32 bits, shown in the fewest digits that read
    back to the same 32-bit value (0.35 stays 0.35; 0.123456789 becomes 0.12345679)."""
    return float(str(np.float32(float(value))))


def _strip_zeros(obj: Any) -> Any:
    """Proto3 JSON leaves default values out: a coordinate or a point field equal to 0 is not sent; coordinates
    are proto floats, 32 bits wide."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in COORDINATES:
                if not v:
                    continue
                out[k] = _float32(v)
                continue
            out[k] = _strip_zeros(v)
        return out
    if isinstance(obj, list):
        return [_strip_zeros(v) for v in obj]
    return obj


def encode_annotation(ann: Mapping[str, Any]) -> dict[str, Any]:
    """A stored annotation as Clarifai lists it: no private fields, zero coordinates left out, int64 as strings."""
    out = {k: v for k, v in ann.items() if not k.startswith("_")}
    data = _strip_zeros(out.get("data") or {})
    for f in data.get("frames") or []:
        info = f.get("frame_info") or {}
        if "time" in info:
            info["time"] = str(info["time"])  # uint64 in proto3 JSON
    out["data"] = data
    return out


class ClarifaiState:
    """One user with one app, seeded from `annotebook.samples.make_shapes`."""

    def __init__(
        self,
        key: str | None = None,
        n_assets: int = 36,
        seed: int = 0,
        image_dir: str | Path | None = None,
        user_id: str = "sim-user",
        app_id: str = "shapes",
        n_annotations: int | None = None,
        max_batch: int = 128,
        max_page: int = 1000,
    ):
        self.key, self.user_id, self.app_id = key, user_id, app_id
        self.max_batch, self.max_page = max_batch, max_page
        self.faults = Faults()
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="clarifai-sim-"))
        self._seq = itertools.count(1)
        self._clock = itertools.count(1)
        self._epoch = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        self.inputs: dict[str, dict[str, Any]] = {}
        self.files: dict[str, Path] = {}
        self.concepts: dict[str, dict[str, Any]] = {}
        self.annotations: dict[str, dict[str, Any]] = {}
        self.requests = {"read": 0, "write": 0}  # counted by the routes, for benchmarks
        if n_annotations is not None:
            self._seed_synthetic(n_assets, n_annotations, seed)
        else:
            self._seed_sample(n_assets, seed)

    # -- time and ids ----------------------------------------------------------------------------------------
    def now(self) -> str:
        """An RFC 3339 time that grows by a microsecond per call, so every write gets a time of its own."""
        t = self._epoch + dt.timedelta(microseconds=next(self._clock))
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # -- seeding ---------------------------------------------------------------------------------------------
    def _seed_sample(self, n_assets: int, seed: int) -> None:
        from ..samples import make_shapes

        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets, seed=seed)
        for name in [*labels["name"].astype(str), *sorted(set(anns["label"].dropna().astype(str)))]:
            self.ensure_concept(name)
        ids: dict[str, str] = {}
        for n, r in enumerate(assets.to_dict("records")):
            input_id = f"img{n:04d}"
            ids[str(r["asset"])] = input_id
            self.files[input_id] = Path(str(r["uri"]))
            self.add_input(input_id, str(r["name"]), int(r["width"]), int(r["height"]))
            if n % 2 == 0:  # a model's prediction: whole-input concepts with a score
                self._store({"input_id": input_id, "model_version_id": MODEL_VERSION, "user_id": "",
                             "data": {"concepts": [{"id": "circle", "name": "circle", "value": 0.75}]}})  # fmt: skip
        for r in anns.to_dict("records"):
            data = _seed_data({str(k): v for k, v in r.items()})
            if data is not None:
                info = {k: v for k, v in (r["attributes"] or {}).items() if isinstance(v, str | int | float | bool)}
                body = {"input_id": ids[str(r["asset"])], "data": data, **({"annotation_info": info} if info else {})}
                self._store(body)

    def _seed_synthetic(self, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        names = ("circle", "square", "triangle")
        for name in names:
            self.ensure_concept(name)
        ids = [f"syn{i:06d}" for i in range(n_assets)]
        for i in ids:
            self.add_input(i, f"{i}.png", 640, 480, pixels=False)
        for _ in range(n_annotations if ids else 0):
            x0, y0 = rng.random() * 0.8, rng.random() * 0.8
            box = {"top_row": y0, "left_col": x0, "bottom_row": y0 + 0.1, "right_col": x0 + 0.1}
            name = rng.choice(names)
            region = {"region_info": {"bounding_box": box}, "data": {"concepts": [{"id": name, "name": name,
                                                                                   "value": 1.0}]}}  # fmt: skip
            self._store({"input_id": rng.choice(ids), "data": {"regions": [region]}})

    def add_input(self, input_id: str, filename: str, width: int, height: int, pixels: bool = True,
                  url: str | None = None) -> dict[str, Any]:  # fmt: skip
        """An input (and its empty input-level annotation, as Clarifai makes one for every input)."""
        now = self.now()
        image: dict[str, Any] = {"image_info": {"width": width, "height": height, "format": "PNG"}}
        if url:
            image["url"] = url
        self.inputs[input_id] = {
            "id": input_id, "data": {"image": image, "metadata": {"filename": filename}},
            "status": {"code": 30000, "description": "Download complete"}, "created_at": now, "modified_at": now,
            "_pixels": pixels,
        }  # fmt: skip
        self._store({"input_id": input_id, "input_level": True, "data": {}})
        return self.inputs[input_id]

    def ensure_concept(self, name: str) -> None:
        if name and name not in self.concepts:
            self.concepts[name] = {"id": name, "name": name, "value": 1.0, "created_at": self.now(),
                                   "app_id": self.app_id}  # fmt: skip

    # -- annotations ---------------------------------------------------------------------------------------
    def _store(self, body: Mapping[str, Any]) -> dict[str, Any]:
        now = self.now()
        ann_id = str(body.get("id") or uuid.uuid4().hex)
        code = status_code(body.get("status") or 24150)
        ann = {
            "id": ann_id, "input_id": str(body["input_id"]), "data": dict(body.get("data") or {}),
            "status": {"code": code, "description": ANNOTATION_STATUSES[code]}, "created_at": now, "modified_at": now,
            "input_level": bool(body.get("input_level")), "_seq": next(self._seq),
        }  # fmt: skip
        if body.get("model_version_id"):
            ann["model_version_id"] = str(body["model_version_id"])
        else:
            ann["user_id"] = str(body.get("user_id") or self.user_id)
        if body.get("annotation_info"):
            ann["annotation_info"] = dict(body["annotation_info"])
        if body.get("embed_model_version_id"):
            ann["embed_model_version_id"] = str(body["embed_model_version_id"])
        self.annotations[ann_id] = ann
        return ann

    def check_annotation(self, body: Any, new: bool) -> None:
        """Refuse what Clarifai refuses: an unknown input, more than one region or frame, coordinates out of range."""
        if not isinstance(body, Mapping):
            raise WireError(400, 11102, "an annotation must be an object")
        if str(body.get("input_id")) not in self.inputs:
            raise WireError(404, 30102, f"input {body.get('input_id')!r} does not exist")
        ann_id = body.get("id")
        if new and ann_id and str(ann_id) in self.annotations:
            raise WireError(400, 24155, f"annotation {ann_id!r} already exists")
        if not new and str(ann_id) not in self.annotations:
            raise WireError(404, 11101, f"annotation {ann_id!r} does not exist")
        data = body.get("data") or {}
        regions = list(data.get("regions") or [])
        for f in data.get("frames") or []:
            regions += (f.get("data") or {}).get("regions") or []
        if len(data.get("frames") or []) > 1 or len(data.get("regions") or []) > 1:
            raise WireError(400, 24155, "an annotation holds at most one region and one frame")
        for r in regions:
            _check_region(r)
        if "status" in body:
            status_code(body["status"])

    def post(self, bodies: list[Any]) -> list[dict[str, Any]]:
        """Create annotations (all or none): their concepts are added to the app."""
        self._limit(bodies)
        seen: set[str] = set()
        for b in bodies:
            self.check_annotation(b, new=True)
            if b.get("id") and str(b["id"]) in seen:
                raise WireError(400, 24155, f"annotation id {b['id']!r} is twice in the request")
            seen.add(str(b.get("id") or ""))
        for b in bodies:
            for c in _concepts_of(b.get("data") or {}):
                self.ensure_concept(str(c.get("id") or c.get("name") or ""))
        return [self._store(b) for b in bodies]

    def patch(self, bodies: list[Any], action: str, delete_if_empty: bool = False) -> list[dict[str, Any]]:
        """Overwrite, merge or remove (all or none)."""
        if action not in ("overwrite", "merge", "remove"):
            raise WireError(400, 11102, f"action must be overwrite, merge or remove, not {action!r}")
        self._limit(bodies)
        for b in bodies:
            self.check_annotation({**b, "input_id": b.get("input_id") or self._input_of(b)}, new=False)
        out = []
        for b in bodies:
            ann = self.annotations[str(b["id"])]
            data = b.get("data") or {}
            if action == "overwrite":
                ann["data"] = dict(data)
                for c in _concepts_of(data):
                    self.ensure_concept(str(c.get("id") or ""))
            elif action == "merge":
                _merge(ann["data"], data)
                for c in _concepts_of(data):
                    self.ensure_concept(str(c.get("id") or ""))
            else:
                _remove(ann["data"], {str(c.get("id")) for c in _concepts_of(data)})
            if "status" in b:
                code = status_code(b["status"])
                ann["status"] = {"code": code, "description": ANNOTATION_STATUSES[code]}
            if "annotation_info" in b:
                info = dict(b["annotation_info"] or {})
                ann["annotation_info"] = {**(ann.get("annotation_info") or {}), **info} if action == "merge" else info
            ann["modified_at"] = self.now()
            if action == "remove" and delete_if_empty and not _concepts_of(ann["data"]):
                del self.annotations[ann["id"]]
            out.append(ann)
        return out

    def _input_of(self, body: Mapping[str, Any]) -> str:
        ann = self.annotations.get(str(body.get("id")))
        if ann is None:
            raise WireError(404, 11101, f"annotation {body.get('id')!r} does not exist")
        return str(ann["input_id"])

    def delete(self, ids: list[str], input_ids: list[str]) -> None:
        """Delete by ids (all must exist, on their inputs), or every annotation of the inputs (input-level kept)."""
        if not input_ids:
            raise WireError(400, 11102, "input_ids is required: deleting all annotations is not supported")
        if ids:
            if len(ids) != len(input_ids):
                raise WireError(400, 11102, "ids and input_ids must have the same length")
            self._limit(ids)
            missing = [i for i, a in zip(ids, input_ids, strict=True)
                       if i not in self.annotations or self.annotations[i]["input_id"] != a]  # fmt: skip
            if missing:
                raise WireError(404, 11101, f"annotations not found: {', '.join(missing[:20])}")
            for i in ids:
                del self.annotations[i]
            return
        wanted = set(input_ids)
        for i in [i for i, a in self.annotations.items() if a["input_id"] in wanted and not a["input_level"]]:
            del self.annotations[i]

    def _limit(self, items: list[Any]) -> None:
        if not items:
            raise WireError(400, 11102, "at least one item is required")
        if len(items) > self.max_batch:
            raise WireError(400, 11102, f"at most {self.max_batch} items a request, got {len(items)}")

    def listed(
        self, ids: list[str], input_ids: list[str], user_ids: list[str], models: list[str], list_all: bool,
        statuses: list[int],
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The annotations a ListAnnotations names, oldest first."""
        by_author = bool(user_ids or models)
        out = []
        for a in self.annotations.values():
            if ids and a["id"] not in ids:
                continue
            if input_ids and a["input_id"] not in input_ids:
                continue
            model = a.get("model_version_id")
            if by_author and not (a.get("user_id") in user_ids or model in models):
                continue
            if model and not (list_all or by_author or ids):
                continue
            if statuses and a["status"]["code"] not in statuses:
                continue
            out.append(a)
        return out


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Merge: concepts by id (a new value replaces the old), regions by id (their concepts merged), else added."""

    def concepts(target: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_id = {str(c.get("id")): dict(c) for c in target}
        for c in new:
            by_id[str(c.get("id"))] = {**by_id.get(str(c.get("id")), {}), **c}
        return list(by_id.values())

    if data.get("concepts"):
        into["concepts"] = concepts(into.get("concepts") or [], data["concepts"])
    for region in data.get("regions") or []:
        old = next((r for r in into.get("regions") or [] if region.get("id") and r.get("id") == region.get("id")), None)
        if old is None:
            into.setdefault("regions", []).append(dict(region))
            continue
        if region.get("region_info"):
            old["region_info"] = region["region_info"]
        inner = old.setdefault("data", {})
        inner["concepts"] = concepts(inner.get("concepts") or [], (region.get("data") or {}).get("concepts") or [])


def _remove(data: dict[str, Any], names: set[str]) -> None:
    """Remove: the named concepts go, whole-input and in every region and frame."""
    if "concepts" in data:
        data["concepts"] = [c for c in data["concepts"] if str(c.get("id")) not in names]
    for r in data.get("regions") or []:
        inner = r.get("data") or {}
        if "concepts" in inner:
            inner["concepts"] = [c for c in inner["concepts"] if str(c.get("id")) not in names]
    for f in data.get("frames") or []:
        _remove(f.get("data") or {}, names)


def _seed_data(r: Mapping[str, Any]) -> dict[str, Any] | None:
    """A canonical sample row as Clarifai holds it: y first, a box without rotation, one ring."""
    concept = {"id": str(r["label"]), "name": str(r["label"]), "value": 1.0}
    if r["kind"] == "box":
        box = {"top_row": float(r["y0"]), "left_col": float(r["x0"]), "bottom_row": float(r["y1"]),
               "right_col": float(r["x1"])}  # fmt: skip
        return {"regions": [{"id": uuid.uuid4().hex[:16], "region_info": {"bounding_box": box},
                             "data": {"concepts": [concept]}}]}  # fmt: skip
    part = r["points"][0] if r["points"] else ()
    pairs = [(float(part[i]), float(part[i + 1])) for i in range(0, len(part) - 1, 2)]
    if r["kind"] == "polygon":
        info: dict[str, Any] = {"polygon": {"points": [{"row": y, "col": x} for x, y in pairs]}}
    elif r["kind"] == "keypoints":
        info = {"keypoint_locations": [{"visibility": "NOT_PRESENT"} if math.isnan(x) or not v else
                                       {"row": y, "col": x, "visibility": _VIS[int(v)]}
                                       for (x, y), v in zip(pairs, r["visibility"], strict=True)]}  # fmt: skip
    else:
        return None
    return {"regions": [{"id": uuid.uuid4().hex[:16], "region_info": info, "data": {"concepts": [concept]}}]}
