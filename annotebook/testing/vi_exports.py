"""The Vi simulator's dataset exports (note B4.5): an export, its checks, and the zip it builds.

Exports (``…/datasetExports``): ``POST {"spec": {"format", "options": {"normalized", "splitRatio"}}}`` with the
formats of the dataset type (phrase-grounding: the box formats below, ``ViJsonl``, ``ViTfrecord``; vqa: ``ViJsonl``,
``ViTfrecord``; anything else is a 400). The SDK decodes only ``ViJsonl | ViFull | ViTfrecord`` in
``spec.format``, so another format is answered as ``"ViJsonl"`` there, and the requested one is always in
``spec.options.format``. Conditions (newest first) ``Started`` then ``Finished`` (names the SDK's ``Condition``
knows) settle on the ``op_steps``-th poll, then ``status.downloadUrl = {url, expiresAt}``: a zip without auth that
answers ``HEAD`` (Content-Length, Accept-Ranges) and ranged ``GET``s (206 + Content-Range). ``splitRatio`` (the
share of assets, shuffled with a fixed seed, in validation) puts files under ``training/annotations/`` and
``validation/annotations/``; no ratio puts them under ``dump/annotations/`` (*guess*). ``ViJsonl`` is the SDK's
export dialect (``annotations.jsonl``: camelCase, ``bounds`` as ``[xmin, ymin, xmax, ymax]``, 0-based
``startTokenIndex`` and exclusive ``endTokenIndex`` of whitespace tokens; a phrase that starts inside a token gives
character offsets instead; one line per whole); ``ViTfrecord`` the same lines as TFRecord records
(``annotations.tfrecord``); the box formats are written by `annotebook.formats.save` from the grounding boxes,
labelled by tag name. The zip is built when the export is asked for (a snapshot); a build that fails ends
``Finished: FailedReach`` with a ``message``.
"""

from __future__ import annotations

import bisect
import io
import random
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ._tfrecord import tfrecord
from .vi_state import ViDataset, _condition, _set_condition, new_id

__all__ = ["BOX_FORMATS", "ExportJob", "build_export", "export_line", "export_problem"]

#: Vi box format -> (annotebook format, what is written in ``{split}/annotations/``: a file, or "" for the folder)
BOX_FORMATS = {
    "CsvFourCorner": ("csv_four_corner", "annotations.csv"),
    "CsvWidthHeight": ("csv_width_height", "annotations.csv"),
    "Coco": ("coco", "annotations.json"),
    "PascalVoc": ("voc", ""),
    "YoloDarknet": ("yolo", ""),
    "YoloKerasPytorch": ("yolo_keras", "_annotations.txt"),
}
VI_FORMATS = ("ViJsonl", "ViTfrecord")
SDK_FORMATS = ("ViJsonl", "ViFull", "ViTfrecord")  # what the SDK's DatasetExport decodes in spec.format
_TOKEN = re.compile(r"\S+")


class ExportJob:
    """One dataset export: its conditions and, built when it was asked for, its zip."""

    def __init__(self, ds: ViDataset, now: Callable[[], int], fmt: str, options: dict[str, Any]):
        self.id = new_id()
        self.ds, self.now, self.format, self.options = ds, now, fmt, options
        self.created = self.updated = now()
        self.polls = 0
        self.archive: bytes | None = None
        self.error: str | None = None
        self.conditions: list[dict[str, Any]] = [_condition("Started", "Waiting", self.created)]

    def advance(self, steps: int) -> None:
        """One poll: Started is reached at the first, Finished (or its failure) at the ``steps``-th."""
        if self.done:
            return
        self.polls += 1
        self.updated = self.now()
        _set_condition(self.conditions, _condition("Started", "Reached", self.updated))
        if self.polls < steps:
            _set_condition(self.conditions, _condition("Finished", "Waiting", self.updated))
            return
        status, entry = ("FailedReach", self.error) if self.error else ("Reached", None)
        _set_condition(self.conditions, {**_condition("Finished", status, self.updated), "message": entry})

    @property
    def done(self) -> bool:
        return any(c["condition"] == "Finished" and c["status"] != "Waiting" for c in self.conditions)

    @property
    def ready(self) -> bool:
        return self.done and self.archive is not None and self.error is None

    def wire(self, download: dict[str, Any] | None) -> dict[str, Any]:
        ds = self.ds
        options = {"normalized": bool(self.options.get("normalized", True)),
                   "splitRatio": self.options.get("splitRatio"), "format": self.format}  # fmt: skip
        status: dict[str, Any] = {"conditions": [dict(c) for c in self.conditions]}
        if download is not None:
            status["downloadUrl"] = download
        return {
            "kind": "DatasetExport", "workspaceId": ds.org, "datasetId": ds.fds, "datasetExportId": self.id,
            "spec": {"format": self.format if self.format in SDK_FORMATS else "ViJsonl", "options": options},
            "status": status,
            "metadata": {"timeCreated": self.created, "lastUpdated": self.updated, "generation": self.polls + 1,
                         "attributes": {}},
            "selfLink": f"{ds.link()}/datasetExports/{self.id}", "etag": f'"{self.id[:8]}-{self.polls}"',
        }  # fmt: skip


def export_problem(ds: ViDataset, spec: Any) -> str | None:
    """Why an export request is refused, or None."""
    if not isinstance(spec, dict):
        return "the body must be {spec: {format, options}}"
    fmt, options = spec.get("format"), spec.get("options") or {}
    allowed = (*BOX_FORMATS, *VI_FORMATS) if ds.type == "phrase-grounding" else VI_FORMATS
    if fmt not in allowed:
        return f"format {fmt!r} cannot export a {ds.type} dataset's annotations; use one of {', '.join(allowed)}"
    ratio = options.get("splitRatio") if isinstance(options, dict) else "?"
    if ratio is not None and not (isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 <= ratio <= 1):
        return f"options.splitRatio must be null or a number in [0, 1], got {ratio!r}"
    return None


def _splits(ds: ViDataset, ratio: float | None) -> dict[str, str]:
    ids = sorted(ds.assets, key=lambda a: ds.assets[a]["filename"])
    if ratio is None:
        return dict.fromkeys(ids, "dump")
    random.Random(0).shuffle(ids)
    n_val = round(len(ids) * ratio)
    return {a: "validation" if i < n_val else "training" for i, a in enumerate(ids)}


def _wholes(ds: ViDataset, aid: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for ann in ds.by_asset[aid].values():
        out.setdefault(ann["spec"]["aggregation"]["whole"]["id"], []).append(ann["spec"])
    return out


def _token_indices(caption: str, start: int, end: int) -> tuple[int, int]:
    """0-based start token and exclusive end token of a character span (the span itself when mid-token)."""
    starts = [m.start() for m in _TOKEN.finditer(caption)]
    first = bisect.bisect_right(starts, start) - 1
    if first < 0 or starts[first] != start:
        return start, end
    return first, bisect.bisect_left(starts, end)


def export_line(ds: ViDataset, aid: str, whole: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
    """One whole (a caption with its boxes, or an asset's question/answer pairs) in the SDK's export dialect."""
    a = ds.assets[aid]
    head = {"id": whole, "asset": {"type": "Image", "filename": a["filename"], "height": a["height"],
                                   "width": a["width"]}}  # fmt: skip
    if ds.type == "vqa":
        pairs = sorted((s["contents"] for s in specs), key=lambda c: c["order"])
        interactions = [{"order": c["order"], "question": c["question"], "answer": c["answer"]} for c in pairs]
        return {**head, "contents": {"type": "Vqa", "interactions": interactions}}
    caption = next((s["contents"]["contents"] for s in specs if s["contents"]["kind"] == "Caption"), "")
    phrases: dict[tuple[int, int], list[list[float]]] = {}
    for s in specs:
        if s["contents"]["kind"] == "PhraseGroundingBoundingBox":
            xs, ys = zip(*s["contents"]["bound"], strict=True)
            phrases.setdefault(tuple(s["contents"]["target"]), []).append([min(xs), min(ys), max(xs), max(ys)])
    grounded = []
    for (start, end), bounds in sorted(phrases.items()):
        first, last = _token_indices(caption, start, end)
        grounded.append({"phrase": caption[start:end], "startTokenIndex": first, "endTokenIndex": last,
                         "bounds": bounds})  # fmt: skip
    return {**head, "contents": {"type": "PhraseGrounding", "caption": caption, "groundedPhrases": grounded}}


def build_export(ds: ViDataset, fmt: str, options: dict[str, Any]) -> bytes:
    """The zip of an export of ``ds`` in ``fmt`` (checked by `export_problem`)."""
    split_of = _splits(ds, options.get("splitRatio"))
    files: dict[str, bytes] = {}
    if fmt in VI_FORMATS:
        lines: dict[str, list[bytes]] = {}
        for aid in ds.assets:
            for whole, specs in _wholes(ds, aid).items():
                lines.setdefault(split_of[aid], []).append(orjson.dumps(export_line(ds, aid, whole, specs)))
        for split, chunk in lines.items():
            if fmt == "ViJsonl":
                files[f"{split}/annotations/annotations.jsonl"] = b"".join(x + b"\n" for x in chunk)
            else:
                files[f"{split}/annotations/annotations.tfrecord"] = tfrecord(chunk)
    else:
        files = _box_files(ds, fmt, split_of, bool(options.get("normalized", True)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            z.writestr(name, files[name])
    return buf.getvalue()


def _box_files(ds: ViDataset, fmt: str, split_of: dict[str, str], normalized: bool) -> dict[str, bytes]:
    from .. import schema
    from ..formats import save

    ab_format, target = BOX_FORMATS[fmt]
    names = {i: n for n, i in ds.tags.items()}
    rows = []
    for ann in ds.annotations.values():
        c = ann["spec"]["contents"]
        if c["kind"] == "PhraseGroundingBoundingBox":
            xs, ys = zip(*c["bound"], strict=True)
            rows.append({"dataset": ds.name, "asset": ds.assets[ann["assetId"]]["filename"], "kind": "box",
                         "label": names.get(ann["spec"]["tag"], str(ann["spec"]["tag"])), "x0": min(xs),
                         "y0": min(ys), "x1": max(xs), "y1": max(ys), "split": split_of[ann["assetId"]]})  # fmt: skip
    labels = schema.labels_frame(
        [{"dataset": ds.name, "name": n, "index": i, "color": ds.tag_details[n]["color"]} for n, i in ds.tags.items()]
    )
    extra = {"normalized": normalized} if ab_format.startswith("csv") else {}
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="vi-export-") as tmp:
        root = Path(tmp)
        for split in sorted({r["split"] for r in rows}):
            # the split is our folder, not the writer's own split layout
            sub = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
            mine = {r["asset"] for r in sub}
            assets = schema.assets_frame([{"dataset": ds.name, "asset": a["filename"], "name": a["filename"],
                                           "width": a["width"], "height": a["height"]}
                                          for a in ds.assets.values() if a["filename"] in mine])  # fmt: skip
            folder = root / split / "annotations"
            save(schema.annotations_frame(sub), folder / target if target else folder, ab_format, assets=assets,
                 labels=labels, **extra)  # fmt: skip
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out
