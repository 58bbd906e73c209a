"""Datature Vi import sessions and exports: `ViTransfer`, the file-moving half of `ViBackend`, and reading them back.

An import uploads Vi JSONL files to one import session with explicit failure policies; `file_report` gives a row
per file from the session's log, and a session that ends FailedReach raises `ImportRejected`. An export is checked
against the dataset's type, polled, fetched by Range requests and extracted; `read_export` reads it back with the
format's reader (`READERS`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from .. import schema
from ..errors import BackendError
from ._http import ApiClient, MalformedResponse
from ._remote import collect_files, crc32c_b64, extract_zip, field, progress_bar, put_signed

__all__ = ["EXPORT_FORMATS", "POLICIES", "READERS", "ImportRejected", "ViTransfer", "file_report", "read_export"]


#: the annotation-only export formats of each dataset type (the seed doc's "Supported export formats")
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "phrase-grounding": ("ViJsonl", "ViTfrecord", "CsvFourCorner", "CsvWidthHeight", "Coco", "PascalVoc",
                         "YoloDarknet", "YoloKerasPytorch"),
    "vqa": ("ViJsonl", "ViTfrecord"),
    "freeform": ("ViJsonl",),
}  # fmt: skip
_ALL_FORMATS = tuple(dict.fromkeys(f for fs in EXPORT_FORMATS.values() for f in fs))
#: annotebook format names -> Vi's
_FORMAT_ALIASES = {"coco": "Coco", "voc": "PascalVoc", "pascal_voc": "PascalVoc", "yolo": "YoloDarknet",
                   "yolo_darknet": "YoloDarknet", "yolo_keras": "YoloKerasPytorch",
                   "yolo_keras_pytorch": "YoloKerasPytorch", "csv": "CsvFourCorner", "csv_four_corner": "CsvFourCorner",
                   "csv_fourcorner": "CsvFourCorner", "csv_width_height": "CsvWidthHeight",
                   "csv_widthheight": "CsvWidthHeight", "vi_jsonl": "ViJsonl", "jsonl": "ViJsonl",
                   "vi_tfrecord": "ViTfrecord", "tfrecord": "ViTfrecord"}  # fmt: skip
#: Vi export format -> the annotebook reader of its files (ViTfrecord has none: it is downloaded, not parsed)
READERS = {"ViJsonl": "vi_jsonl", "Coco": "coco", "PascalVoc": "voc", "YoloDarknet": "yolo",
           "YoloKerasPytorch": "yolo_keras", "CsvFourCorner": "csv_four_corner",
           "CsvWidthHeight": "csv_width_height"}  # fmt: skip
POLICIES = ("Warn", "RejectFile", "RejectSession")
MAX_SESSION_FILES = 1000
LOG_COLUMNS = ["file", "line", "level", "message", "timestamp"]


class ImportRejected(BackendError):
    """An import session ended FailedReach; ``logs`` names the files and lines, ``report`` has a row per file."""

    def __init__(self, message: str, logs: pd.DataFrame, report: pd.DataFrame | None = None):
        super().__init__(message)
        self.logs, self.report = logs, report


class ViTransfer:
    """Import sessions and exports of a Vi organization's datasets; `ViBackend` supplies the client and addressing."""

    poll_interval: float
    poll_timeout: float
    _api: ApiClient
    _files: httpx.Client

    if TYPE_CHECKING:  # provided by ViBackend

        def _ds(self, dataset: str) -> str: ...
        def _path(self, dataset: str | None = None, tail: str = "") -> str: ...
        def dataset_type(self, dataset: str) -> str: ...

    def _poll_delay(self, polls: int) -> float:
        """Seconds before the next poll: short at first (small imports end in a second), then ``poll_interval``."""
        return float(min(self.poll_interval, 0.05 * 1.5**polls))

    def _poll_conditions(
        self, url: str, what: str, progress: bool, bar: tuple[str, str], late: str
    ) -> tuple[dict[str, Any], list[Any]]:
        """Poll ``url`` until a condition is FailedReach or every one Reached; its status and condition states.

        ``bar`` is the description and unit of the progress bar (conditions Reached); after ``poll_timeout``
        seconds `BackendError` with the message ``late``.
        """
        deadline = time.monotonic() + self.poll_timeout
        polls = 0
        shown = progress_bar(1, bar[0], progress, bar[1])
        try:
            while True:
                status = field(self._api.get(url), "status", what)
                states = [c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)]
                shown.total, shown.n = max(1, len(states)), states.count("Reached")
                shown.refresh()
                if "FailedReach" in states or (states and all(s == "Reached" for s in states)):
                    return status, states
                if time.monotonic() > deadline:
                    raise BackendError(late)
                time.sleep(self._poll_delay(polls := polls + 1))
        finally:
            shown.close()

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self,
        paths: Any,
        dataset: str,
        format: str | None = None,
        progress: bool = True,
        wait: bool = True,
        on_bad_annotation: str = "RejectFile",
        on_bad_file: str = "RejectFile",
        on_overwritten: str = "Warn",
    ) -> pd.DataFrame:
        """Upload Vi JSONL files (``.jsonl``/``.json`` files, folders of them, ``(name, bytes)`` pairs or a mapping).

        The failure policies (``Warn``, ``RejectFile``, ``RejectSession``) are sent explicitly: ``on_overwritten``
        decides what happens to an asset that already has annotations (``Warn``: the file's rows replace them).
        With ``wait`` the session is polled to its end and a report returned, one row per file (``status``
        imported / rejected, counts of error and warning lines, the first error), with the session's whole log in
        ``.attrs["logs"]`` (file, line, level, message); a session that ended FailedReach raises `ImportRejected`
        with that log and the report. Without ``wait`` the empty log is returned with the session id in
        ``.attrs["session"]`` (see `wait_import`).
        """
        if format is not None and _FORMAT_ALIASES.get(format.lower(), format) != "ViJsonl":
            raise ValueError(f"Vi imports Vi JSONL only, not {format!r}")
        files = collect_files(paths, lambda f: f.suffix.lower() in (".jsonl", ".json"))
        if not files:
            raise ValueError("nothing to import: no .jsonl / .json files among the paths given")
        policies = {"onBadAnnotation": on_bad_annotation, "onBadFile": on_bad_file, "onOverwritten": on_overwritten}
        for name, value in policies.items():
            if value not in POLICIES:
                raise ValueError(f"{name} must be one of {POLICIES}, not {value!r}")
        ds = self._ds(dataset)
        try:
            logs = self._import(ds, files, policies, progress, wait=wait)
        except ImportRejected as exc:
            exc.report = file_report(files, exc.logs, rejected_all=True)
            raise
        if not wait:
            return logs
        report = file_report(files, logs)
        report.attrs = {"logs": logs, **logs.attrs}
        return report

    def _import(
        self,
        ds: str,
        files: Mapping[str, bytes | str],
        policies: Mapping[str, str],
        progress: bool,
        wait: bool = True,
    ) -> pd.DataFrame:
        data = {n: (v.encode() if isinstance(v, str) else bytes(v)) for n, v in files.items()}
        if len(data) > MAX_SESSION_FILES:
            raise ValueError(f"{len(data)} files: a Vi import session takes at most {MAX_SESSION_FILES}")
        body = {"spec": {"uploadBefore": int((time.time() + 55 * 60) * 1000), "failurePolicies": dict(policies),
                         "source": "UploadedIndividualFiles"}, "metadata": {"attributes": {}}}  # fmt: skip
        session = self._api.post(self._path(ds, "/annotationImportSessions"), json=body)
        sid = str(field(session, "annotationImportSessionId", "import session"))
        listed = {n: {"sizeBytes": len(d), "crc32c": crc32c_b64(d), "kind": "Unknown"} for n, d in data.items()}
        answer = self._api.post(self._path(ds, f"/annotationImportSessions/{sid}/files"), json={"files": listed})
        targets = field(answer, "files", "file registration")
        missing = sorted(set(data) - set(targets or {}))
        if missing:
            raise MalformedResponse(f"Vi gave no upload URL for {missing[:5]}")
        status_url = self._path(ds, f"/annotationImportSessions/{sid}/status")
        bar = progress_bar(len(data), "uploading", progress, "file")
        try:
            for name, content in data.items():
                put_signed(self._files, "Vi", name, content, targets[name])
                bar.update(1)
        except BaseException:
            failed = {"condition": "FilesInserted", "status": "FailedReach", "reason": "UserUploadErrored",
                      "lastTransitionTime": int(time.time() * 1000)}  # fmt: skip
            with contextlib.suppress(BackendError):
                self._api.json("PATCH", status_url, json={"status": {"conditions": [failed]}})
            raise
        finally:
            bar.close()
        done = {"condition": "FilesInserted", "status": "Reached", "lastTransitionTime": int(time.time() * 1000)}
        self._api.json("PATCH", status_url, json={"status": {"conditions": [done]}})
        if not wait:
            logs = _logs_frame([])
            logs.attrs["session"] = sid
            return logs
        return self.wait_import(sid, ds, progress)

    def wait_import(self, session: str, dataset: str, progress: bool = True) -> pd.DataFrame:
        """Poll an import session until every condition is Reached; its log as a frame (`ImportRejected` if not)."""
        ds = self._ds(dataset)
        url = self._path(ds, f"/annotationImportSessions/{session}")
        late = (f"Vi import session {session} not done after {self.poll_timeout:g}s; "
                f"wait_import({session!r}, ...) to wait longer")  # fmt: skip
        status, states = self._poll_conditions(url, "import session", progress, ("importing", "session"), late)
        logs = self.import_logs(session, ds)
        logs.attrs["session"] = session
        logs.attrs["status"] = status
        if "FailedReach" in states:
            shown = "\n".join(f"  [{r['level']}] {r['file']}:{r['line']}: {r['message']}"
                              for r in logs.head(10).to_dict("records"))  # fmt: skip
            raise ImportRejected(f"Vi import session {session} was rejected ({len(logs)} log line(s), in .logs):\n"
                                 f"{shown}", logs)  # fmt: skip
        return logs

    def import_logs(self, session: str, dataset: str) -> pd.DataFrame:
        answer = self._api.get(self._path(self._ds(dataset), f"/annotationImportSessions/{session}/logs"))
        return _logs_frame(field(answer, "items", "import session log"))

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self,
        format: str,
        dest: Any,
        dataset: str,
        images: bool = False,
        split_ratio: float | None = None,
        normalized: bool = True,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Export the dataset's annotations in a Vi ``format`` and extract them under ``dest``; one row per file.

        The format is checked against the dataset's type before any export is made (a VQA dataset exports
        ``ViJsonl`` or ``ViTfrecord`` only). The archive is fetched with a HEAD and Range requests, then extracted
        only when every member stays inside ``dest`` and none is a link. `read_export` reads the returned frame
        back (`READERS` names the reader of each format; ``ViTfrecord`` is downloaded, not parsed).
        """
        ds = self._ds(dataset)
        fmt = _FORMAT_ALIASES.get(format.lower().replace("-", "_"), format)
        kind = self.dataset_type(ds)
        allowed = EXPORT_FORMATS.get(kind, ())
        if fmt not in allowed:
            raise ValueError(f"a {kind} dataset on Vi exports {list(allowed)}, not {format!r}")
        if images:
            raise ValueError("Vi annotation exports carry no images; use conn.backend.image_path per asset")
        body = {"spec": {"format": fmt, "options": {"normalized": bool(normalized), "splitRatio": split_ratio}}}
        made = self._api.post(self._path(ds, "/datasetExports"), json=body)
        export_id = str(field(made, "datasetExportId", "dataset export"))
        status = self._wait_export(ds, export_id, progress)
        link = (status.get("downloadUrl") or {}).get("url")
        if not link:
            raise MalformedResponse(f"Vi export {export_id} is done but has no downloadUrl: {str(status)[:200]}")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as tmp:
            self._download(str(link), tmp, progress)
            tmp.seek(0)
            written = extract_zip(tmp, dest)
        out = pd.DataFrame({"file": [str(p) for p in written], "bytes": [p.stat().st_size for p in written]})
        out.attrs["format"] = fmt
        out.attrs["reader"] = READERS.get(fmt)
        out.attrs["dest"] = str(dest)
        return out

    def _wait_export(self, ds: str, export_id: str, progress: bool) -> dict[str, Any]:
        url = self._path(ds, f"/datasetExports/{export_id}")
        late = f"Vi export {export_id} not done after {self.poll_timeout:g}s"
        status, states = self._poll_conditions(url, "dataset export", progress, ("exporting", "step"), late)
        if "FailedReach" in states:
            raise BackendError(f"Vi export {export_id} failed: {str(status.get('conditions'))[:300]}")
        return dict(status)

    def _download(self, url: str, out: Any, progress: bool, chunk: int = 8 << 20) -> None:
        """HEAD for the size, then Range GETs (as the SDK downloads), each chunk retried on a cut or a 5xx."""
        head = self._files.head(url)
        size = int(head.headers.get("content-length", "0")) if head.status_code == 200 else 0
        bar = progress_bar(size, "downloading", progress, "B")
        try:
            if not size or head.headers.get("accept-ranges", "") != "bytes":
                response = self._files.get(url)
                if response.status_code != 200:
                    raise BackendError(f"Vi export download: HTTP {response.status_code}")
                out.write(response.content)
                return
            for start in range(0, size, chunk):
                end = min(size, start + chunk) - 1
                for attempt in range(4):
                    try:
                        response = self._files.get(url, headers={"Range": f"bytes={start}-{end}"})
                    except httpx.TransportError as exc:
                        if attempt == 3:
                            raise BackendError(f"Vi export download: {type(exc).__name__}") from exc
                        continue
                    if response.status_code < 500:
                        break
                if response.status_code != 206 or len(response.content) != end - start + 1:
                    raise BackendError(f"Vi export download: HTTP {response.status_code} for bytes {start}-{end}")
                out.write(response.content)
                bar.update(len(response.content))
        finally:
            bar.close()


# -- exports read back, file reports, import logs ----------------------------------------------------------------
#: the split folders of a Vi export, and the split each stands for
SPLITS = {"training": "train", "validation": "validate", "dump": None}


#: the one file a reader of these formats takes from an export's annotations folder
_SINGLE_FILE = {"coco": ".json", "csv_four_corner": ".csv", "csv_width_height": ".csv", "yolo_keras": ".txt"}


def read_export(files: pd.DataFrame, assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """The annotations of an export made by `ViBackend.export`, read with the formats' readers, splits marked.

    A Vi export holds ``training/``, ``validation/`` (or ``dump/``) folders, each with its ``annotations/`` in the
    format asked for; each is read on its own and ``split`` set to train / validate. ``assets`` (the dataset's
    assets table) gives the image sizes that pixel formats without them (YOLO Keras) need. ``ViTfrecord`` has no
    reader.
    """
    from ..connection import read

    reader = files.attrs.get("reader")
    if reader is None:
        raise ValueError(f"no reader for {files.attrs.get('format', 'this')} exports; the files are in .file")
    dest = Path(str(files.attrs["dest"]))
    parts = []
    for folder, split in SPLITS.items():
        root = dest / folder / "annotations"
        if root.is_dir():
            target = root
            if reader in _SINGLE_FILE:
                found = sorted(p for p in root.iterdir() if p.suffix == _SINGLE_FILE[str(reader)]
                               and not p.name.startswith("_classes"))  # fmt: skip
                target = found[0] if found else root
            options: dict[str, Any] = {"assets": assets} if assets is not None and reader == "yolo_keras" else {}
            part = read(target, format=str(reader), dataset=dest.name, **options)
            if split is not None:
                part["split"] = pd.array([split] * len(part), dtype=schema.STR)
            parts.append(part)
    if not parts:
        raise ValueError(f"{dest} holds none of the folders of a Vi export ({', '.join(SPLITS)})")
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def file_report(files: Mapping[str, bytes], logs: pd.DataFrame, rejected_all: bool = False) -> pd.DataFrame:
    """One row per uploaded file: its size, whether it was imported, and what the log says about it."""
    level = logs["level"].astype(str).str.lower()
    rows = []
    for name, data in files.items():
        mine = logs["file"] == name
        errors = logs[mine & level.str.startswith("err")]
        warnings = int((mine & level.str.startswith("warn")).sum())
        rows.append({"file": name, "bytes": len(data), "status": "rejected" if rejected_all or len(errors) else
                     "imported", "errors": len(errors), "warnings": warnings,
                     "first_error": errors["message"].iloc[0] if len(errors) else None})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["file", "bytes", "status", "errors", "warnings", "first_error"])
    return frame.astype({"file": schema.STR, "status": schema.STR, "first_error": schema.STR})


def _rejected_files(logs: pd.DataFrame) -> set[str]:
    errors = logs[logs["level"].astype(str).str.lower().str.startswith("err")]
    return {str(f) for f in errors["file"].dropna()}


def _logs_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for e in items:
        if not isinstance(e, dict):
            continue
        stamp = e.get("timestamp")
        rows.append({"file": e.get("file"), "line": e.get("line"), "level": e.get("level"),
                     "message": e.get("message"),
                     "timestamp": pd.Timestamp(int(stamp), unit="ms", tz="UTC") if stamp else pd.NaT})  # fmt: skip
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    return frame.astype({"file": schema.STR, "line": "Int64", "level": schema.STR, "message": schema.STR})
