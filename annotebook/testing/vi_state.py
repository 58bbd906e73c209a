"""The Vi simulator's organization in memory: its datasets, their assets and annotations, and their seeding.

One organization (id a UUID derived from the seed, name "Simulated organization") holds two datasets, both over
the `annotebook.samples.make_shapes` images: "shapes" (``phrase-grounding``: per asset one caption naming its boxes
in reading order, "a square, a triangle and a circle on a plain background", and one grounding box per box row) and
"shapesqa" (``vqa``: 2 or 3 question/answer pairs per asset). ``n_annotations=`` seeds instead one synthetic
phrase-grounding dataset without pixels, fast enough for benchmarks.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._gc import gc_paused
from ._server import Faults
from .kit import UrlSigner

__all__ = [
    "CAPTION_TAG",
    "ViDataset",
    "ViState",
    "box_spec",
    "caption_spec",
    "new_id",
    "shapes_caption",
    "vqa_spec",
]

#: ``spec.tag`` of a caption: the SDK's struct requires an int and a caption has no tag
CAPTION_TAG = -1
#: the storage host's signatures: of image files, import uploads and export downloads
_SIGNER = UrlSigner(b"annotebook-vi-sim", param="expiry", millis=True)
_USER = "user-sim"

#: random ids and etags, far cheaper than uuid4 (the synthetic seed mints 40,000 of them)
_IDS = random.Random(random.SystemRandom().getrandbits(64))


def _etag() -> str:
    return f'"{_IDS.getrandbits(80):020x}"'


def new_id() -> str:
    """32 hex digits, never a ``_`` (the SDK splits ids on it)."""
    return f"{_IDS.getrandbits(128):032x}"


def shapes_caption(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """A caption naming ``words`` in order, and each word's character span in it.

    >>> shapes_caption(["square", "circle"])
    ('a square and a circle on a plain background', [(2, 8), (15, 21)])
    """
    if not words:
        return "a plain background", []
    text, spans = "", []
    for i, word in enumerate(words):
        if i:
            text += " and " if i == len(words) - 1 else ", "
        text += ("an " if word[:1].lower() in "aeiou" else "a ") if word else ""
        spans.append((len(text), len(text) + len(word)))
        text += word
    return text + " on a plain background", spans


def _questions(labels: list[str], index: int) -> list[tuple[str, str]]:
    """2 or 3 question/answer pairs about an image whose boxes (in reading order) carry ``labels``."""
    shapes = [x for x in labels if x != "noise"]
    pairs = [("How many shapes are there?", str(len(shapes)))]
    if shapes:
        common = Counter(shapes).most_common(1)[0][0]
        pairs.append((f"How many {common}s are there?", str(shapes.count(common))))
    else:
        pairs.append(("Is there a circle?", "no"))
    if index % 2 == 0:
        pairs.append(("What shape is at the top?", shapes[0] if shapes else "none"))
    return pairs


def box_spec(tag: int, whole: str, box: tuple[float, float, float, float], target: tuple[int, int]) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {
        "boundType": "Rectangle",
        "tag": tag,
        "aggregation": {"whole": {"id": whole}, "thisPart": {"role": "PhraseGroundingBoundingBox"}},
        "contents": {
            "kind": "PhraseGroundingBoundingBox",
            "bound": [[x0, y0], [x0, y1], [x1, y1], [x1, y0]],
            "target": [target[0], target[1]],
        },
    }


def caption_spec(whole: str, text: str) -> dict[str, Any]:
    return {
        "boundType": "Caption",
        "tag": CAPTION_TAG,
        "aggregation": {"whole": {"id": whole}, "thisPart": {"role": "Caption"}},
        "contents": {"kind": "Caption", "contents": text},
    }


def vqa_spec(whole: str, order: int, question: str, answer: str) -> dict[str, Any]:
    return {
        "boundType": "Vqa",
        "aggregation": {"whole": {"id": whole}, "thisPart": {"role": "Vqa"}},
        "contents": {"kind": "Vqa", "order": order, "question": question, "answer": answer},
    }


def _condition(name: str, status: str, now: int, reason: str | None = None) -> dict[str, Any]:
    return {"condition": name, "status": status, "lastTransitionTime": now, "reason": reason}


def _set_condition(conditions: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    """Put ``entry`` first (newest first), replacing the condition of the same name."""
    conditions[:] = [entry, *(c for c in conditions if c["condition"] != entry["condition"])]


class ViDataset:
    """One dataset: its assets, its annotations (indexed by asset, in creation order) and its tags."""

    def __init__(self, org: str, ds_id: str, name: str, kind: str, now: Callable[[], int], seq: Callable[[], int]):
        self.org, self.id, self.name, self.type = org, ds_id, name, kind
        self.fds = f"{org}_{ds_id}"
        self.now, self.next_seq = now, seq
        self.created = now()
        self.tags: dict[str, int] = {}
        self.tag_details: dict[str, dict[str, str]] = {}
        self.assets: dict[str, dict[str, Any]] = {}  # assetId -> {filename, width, height, ...}
        self.files: dict[str, Path] = {}  # assetId -> image file (none for synthetic assets)
        self.annotations: dict[str, dict[str, Any]] = {}  # annotationId -> its wire document
        self.by_asset: dict[str, dict[str, dict[str, Any]]] = {}
        self.seq: dict[str, int] = {}  # asset or annotation id -> sequence number (the paging cursor)
        self.generation = 1

    def link(self) -> str:
        return f"/workspaces/{self.org}/datasets/{self.fds}"

    def tag_index(self, name: str, color: str = "#888888") -> int:
        """The index of tag ``name``, added when new."""
        if name not in self.tags:
            self.tags[name] = max(self.tags.values(), default=-1) + 1
            self.tag_details[name] = {"description": "", "color": color}
        return self.tags[name]

    def add_asset(self, filename: str, width: int, height: int, path: Path | None) -> str:
        asset_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.fds}/{filename}"))
        now = self.now()
        size = path.stat().st_size if path is not None else 0
        digest = hashlib.md5(path.read_bytes() if path is not None else filename.encode()).digest()
        self.assets[asset_id] = {
            "filename": filename, "width": width, "height": height, "fileSize": size, "created": now,
            "mimeType": "image/jpeg" if filename.lower().endswith((".jpg", ".jpeg")) else "image/png",
            "hash": base64.b64encode(digest).decode(),
        }  # fmt: skip
        if path is not None:
            self.files[asset_id] = path
        self.by_asset[asset_id] = {}
        self.seq[asset_id] = self.next_seq()
        return asset_id

    def add_annotation(self, asset_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        ann_id, now = new_id(), self.now()
        ann = {
            "kind": "Annotation", "annotationId": ann_id, "assetId": asset_id, "workspaceId": self.org,
            "datasetId": self.fds, "spec": spec,
            "metadata": {"timeCreated": now, "lastUpdated": now, "generation": 1, "attributes": {}},
            "selfLink": f"{self.link()}/assets/{asset_id}/annotations/{ann_id}", "etag": _etag(),
        }  # fmt: skip
        self.annotations[ann_id] = ann
        self.by_asset[asset_id][ann_id] = ann
        self.seq[ann_id] = self.next_seq()
        self.generation += 1
        return ann

    def delete_annotation(self, ann_id: str) -> None:
        ann = self.annotations.pop(ann_id)
        del self.by_asset[ann["assetId"]][ann_id]
        del self.seq[ann_id]
        self.generation += 1

    def delete_asset(self, asset_id: str) -> None:
        for ann_id in list(self.by_asset[asset_id]):
            self.delete_annotation(ann_id)
        del self.assets[asset_id], self.by_asset[asset_id], self.seq[asset_id]
        self.files.pop(asset_id, None)

    def rewrite(self, ann: dict[str, Any], spec: dict[str, Any], attributes: dict[str, str]) -> None:
        """Store a new version of ``ann`` (in place: it keeps its id and its place in the listing)."""
        meta = ann["metadata"]
        ann["spec"] = spec
        ann["metadata"] = {**meta, "lastUpdated": self.now(), "generation": meta["generation"] + 1,
                           "attributes": attributes}  # fmt: skip
        ann["etag"] = _etag()
        self.generation += 1

    def caption_of(self, asset_id: str, whole: str) -> str | None:
        for ann in self.by_asset.get(asset_id, {}).values():
            spec = ann["spec"]
            if spec["aggregation"]["whole"]["id"] == whole and spec["contents"]["kind"] == "Caption":
                return str(spec["contents"]["contents"])
        return None

    # -- wire ------------------------------------------------------------------------------------------------
    def wire(self) -> dict[str, Any]:
        names = {i: n for n, i in self.tags.items()}
        counts: Counter[str] = Counter()
        for ann in self.annotations.values():
            tag = ann["spec"].get("tag")
            if isinstance(tag, int) and tag in names:
                counts[names[tag]] += 1
        annotated = sum(1 for anns in self.by_asset.values() if anns)
        return {
            "kind": "Dataset", "datasetId": self.fds, "name": self.name, "owner": self.org, "workspaceId": self.org,
            "type": self.type, "content": "Image", "createDate": self.created,
            "statistic": {"assetTotal": len(self.assets), "annotationTotal": len(self.annotations),
                          "tagsCount": dict(counts), "assetAnnotated": annotated},
            "users": {_USER: {"workspaceRole": "Owner", "datasets": {self.fds: "Owner"}}},
            "tags": dict(self.tags), "tagDetails": {k: dict(v) for k, v in self.tag_details.items()},
            "cohorts": [], "status": 0, "lastAccessed": self.now(), "isLocked": False,
            "access": {"isPublic": False, "isReadOnly": False, "isHidden": False}, "preference": {},
            "assetStatuses": {
                "None": {"description": "Not annotated yet", "color": "#9e9e9e"},
                "Annotated": {"description": "Annotated", "color": "#4caf50"},
            },
            "localization": "Datature/Multi", "dataLocalization": "Datature/Multi", "description": "",
            "selfLink": self.link(), "etag": f'"{self.id}-{self.generation}"',
        }  # fmt: skip

    def asset_wire(self, asset_id: str, contents: dict[str, Any] | None) -> dict[str, Any]:
        a = self.assets[asset_id]
        anns = self.by_asset[asset_id]
        names = {i: n for n, i in self.tags.items()}
        with_tag: Counter[str] = Counter(
            names[t] for t in (x["spec"].get("tag") for x in anns.values()) if isinstance(t, int) and t in names
        )
        last = max((self.seq[k] for k in anns), default=0)
        size = {"height": a["height"], "width": a["width"]}
        out = {
            "kind": "Image", "assetId": asset_id, "datasetId": self.fds, "workspaceId": self.org,
            "filename": a["filename"], "owner": _USER,
            "metadata": {
                "generations": {"asset": "1", "thumbnail": "1"}, "insertedBy": _USER,
                "annotations": {"withTag": dict(with_tag), "total": len(anns)}, "frames": 1, "cohorts": [],
                "fileSize": a["fileSize"], **size, "mimeType": a["mimeType"], "source": "Uploaded",
                "status": "Annotated" if anns else "None", "uploadStatus": "Completed", "visibility": "Visible",
                "userDefined": {}, "customMetadata": {}, "dimensions": dict(size),
                "pixelRatio": {"height": 1, "width": 1}, "comments": 0, "customMetadataCount": 0,
                "hash": {"algorithm": "md5", "contents": a["hash"]}, "contentsFrom": "Upload", "framesChange": {},
                "timeCreated": a["created"], "lastUpdated": a["created"], "contentsLastUpdated": a["created"],
            },
            "selfLink": f"{self.link()}/assets/{asset_id}", "etag": f'"{asset_id[:8]}-{len(anns)}-{last}"',
        }  # fmt: skip
        if contents is not None:
            out["contents"] = contents
        return out


class ViState:
    """One organization with its datasets, seeded from `annotebook.samples.make_shapes`."""

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
        """``n_annotations`` seeds one synthetic phrase-grounding dataset instead: ``n_assets`` assets without
        pixels, each with a caption and boxes, ``n_annotations`` annotations in all (2,000 x 10 in well under a
        second)."""
        self.key, self.url_ttl, self.max_page = key, url_ttl, max_page
        #: polls an import session or an export runs for before it ends
        self.op_steps = 3
        self.faults = Faults()
        self.sessions: dict[str, Any] = {}  # session id -> vi_imports.ImportSession
        self.exports: dict[str, Any] = {}  # export id -> vi_exports.ExportJob
        self._clock = 0
        self._seq = itertools.count(1)
        self.org_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"annotebook-vi-sim/{seed}"))
        self.org_name = "Simulated organization"
        self.created = self.now()
        self.datasets: dict[str, ViDataset] = {}  # dataset id -> dataset
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="vi-sim-"))
        with gc_paused():  # tens of thousands of small dicts: the cyclic collector would run many times
            if n_annotations is not None:
                self._seed_synthetic(n_assets, n_annotations, seed)
            else:
                self._seed_shapes(n_assets, seed)

    @property
    def dataset_ids(self) -> dict[str, str]:
        """Dataset name -> dataset id (without the organization prefix)."""
        return {d.name: d.id for d in self.datasets.values()}

    def dataset(self, name: str) -> ViDataset:
        """The dataset named ``name``."""
        return next(d for d in self.datasets.values() if d.name == name)

    def now(self) -> int:
        """Epoch milliseconds, strictly increasing."""
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def _new_dataset(self, name: str, kind: str) -> ViDataset:
        ds_id = "ds" + uuid.uuid5(uuid.NAMESPACE_URL, f"{self.org_id}/{name}").hex[:14]
        ds = ViDataset(self.org_id, ds_id, name, kind, self.now, lambda: next(self._seq))
        self.datasets[ds_id] = ds
        return ds

    def _seed_shapes(self, n_assets: int, seed: int) -> None:
        from ..samples import make_shapes

        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets, seed=seed)
        grounding, qa = self._new_dataset("shapes", "phrase-grounding"), self._new_dataset("shapesqa", "vqa")
        for r in labels.sort_values("index").to_dict("records"):
            grounding.tag_index(str(r["name"]), str(r["color"]))
        boxes = anns[anns["kind"] == "box"].sort_values(["asset", "y0", "x0"], kind="stable")
        rows_of: dict[str, list[Any]] = {}
        for r in boxes.to_dict("records"):
            rows_of.setdefault(str(r["asset"]), []).append(r)
        for i, a in enumerate(assets.to_dict("records")):
            size = (str(a["name"]), int(a["width"]), int(a["height"]), Path(str(a["uri"])))
            rows = rows_of.get(str(a["asset"]), [])
            words = [str(r["label"]) for r in rows]
            self._seed_grounding(grounding, grounding.add_asset(*size), words,
                                 [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in rows])  # fmt: skip
            qa_asset, whole = qa.add_asset(*size), new_id()
            for order, (q, answer) in enumerate(_questions(words, i)):
                qa.add_annotation(qa_asset, vqa_spec(whole, order, q, answer))

    @staticmethod
    def _seed_grounding(ds: ViDataset, asset_id: str, words: list[str], boxes: list[tuple]) -> None:
        text, spans = shapes_caption(words)
        whole = new_id()
        ds.add_annotation(asset_id, caption_spec(whole, text))
        for word, span, box in zip(words, spans, boxes, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            ds.add_annotation(asset_id, box_spec(ds.tag_index(word), whole, (x0, y0, x1, y1), span))

    def _seed_synthetic(self, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        ds = self._new_dataset("synthetic", "phrase-grounding")
        names = ("circle", "square", "triangle")
        for name in names:
            ds.tag_index(name)
        per, extra = divmod(n_annotations, max(n_assets, 1))
        for i in range(n_assets):
            asset_id = ds.add_asset(f"synthetic-{i:06d}.png", 640, 480, None)
            n_boxes = per + (1 if i < extra else 0) - 1
            if n_boxes < 0:
                continue
            words = [rng.choice(names) for _ in range(n_boxes)]
            boxes = []
            for _ in range(n_boxes):
                x0, y0 = rng.random() * 0.8, rng.random() * 0.8
                boxes.append((x0, y0, x0 + 0.05 + rng.random() * 0.15, y0 + 0.05 + rng.random() * 0.15))
            self._seed_grounding(ds, asset_id, words, boxes)

    # -- organization ------------------------------------------------------------------------------------------
    def organization(self) -> dict[str, Any]:
        fds = {d.fds: "Owner" for d in self.datasets.values()}
        return {
            "kind": "Organization", "name": self.org_name, "workspaceId": self.org_id, "lastAccess": self.now(),
            "datasets": list(fds),
            "billing": {"payer": _USER, "email": "sim@example.invalid", "subscriberId": "sub-sim", "ledger": [],
                        "tier": "Free"},
            "users": {_USER: {"workspaceRole": "Owner", "datasets": fds}},
            "metadata": {"createDate": self.created, "isPublic": False}, "features": {},
            "lockStatus": {"isLocked": False}, "selfLink": f"/workspaces/{self.org_id}",
            "etag": f'"{self.org_id[:8]}-1"',
        }  # fmt: skip

    # -- signed URLs -------------------------------------------------------------------------------------------
    def sign(self, kind: str, ident: str) -> tuple[str, int]:
        """The query ``expiry=<epoch ms>&signature=...`` of a URL of ``kind`` (file / upload / download) of
        ``ident``, and that expiry."""
        return _SIGNER.sign(kind, ident, self.url_ttl)

    def signed_ok(self, kind: str, ident: str, query: Mapping[str, str]) -> bool:
        return _SIGNER.valid(kind, ident, query)

    def contents(self, base: str, ds: ViDataset, asset_id: str) -> dict[str, Any]:
        """An asset's ``contents``: a signed URL of its image, or ``""`` for an asset without pixels."""
        query, expiry = self.sign("file", f"{ds.id}/{asset_id}")
        if asset_id not in ds.files:
            return {"asset": {"url": "", "expiry": expiry}}
        name = quote(ds.assets[asset_id]["filename"])
        return {"asset": {"url": f"{base}/files/{ds.id}/{asset_id}/{name}?{query}", "expiry": expiry}}
