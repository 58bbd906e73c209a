"""The Vi simulator's long-running work: annotation import sessions and dataset exports (notes B4.4 and B4.5).

Import sessions (``…/datasets/{fds}/annotationImportSessions``):

1. ``POST`` ``{"spec": {"uploadBefore", "failurePolicies": {"onBadAnnotation", "onBadFile", "onOverwritten"},
   "source"}, "metadata": {"attributes"}}`` (policies ``Warn`` / ``RejectFile`` / ``RejectSession``, default
   ``RejectSession`` as in the SDK) answers the session.
2. ``POST …/{sid}/files`` ``{"files": {name: {"sizeBytes", "crc32c", "kind"}}}`` answers ``{"files": {name:
   {"method": "PUT", "url", "headers"}}}``, one entry per file in request order; the URL (on this server, no auth)
   checks the size and the base64 big-endian CRC32C. ``DELETE …/{sid}/files/{name}`` (before the commit) is 204.
3. ``PATCH …/{sid}/status`` ``{"status": {"conditions": [{"condition": "FilesInserted", "status": "Reached"}]}}``
   commits (``FailedReach`` with a reason abandons; so does ``{"spec": {"status": "Cancelled"}}``).
4. ``GET …/{sid}``: conditions are listed newest first (the SDK reverses them into chronological order). Creation
   gives ``FilesInserted: Waiting``; the commit sets it ``Reached`` and the server adds ``AnnotationsCommitted:
   Waiting`` (*guess*: the SDK knows no server-side name), which the ``op_steps``-th poll settles: ``Reached``, or
   ``FailedReach`` (reason null, ``status.reason`` says why) when the session is rejected. Counts:
   ``status.files.statusCount`` (``Registered`` / ``Uploaded`` before, ``Processed`` / ``Rejected`` after) and
   ``status.annotations.statusCount`` (``Created``, ``Rejected``: the annotations the files hold, which is what the
   SDK's ``total_annotations`` sums; an unreadable line holds none; the replaced ones are counted in the logs).
5. ``GET …/{sid}/logs`` answers ``{"items": [{"file", "line" (or null), "level": "Error" | "Warning" | "Info",
   "message", "timestamp" (epoch ms)}], "nextPage": null, "prevPage": null}`` (*guess*); ``GET …/{sid}/filesSample``
   ``{"items": [{"name", "sizeBytes", "crc32c", "kind", "status"}]}``; ``GET …`` lists sessions (paged).

Files are Vi JSONL in either dialect, read with `annotebook.formats.vi_jsonl` (so its ``span`` and ``tag``
extensions hold). A line's asset is the one whose id, else file name, else file stem is the line's ``asset_id``
(export dialect: ``asset.filename``). Problems, each logged with its file and line:

* ``onBadFile``: the file was never uploaded, is not UTF-8, or a line is not a Vi JSONL object;
* ``onBadAnnotation``: a line names an unknown asset, a box is out of [0, 1], a phrase is not in its caption, a
  question/answer line goes to a phrase-grounding dataset or a caption to a vqa one;
* ``onOverwritten``: a line's asset already has annotations.

``Warn`` logs a warning and goes on (a bad line is skipped; an overwritten asset loses *every* annotation it had and
gets the file's, all with fresh ids); ``RejectFile`` imports nothing of that file; ``RejectSession`` imports nothing
at all. A grounding box's tag is its ``tag`` (our extension), else the tag named like its phrase, else a new tag
named after the phrase; a caption's ``category`` is not kept (captions carry tag -1).

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

import base64
import bisect
import io
import random
import re
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .vi_sim import JSON, ViDataset, ViState, box_spec, caption_spec, error_body, new_id, paged, vqa_spec

__all__ = ["BOX_FORMATS", "ExportJob", "ImportSession", "build_export", "run_import", "tfrecord"]

POLICIES = ("Warn", "RejectFile", "RejectSession")
POLICY_KEYS = ("onBadAnnotation", "onBadFile", "onOverwritten")
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
MAX_FILES = 1000
_BAD_ANNOTATION_FIELD = re.compile(r"\.(phrase|span|startTokenIndex|start_token_index|bbox|bounds|tag)(\[|$)")
_TOKEN = re.compile(r"\S+")


def _condition(name: str, status: str, now: int, reason: str | None = None) -> dict[str, Any]:
    return {"condition": name, "status": status, "lastTransitionTime": now, "reason": reason}


def _set_condition(conditions: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    """Put ``entry`` first (newest first), replacing the condition of the same name."""
    conditions[:] = [entry, *(c for c in conditions if c["condition"] != entry["condition"])]


class ImportSession:
    """One annotation import session: its files, its conditions, its logs and counts."""

    def __init__(self, ds: ViDataset, now: Callable[[], int], spec: dict[str, Any], attributes: dict[str, str]):
        self.id = new_id()
        self.ds, self.now = ds, now
        self.created = self.updated = now()
        self.generation = 1
        self.upload_before = int(spec.get("uploadBefore") or self.created + 3_600_000)
        given = spec.get("failurePolicies") or {}
        self.policies = {k: str(given.get(k) or "RejectSession") for k in POLICY_KEYS}
        self.attributes = attributes
        self.files: dict[str, dict[str, Any]] = {}  # name -> {sizeBytes, crc32c, kind, data}
        self.conditions: list[dict[str, Any]] = []
        _set_condition(self.conditions, _condition("FilesInserted", "Waiting", self.created))
        self.committed = self.finished = False
        self.polls = 0
        self.logs: list[dict[str, Any]] = []
        self.file_counts: dict[str, int] = {}
        self.annotation_counts: dict[str, int] = {}
        self.reason: str | None = None

    def touch(self) -> None:
        self.updated, self.generation = self.now(), self.generation + 1

    def log(self, file: str | None, line: int | None, level: str, message: str) -> None:
        self.logs.append({"file": file, "line": line, "level": level, "message": message, "timestamp": self.now()})

    def settle(self, name: str, status: str, reason: str | None = None) -> None:
        _set_condition(self.conditions, _condition(name, status, self.now(), reason))
        self.touch()

    def wire(self) -> dict[str, Any]:
        ds = self.ds
        uploaded = sum(1 for f in self.files.values() if f["data"] is not None)
        counts = self.file_counts or {"Registered": len(self.files) - uploaded, "Uploaded": uploaded}
        return {
            "kind": "AnnotationImportSession", "user": "user-sim", "workspaceId": ds.org, "datasetId": ds.fds,
            "annotationImportSessionId": self.id, "selfLink": f"{ds.link()}/annotationImportSessions/{self.id}",
            "etag": f'"{self.id[:8]}-{self.generation}"',
            "metadata": {"timeCreated": self.created, "lastUpdated": self.updated, "generation": self.generation,
                         "attributes": self.attributes},
            "spec": {"uploadBefore": self.upload_before, "failurePolicies": dict(self.policies),
                     "source": "UploadedIndividualFiles"},
            "status": {
                "conditions": [dict(c) for c in self.conditions],
                "files": {"pageCount": len(self.files),
                          "totalSizeBytes": sum(int(f["sizeBytes"]) for f in self.files.values()),
                          "statusCount": counts},
                "annotations": {"statusCount": dict(self.annotation_counts)},
                "reason": self.reason,
            },
        }  # fmt: skip


# -- reading uploaded files ---------------------------------------------------------------------------------------
@dataclass
class FileResult:
    """What one uploaded file holds: its good lines (rows and asset) and its problems (policy, line, message)."""

    name: str
    lines: dict[int, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)
    problems: list[tuple[str, int | None, str]] = field(default_factory=list)
    dropped_rows: int = 0


def _parse(name: str, text: str, result: FileResult) -> list[dict[str, Any]]:
    """The rows of a JSONL text, each with its line number in ``split``; unreadable lines become problems.

    Each line is handed to the reader as its own "file" (its split is its line number), so rows keep their line
    and a FormatError names the line; after an error the reader goes on with the lines after it.
    """
    from ..errors import FormatError
    from ..formats._rows import records
    from ..formats.vi_jsonl import vi_jsonl_to_tables

    pending = {str(i): t for i, t in enumerate(text.replace("\r\n", "\n").split("\n"), 1) if t.strip()}
    rows: list[dict[str, Any]] = []
    while pending:
        try:
            rows += records(vi_jsonl_to_tables(pending, dataset=name, splits={k: k for k in pending}).annotations)
            break
        except FormatError as exc:
            message = str(exc).split(": ", 1)[-1]
            if exc.file not in pending:  # not a line's error: the whole rest is unreadable
                result.problems.append(("onBadFile", None, message))
                break
            keys = list(pending)
            bad = keys.index(exc.file)
            kind = "onBadAnnotation" if _BAD_ANNOTATION_FIELD.search(exc.field or "") else "onBadFile"
            result.problems.append((kind, int(keys[bad]), message))
            good = {k: pending[k] for k in keys[:bad]}
            if good:  # these lines read fine before the bad one: read them again on their own
                rows += records(vi_jsonl_to_tables(good, dataset=name, splits={k: k for k in good}).annotations)
            pending = {k: pending[k] for k in keys[bad + 1 :]}
    return rows


def _asset_index(ds: ViDataset) -> dict[str, str]:
    """Asset id, file name and file stem -> asset id (an id wins over a name, a name over a stem)."""
    index: dict[str, str] = {}
    for aid, a in reversed(list(ds.assets.items())):
        index[a["filename"].rsplit(".", 1)[0]] = aid
    for aid, a in ds.assets.items():
        index[a["filename"]] = aid
    index.update({aid: aid for aid in ds.assets})
    return index


def _line_problem(ds: ViDataset, rows: list[dict[str, Any]]) -> str | None:
    kinds = {r["kind"] for r in rows}
    if ds.type == "phrase-grounding" and "qa" in kinds:
        return "a question/answer line cannot go into a phrase-grounding dataset"
    if ds.type == "vqa" and kinds & {"caption", "grounding"}:
        return "a caption line cannot go into a vqa dataset"
    for r in rows:
        if r["kind"] == "grounding":
            box = [r["x0"], r["y0"], r["x1"], r["y1"]]
            if any(not (-1e-9 <= v <= 1 + 1e-9) for v in box):
                return f"box {box} of phrase {r['text']!r} is out of [0, 1]"
    return None


def read_file(ds: ViDataset, name: str, data: bytes | None, index: dict[str, str]) -> FileResult:
    """Read and check one uploaded file against ``ds`` (nothing is written)."""
    result = FileResult(name)
    if data is None:
        result.problems.append(("onBadFile", None, "the file was registered but never uploaded"))
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.problems.append(("onBadFile", None, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return result
    by_line: dict[int, list[dict[str, Any]]] = {}
    for r in _parse(name, text, result):
        by_line.setdefault(int(r["split"]), []).append(r)
    for line, rows in sorted(by_line.items()):
        ref = str(rows[0]["asset"])
        aid = index.get(ref) or index.get(ref.replace("\\", "/").rsplit("/", 1)[-1])
        problem = _line_problem(ds, rows) if aid else f"asset {ref!r} is not in this dataset"
        if problem or aid is None:
            result.problems.append(("onBadAnnotation", line, problem or ""))
            result.dropped_rows += len(rows)
            continue
        result.lines[line] = (aid, rows)
    seen: set[str] = set()
    for line, (aid, _) in result.lines.items():
        if aid not in seen and ds.by_asset[aid]:
            n, filename = len(ds.by_asset[aid]), ds.assets[aid]["filename"]
            result.problems.append(("onOverwritten", line, f"asset {filename!r} already has {n} annotations"))
        seen.add(aid)
    return result


# -- running an import -------------------------------------------------------------------------------------------
def run_import(session: ImportSession) -> None:
    """Read every file of a committed session, apply its failure policies and write what survives."""
    ds = session.ds
    index = _asset_index(ds)
    results = [read_file(ds, name, f["data"], index) for name, f in session.files.items()]
    rejected_session, accepted, rejected_rows = False, [], 0
    for res in results:
        worst = "Warn"
        for kind, line, message in res.problems:
            policy = session.policies[kind]
            worst = max(worst, policy, key=POLICIES.index)
            level = "Warning" if policy == "Warn" else "Error"
            session.log(res.name, line, level, f"{message} ({kind}: {policy})")
        rejected_rows += res.dropped_rows
        if worst == "Warn":
            accepted.append(res)
            continue
        rejected_rows += sum(len(r) for _, r in res.lines.values())
        rejected_session = rejected_session or worst == "RejectSession"
        if worst == "RejectFile":
            session.log(res.name, None, "Error", "the file was rejected: nothing of it was imported")
    n_files = len(results)
    if rejected_session:
        total = rejected_rows + sum(len(r) for res in accepted for _, r in res.lines.values())
        session.log(None, None, "Error", "the session was rejected: nothing was imported")
        session.file_counts = {"Processed": 0, "Rejected": n_files}
        session.annotation_counts = {"Created": 0, "Rejected": total}
        session.reason = "Rejected by its failure policies; see the logs"
        session.settle("AnnotationsCommitted", "FailedReach")
        return
    created = _write(ds, accepted, session)
    session.file_counts = {"Processed": len(accepted), "Rejected": n_files - len(accepted)}
    session.annotation_counts = {"Created": created, "Rejected": rejected_rows}
    session.settle("AnnotationsCommitted", "Reached")


def _write(ds: ViDataset, accepted: list[FileResult], session: ImportSession) -> int:
    """Write the accepted files' lines (an asset that had annotations loses them all first, once); the count."""
    touched: set[str] = set()
    created = 0
    for res in accepted:
        before, replaced = created, 0
        for aid, rows in res.lines.values():
            if aid not in touched:
                replaced += len(ds.by_asset[aid])
                for ann_id in list(ds.by_asset[aid]):
                    ds.delete_annotation(ann_id)
                touched.add(aid)
            created += _write_line(ds, aid, rows)
        done = f"{created - before} annotations imported" + (f", {replaced} replaced" if replaced else "")
        session.log(res.name, None, "Info", done)
    return created


def _write_line(ds: ViDataset, aid: str, rows: list[dict[str, Any]]) -> int:
    wholes: dict[str, str] = {}
    qa_whole, qa_order = new_id(), 0
    for r in rows:
        if r["kind"] == "caption":
            wholes[r["id"]] = new_id()
            ds.add_annotation(aid, caption_spec(wholes[r["id"]], r["text"] or ""))
        elif r["kind"] == "grounding":
            phrase = r["text"] or ""
            name = r.get("label") or next((n for n in ds.tags if n.lower() == phrase.lower()), phrase)
            box = (float(r["x0"]), float(r["y0"]), float(r["x1"]), float(r["y1"]))
            whole = wholes.setdefault(r["parent"], new_id())
            ds.add_annotation(aid, box_spec(ds.tag_index(name), whole, box, (r["span_start"], r["span_end"])))
        else:
            ds.add_annotation(aid, vqa_spec(qa_whole, qa_order, r["text"] or "", r.get("answer") or ""))
            qa_order += 1
    return len(rows)


# -- exports -----------------------------------------------------------------------------------------------------
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


def _masked_crc(data: bytes) -> int:
    from ..backends._remote import crc32c_b64

    crc = int.from_bytes(base64.b64decode(crc32c_b64(data)), "big")
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: Iterable[bytes]) -> bytes:
    """TFRecord framing: per record its length (u64), masked CRC32C of the length, the data, masked CRC32C of it."""
    out = bytearray()
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))
    return bytes(out)


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


# -- routes ------------------------------------------------------------------------------------------------------
def _error(status: int, code: str, message: str) -> Response:
    return JSON(error_body(code, message), status_code=status)


def _xml_error(status: int, code: str) -> Response:
    return Response(f"<Error><Code>{code}</Code></Error>".encode(), status, media_type="application/xml")


def _session_problem(body: Any) -> str | None:
    """Why a request to create an import session is refused, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        return "the body must be {spec: {uploadBefore, failurePolicies, source}, metadata: {attributes}}"
    before = body["spec"].get("uploadBefore")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        return "spec.uploadBefore must be epoch milliseconds"
    policies = body["spec"].get("failurePolicies") or {}
    if not isinstance(policies, dict) or any(k not in POLICY_KEYS or v not in POLICIES for k, v in policies.items()):
        return f"spec.failurePolicies maps {', '.join(POLICY_KEYS)} to one of {', '.join(POLICIES)}"
    attributes = (body.get("metadata") or {}).get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        return "metadata.attributes must map names to strings"
    return None


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None


def _ranged(data: bytes, header: str | None, head: bool) -> Response:
    """``data`` whole, or the single ``bytes=a-b`` range asked for (206), or 416."""
    n, zipped = len(data), "application/zip"
    if head:
        return Response(b"", 200, {"Content-Length": str(n), "Accept-Ranges": "bytes"}, media_type=zipped)
    if not header:
        return Response(data, 200, {"Accept-Ranges": "bytes"}, media_type=zipped)
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if m and m[1]:
        start, end = int(m[1]), min(int(m[2]), n - 1) if m[2] else n - 1
    elif m and m[2]:
        start, end = max(n - int(m[2]), 0), n - 1
    else:
        start, end = n, n
    if start >= n or start > end:
        return Response(b"", 416, {"Content-Range": f"bytes */{n}"})
    headers = {"Content-Range": f"bytes {start}-{end}/{n}", "Accept-Ranges": "bytes"}
    return Response(data[start : end + 1], 206, headers, media_type=zipped)


def routes(state: ViState, dataset_or_error: Callable[[Request], Any], ds_path: str) -> list[Route]:
    """The import-session and export routes of ``state``'s app (``dataset_or_error`` authenticates)."""

    def session_or_error(request: Request) -> ImportSession | Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        session = state.sessions.get(request.path_params["sid"])
        if session is None or session.ds is not ds:
            return _error(404, "ResourceNotFoundError", "Requested Annotation Import Session Resource Not Found")
        return session

    async def sessions(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        if request.method == "GET":
            mine = {k: s for k, s in state.sessions.items() if s.ds is ds}
            try:
                chunk, cursors = paged(request, list(mine), {k: s.created for k, s in mine.items()}, state.max_page)
            except ValueError as exc:
                return _error(400, "BadRequestError", str(exc))
            return JSON({"items": [mine[k].wire() for k in chunk], **cursors})
        body = await _json_body(request)
        problem = _session_problem(body)
        if problem:
            return _error(400, "BadRequestError", problem)
        session = ImportSession(ds, state.now, body["spec"], (body.get("metadata") or {}).get("attributes") or {})
        state.sessions[session.id] = session
        return JSON(session.wire())

    async def session(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        if found.committed and not found.finished:
            found.polls += 1
            found.touch()
            if found.polls >= state.op_steps:
                found.finished = True
                run_import(found)
        return JSON(found.wire())

    async def status(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        body = await _json_body(request)
        conditions = ((body or {}).get("status") or {}).get("conditions") if isinstance(body, dict) else None
        cancelled = isinstance(body, dict) and (body.get("spec") or {}).get("status") == "Cancelled"
        if not cancelled and (not isinstance(conditions, list) or not all(
            isinstance(c, dict) and c.get("condition") == "FilesInserted" for c in conditions
        )):  # fmt: skip
            return _error(400, "BadRequestError", "status.conditions may only set FilesInserted")
        if found.committed or found.finished:
            return _error(409, "ConflictError", "The import session was already committed or abandoned")
        for c in conditions or [{"status": "FailedReach", "reason": "CancelledByUser"}]:
            if c.get("status") == "Reached":
                found.committed = True
                found.settle("FilesInserted", "Reached")
                found.settle("AnnotationsCommitted", "Waiting")
            elif c.get("status") == "FailedReach":
                reason = c.get("reason") if c.get("reason") in ("CancelledByUser", "UserUploadErrored") else None
                found.finished = True
                found.settle("FilesInserted", "FailedReach", reason)
                found.log(None, None, "Error", f"the client abandoned the session ({reason}); nothing was imported")
        if found.committed and state.op_steps <= 0:
            found.finished = True
            run_import(found)
        return JSON(found.wire())

    async def files(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        body = await _json_body(request)
        given = body.get("files") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not given or not all(
            isinstance(v, dict) and isinstance(v.get("sizeBytes"), int) and isinstance(v.get("crc32c"), str)
            and k and "/" not in k for k, v in given.items()
        ):  # fmt: skip
            return _error(400, "BadRequestError", "files must map file names to {sizeBytes, crc32c, kind}")
        if found.committed or found.finished:
            return _error(409, "ConflictError", "Files can no longer be added to this import session")
        if len(set(found.files) | set(given)) > MAX_FILES:
            return _error(400, "BadRequestError", f"An import session holds at most {MAX_FILES} files")
        out = {}
        for name, spec in given.items():
            found.files[name] = {"sizeBytes": spec["sizeBytes"], "crc32c": spec["crc32c"],
                                 "kind": spec.get("kind") or "Unknown", "data": None}  # fmt: skip
            url = f"{str(request.base_url).rstrip('/')}/uploads/{found.id}/{quote(name)}"
            query, _ = state.sign("upload", f"{found.id}/{name}")
            out[name] = {"method": "PUT", "url": f"{url}?{query}",
                         "headers": {"Content-Type": "application/octet-stream",
                                     "x-goog-hash": f"crc32c={spec['crc32c']}"}}  # fmt: skip
        found.touch()
        return JSON({"files": out})

    async def one_file(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        if request.path_params["name"] not in found.files:
            return _error(404, "ResourceNotFoundError", "Requested Import File Resource Not Found")
        if found.committed or found.finished:
            return _error(409, "ConflictError", "Files can no longer be removed from this import session")
        del found.files[request.path_params["name"]]
        found.touch()
        return Response(status_code=204)

    async def files_sample(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        items = [{"name": n, "sizeBytes": f["sizeBytes"], "crc32c": f["crc32c"], "kind": f["kind"],
                  "status": "Uploaded" if f["data"] is not None else "Registered"}
                 for n, f in list(found.files.items())[:10]]  # fmt: skip
        return JSON({"items": items})

    async def logs(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        return JSON({"items": found.logs, "nextPage": None, "prevPage": None})

    async def upload(request: Request) -> Response:
        from ..backends._remote import crc32c_b64

        sid, name = request.path_params["sid"], request.path_params["name"]
        found = state.sessions.get(sid)
        if found is None or not state.signed_ok("upload", f"{sid}/{name}", request):
            return _xml_error(403, "AccessDenied")
        entry = found.files.get(name)
        if entry is None or found.committed or found.finished or time.time() * 1000 > found.upload_before:
            return _xml_error(403, "AccessDenied")
        data = await request.body()
        if len(data) != entry["sizeBytes"] or crc32c_b64(data) != entry["crc32c"]:
            return _xml_error(400, "BadDigest")
        entry["data"] = data
        return Response(b"", 200)

    async def exports(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        if request.method == "GET":
            mine = {k: j for k, j in state.exports.items() if j.ds is ds}
            try:
                chunk, cursors = paged(request, list(mine), {k: j.created for k, j in mine.items()}, state.max_page)
            except ValueError as exc:
                return _error(400, "BadRequestError", str(exc))
            return JSON({"items": [mine[k].wire(download(request, mine[k])) for k in chunk], **cursors})
        body = await _json_body(request)
        spec = body.get("spec") if isinstance(body, dict) else None
        problem = export_problem(ds, spec)
        if problem or not isinstance(spec, dict):
            return _error(400, "BadRequestError", problem or "the body must be {spec: {format, options}}")
        job = ExportJob(ds, state.now, str(spec["format"]), dict(spec.get("options") or {}))
        try:
            job.archive = build_export(ds, job.format, job.options)
        except (ValueError, KeyError, TypeError) as exc:
            job.error = f"Export failed: {exc}"
        state.exports[job.id] = job
        return JSON(job.wire(None))

    def download(request: Request, job: ExportJob) -> dict[str, Any] | None:
        if not job.ready:
            return None
        query, expiry = state.sign("download", job.id)
        return {"url": f"{str(request.base_url).rstrip('/')}/downloads/{job.id}.zip?{query}", "expiresAt": expiry}

    async def export(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        job = state.exports.get(request.path_params["eid"])
        if job is None or job.ds is not ds:
            return _error(404, "ResourceNotFoundError", "Requested Dataset Export Resource Not Found")
        job.advance(state.op_steps)
        return JSON(job.wire(download(request, job)))

    async def archive(request: Request) -> Response:
        job = state.exports.get(request.path_params["eid"])
        if job is None or not job.ready or not state.signed_ok("download", job.id, request):
            return _xml_error(403, "AccessDenied")
        assert job.archive is not None
        return _ranged(job.archive, request.headers.get("range"), request.method == "HEAD")

    sessions_path = ds_path + "/annotationImportSessions"
    return [
        Route(sessions_path, sessions, methods=["GET", "POST"]),
        Route(sessions_path + "/{sid}", session),
        Route(sessions_path + "/{sid}/status", status, methods=["PATCH"]),
        Route(sessions_path + "/{sid}/files", files, methods=["POST"]),
        Route(sessions_path + "/{sid}/files/{name}", one_file, methods=["DELETE"]),
        Route(sessions_path + "/{sid}/filesSample", files_sample),
        Route(sessions_path + "/{sid}/logs", logs),
        Route(ds_path + "/datasetExports", exports, methods=["GET", "POST"]),
        Route(ds_path + "/datasetExports/{eid}", export),
        Route("/uploads/{sid}/{name}", upload, methods=["PUT"]),
        Route("/downloads/{eid}.zip", archive, methods=["GET", "HEAD"]),
    ]
