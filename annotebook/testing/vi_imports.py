"""The Vi simulator's annotation import sessions (note B4.4): a session, the reading of its files, the import.

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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .vi_state import ViDataset, _condition, _set_condition, box_spec, caption_spec, new_id, vqa_spec

__all__ = ["POLICIES", "POLICY_KEYS", "ImportSession", "read_file", "run_import"]

POLICIES = ("Warn", "RejectFile", "RejectSession")
POLICY_KEYS = ("onBadAnnotation", "onBadFile", "onOverwritten")
_BAD_ANNOTATION_FIELD = re.compile(r"\.(phrase|span|startTokenIndex|start_token_index|bbox|bounds|tag)(\[|$)")


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
