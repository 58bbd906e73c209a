"""Datature Vi import sessions and exports: `ViTransfer`, the file-moving half of `ViBackend`, and reading them back.

An import uploads Vi JSONL files to one import session with explicit failure policies; the answer is an
`ImportReport` with a row per file from the session's log, and a session that ends FailedReach raises
`ImportRejected` carrying the report. An export is checked against the dataset's type, polled, fetched by Range
requests and extracted; the answer is an `ExportResult` that `read_export` reads back with the format's reader.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import schema
from ..errors import BackendError, ImportRejected, MalformedResponse, NotSupported
from ..formats import load
from ._http import ApiClient, SignedUrls
from ._lifecycle import Poll, fetch_archive, log_table, quick_first, upload_registered, utc_time, wait_with_bar
from ._remote import collect_files, crc32c_b64, field, progress_bar
from .transfer_report import ExportResult, ImportReport, log_counts, take_options

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
#: Vi's import options (annotebook's names) and their defaults: the failure policies are always sent explicitly
IMPORT_OPTIONS = {"wait": True, "on_bad_annotation": "RejectFile", "on_bad_file": "RejectFile",
                  "on_overwritten": "Warn"}  # fmt: skip
EXPORT_OPTIONS = {"split_ratio": None, "normalized": True}
MAX_SESSION_FILES = 1000
LOG_EXTRA = ("timestamp",)


class ViTransfer:
    """Import sessions and exports of a Vi organization's datasets; `ViBackend` supplies the client and addressing."""

    poll_interval: float
    poll_timeout: float
    _api: ApiClient
    _files: SignedUrls

    if TYPE_CHECKING:  # provided by ViBackend

        def _ds(self, dataset: str) -> str: ...
        def _path(self, dataset: str | None = None, tail: str = "") -> str: ...
        def dataset_type(self, dataset: str) -> str: ...

    def _poll_conditions(self, url: str, what: str, progress: bool, bar: tuple[str, str], late: str) -> Poll:
        """Poll ``url`` until a condition is FailedReach (the poll failed) or every one Reached; the last poll.

        ``bar`` is the description and unit of the progress bar (conditions Reached); the first polls come quickly
        (small imports end in a second), then every ``poll_interval``; after ``poll_timeout`` seconds `BackendError`
        with the message ``late``.
        """
        return wait_with_bar(
            lambda: _conditions(field(self._api.get(url), "status", what)),
            bar,
            progress,
            timeout=self.poll_timeout,
            delay=quick_first(self.poll_interval),
            late=lambda _: late,
        )

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Upload Vi JSONL files (``.jsonl``/``.json`` files, folders of them, ``(name, bytes)`` pairs or a mapping).

        Options: the failure policies (``on_bad_annotation``, ``on_bad_file``, ``on_overwritten``: ``Warn``,
        ``RejectFile`` or ``RejectSession``), always sent explicitly: ``on_overwritten`` decides what happens to an
        asset that already has annotations (``Warn``: the file's rows replace them); and ``wait`` (default True):
        the session is polled to its end and the report has a row per file (imported / rejected, counts of error
        and warning lines, the first error) and the session's whole log; a session that ended FailedReach raises
        `ImportRejected` carrying that report. With ``wait=False`` the report lists the files as pending, the
        session in ``sessions`` (see `wait_import`).
        """
        opts = take_options(options, IMPORT_OPTIONS, "Vi import_files")
        if format is not None and _FORMAT_ALIASES.get(format.lower(), format) != "ViJsonl":
            raise ValueError(f"Vi imports Vi JSONL only, not {format!r}")
        files = collect_files(paths, lambda f: f.suffix.lower() in (".jsonl", ".json"))
        if not files:
            raise ValueError("nothing to import: no .jsonl / .json files among the paths given")
        policies = {"onBadAnnotation": opts["on_bad_annotation"], "onBadFile": opts["on_bad_file"],
                    "onOverwritten": opts["on_overwritten"]}  # fmt: skip
        for name, value in policies.items():
            if value not in POLICIES:
                raise ValueError(f"{name} must be one of {POLICIES}, not {value!r}")
        ds = self._ds(dataset)
        sid = self._send_session(ds, _as_bytes(files), policies, progress)
        if not opts["wait"]:
            rows = [{"file": n, "status": "pending", "bytes": len(d)} for n, d in files.items()]
            return ImportReport.of("vi", ds, rows, sessions=[sid])
        return self._finish_session(sid, ds, files, progress)

    def _import(
        self,
        ds: str,
        files: Mapping[str, bytes | str],
        policies: Mapping[str, str],
        progress: bool,
        before_commit: Callable[[], None] | None = None,
    ) -> pd.DataFrame:
        """Send ``files`` in one session and wait for it; its log (a push reads which files were rejected).

        ``before_commit`` runs after the uploads, right before the request that lets Vi import them (the sync
        engine's last re-check); when it raises, the session is marked failed and nothing is imported.
        """
        data = _as_bytes(files)
        sid = self._send_session(ds, data, policies, progress, before_commit)
        return self._finish_session(sid, ds, data, progress).logs

    def _send_session(
        self,
        ds: str,
        data: Mapping[str, bytes],
        policies: Mapping[str, str],
        progress: bool,
        before_commit: Callable[[], None] | None = None,
    ) -> str:
        """Open a session, register and upload ``data``, mark its files inserted; the session's id."""
        if len(data) > MAX_SESSION_FILES:
            raise ValueError(f"{len(data)} files: a Vi import session takes at most {MAX_SESSION_FILES}")
        body = {"spec": {"uploadBefore": int((time.time() + 55 * 60) * 1000), "failurePolicies": dict(policies),
                         "source": "UploadedIndividualFiles"}, "metadata": {"attributes": {}}}  # fmt: skip
        session = self._api.post(self._path(ds, "/annotationImportSessions"), json=body)
        sid = str(field(session, "annotationImportSessionId", "import session"))
        listed = {n: {"sizeBytes": len(d), "crc32c": crc32c_b64(d), "kind": "Unknown"} for n, d in data.items()}
        answer = self._api.post(self._path(ds, f"/annotationImportSessions/{sid}/files"), json={"files": listed})
        targets = field(answer, "files", "file registration")
        status_url = self._path(ds, f"/annotationImportSessions/{sid}/status")

        def inserted(status: str, **reason: str) -> None:
            condition = {"condition": "FilesInserted", "status": status, **reason,
                         "lastTransitionTime": int(time.time() * 1000)}  # fmt: skip
            self._api.json("PATCH", status_url, json={"status": {"conditions": [condition]}})

        bar = progress_bar(len(data), "uploading", progress, "file")
        try:
            upload_registered(self._files, data, targets, bar=bar, before_commit=before_commit,
                              abandon=lambda: inserted("FailedReach", reason="UserUploadErrored"),
                              commit=lambda: inserted("Reached"))  # fmt: skip
        finally:
            bar.close()
        return sid

    def _finish_session(self, sid: str, ds: str, files: Mapping[str, Any], progress: bool) -> ImportReport:
        """Poll session ``sid`` to its end; the report of ``files`` (`ImportRejected` when it ended FailedReach)."""
        url = self._path(ds, f"/annotationImportSessions/{sid}")
        late = (f"Vi import session {sid} not done after {self.poll_timeout:g}s; "
                f"wait_import({sid!r}, ...) to wait longer")  # fmt: skip
        rejected = self._poll_conditions(url, "import session", progress, ("importing", "session"), late).failed
        logs = self.import_logs(sid, ds)
        report = ImportReport.of("vi", ds, file_report(files, logs, rejected_all=rejected), logs, [sid])
        if rejected:
            shown = "\n".join(f"  [{r['level']}] {r['file']}:{r['line']}: {r['message']}"
                              for r in logs.head(10).to_dict("records"))  # fmt: skip
            raise ImportRejected(f"Vi import session {sid} was rejected ({len(logs)} log line(s), in .report.logs):\n"
                                 f"{shown}", report)  # fmt: skip
        return report

    def wait_import(
        self, session: str | ImportReport, dataset: str | None = None, progress: bool = True
    ) -> ImportReport:
        """Poll an import started with ``wait=False`` to its end; the finished report (`ImportRejected` if refused).

        ``session`` is the pending report (its files get their statuses) or a session id with its ``dataset`` (the
        report then lists the files the log names).
        """
        if isinstance(session, ImportReport):
            sizes = dict(zip(session.files["file"].astype(str), session.files["bytes"], strict=True))
            return self._finish_session(session.sessions[0], self._ds(dataset or session.dataset), sizes, progress)
        if dataset is None:
            raise ValueError("wait_import(session_id, dataset): name the dataset, or pass the pending report")
        ds = self._ds(dataset)
        named = dict.fromkeys(self.import_logs(session, ds)["file"].dropna().astype(str), b"")
        return self._finish_session(session, ds, named, progress)

    def import_logs(self, session: str, dataset: str) -> pd.DataFrame:
        answer = self._api.get(self._path(self._ds(dataset), f"/annotationImportSessions/{session}/logs"))
        return log_table(field(answer, "items", "import session log"), _log_row, LOG_EXTRA)

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """Export the dataset's annotations in a Vi ``format`` and extract them under ``dest``; what was written.

        Options are Vi's: ``split_ratio`` and ``normalized`` (default True). The format is checked against the
        dataset's type before any export is made (a VQA dataset exports ``ViJsonl`` or ``ViTfrecord`` only). The
        archive is fetched with a HEAD and Range requests, then extracted only when every member stays inside
        ``dest`` and none is a link. `read_export` reads the result back (``reader`` names the annotebook format
        of the files; ``ViTfrecord`` has none). Vi's annotation exports carry no images: ``images=True`` is
        `NotSupported`.
        """
        opts = take_options(options, EXPORT_OPTIONS, "Vi export")
        if images:
            raise NotSupported("Vi annotation exports carry no images; use conn.backend.image_path per asset")
        ds = self._ds(dataset)
        fmt = _FORMAT_ALIASES.get(format.lower().replace("-", "_"), format)
        kind = self.dataset_type(ds)
        allowed = EXPORT_FORMATS.get(kind, ())
        if fmt not in allowed:
            raise ValueError(f"a {kind} dataset on Vi exports {list(allowed)}, not {format!r}")
        spec = {"format": fmt, "options": {"normalized": bool(opts["normalized"]), "splitRatio": opts["split_ratio"]}}
        made = self._api.post(self._path(ds, "/datasetExports"), json={"spec": spec})
        export_id = str(field(made, "datasetExportId", "dataset export"))
        status = self._wait_export(ds, export_id, progress)
        link = (status.get("downloadUrl") or {}).get("url")
        if not link:
            raise MalformedResponse(f"Vi export {export_id} is done but has no downloadUrl: {str(status)[:200]}")
        dest = Path(dest)
        written = fetch_archive(self._files, str(link), dest, "export download", ranges=True, progress=progress)
        return ExportResult.of("vi", ds, fmt, dest, written, READERS.get(fmt), export_id)

    def _wait_export(self, ds: str, export_id: str, progress: bool) -> dict[str, Any]:
        url = self._path(ds, f"/datasetExports/{export_id}")
        late = f"Vi export {export_id} not done after {self.poll_timeout:g}s"
        poll = self._poll_conditions(url, "dataset export", progress, ("exporting", "step"), late)
        if poll.failed:
            raise BackendError(f"Vi export {export_id} failed: {str(poll.status.get('conditions'))[:300]}")
        return dict(poll.status)


# -- exports read back, file reports, import logs ----------------------------------------------------------------
#: the split folders of a Vi export, and the split each stands for
SPLITS = {"training": "train", "validation": "validate", "dump": None}


#: the one file a reader of these formats takes from an export's annotations folder
_SINGLE_FILE = {"coco": ".json", "csv_four_corner": ".csv", "csv_width_height": ".csv", "yolo_keras": ".txt"}


def read_export(result: ExportResult, assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """The annotations of an export made by `ViBackend.export`, read with the formats' readers, splits marked.

    A Vi export holds ``training/``, ``validation/`` (or ``dump/``) folders, each with its ``annotations/`` in the
    format asked for; each is read on its own and ``split`` set to train / validate. ``assets`` (the dataset's
    assets table) gives the image sizes that pixel formats without them (YOLO Keras) need. ``ViTfrecord`` has no
    reader. The frame is read from files, not loaded: it has no load token, like a frame built by hand.
    """
    reader = result.reader
    if reader is None:
        raise ValueError(f"no reader for {result.format} exports; the files are in .files")
    parts = []
    for folder, split in SPLITS.items():
        root = result.dest / folder / "annotations"
        if root.is_dir():
            target = root
            if reader in _SINGLE_FILE:
                found = sorted(p for p in root.iterdir() if p.suffix == _SINGLE_FILE[reader]
                               and not p.name.startswith("_classes"))  # fmt: skip
                target = found[0] if found else root
            options: dict[str, Any] = {"assets": assets} if assets is not None and reader == "yolo_keras" else {}
            part = load(target, reader, **options).annotations
            part["dataset"] = pd.array([result.dest.name] * len(part), dtype=schema.STR)
            if split is not None:
                part["split"] = pd.array([split] * len(part), dtype=schema.STR)
            parts.append(part)
    if not parts:
        raise ValueError(f"{result.dest} holds none of the folders of a Vi export ({', '.join(SPLITS)})")
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def file_report(files: Mapping[str, Any], logs: pd.DataFrame, rejected_all: bool = False) -> list[dict[str, Any]]:
    """One row per uploaded file (``files``: name -> its bytes or its size): imported or rejected, and what the log
    says about it (a file with an error line was rejected; with ``rejected_all`` the whole session was)."""
    counts = log_counts(logs, files)
    return [
        {"file": name, "status": "rejected" if rejected_all or counts[name]["errors"] else "imported",
         **counts[name], "bytes": data if isinstance(data, int) else len(data)}
        for name, data in files.items()
    ]  # fmt: skip


def _as_bytes(files: Mapping[str, bytes | str]) -> dict[str, bytes]:
    return {n: (v.encode() if isinstance(v, str) else bytes(v)) for n, v in files.items()}


def _rejected_files(logs: pd.DataFrame) -> set[str]:
    errors = logs[logs["level"].astype(str).str.lower().str.startswith("err")]
    return {str(f) for f in errors["file"].dropna()}


def _conditions(status: Any) -> Poll:
    """One poll of a Vi session or export: done when a condition is FailedReach (failed) or every one Reached."""
    states = [c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)]
    failed = "FailedReach" in states
    finished = failed or (bool(states) and all(s == "Reached" for s in states))
    return Poll(states.count("Reached"), max(1, len(states)), finished, failed, status)


def _log_row(e: Mapping[str, Any]) -> dict[str, Any]:
    return {"file": e.get("file"), "line": e.get("line"), "level": e.get("level"), "message": e.get("message"),
            "timestamp": utc_time(e.get("timestamp"), "ms")}  # fmt: skip
