"""Datature Nexus import sessions and exports: `NexusTransfer`, the file-moving half of `NexusBackend`.

An import uploads annotation files to import sessions (at most ``session_files`` files a session, several sessions
one after the other) that Nexus reads itself; the answer is an `ImportReport` (a row per file, the sessions' logs
one row per line), and a session that ends ``Errored`` raises `ImportFailed` carrying the report so far. An export
is a polled operation whose zip is downloaded and extracted; the answer is an `ExportResult`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import BackendError, ImportFailed, MalformedResponse
from ._http import ApiClient, SignedUrls
from ._lifecycle import (
    Poll,
    concat_logs,
    fetch_archive,
    log_table,
    move_bar,
    steady,
    upload_registered,
    utc_time,
    wait_for,
    wait_with_bar,
)
from ._remote import ProgressBar, collect_files, crc32c_b64, field, progress_bar
from .nexus_rows import _objects
from .transfer_report import ExportResult, ImportReport, log_counts, reader_of, take_options

__all__ = ["EXPORT_FORMATS", "IMPORT_SUFFIXES", "ImportFailed", "NexusTransfer"]


#: the annotation export formats of the SDK (``api/types.py AnnotationExportFormat``)
EXPORT_FORMATS = (
    "coco", "csv_fourcorner", "csv_widthheight", "csv_vott", "vott", "ibm", "pascal_voc", "yolo_darknet",
    "yolo_keras_pytorch", "createml", "tfrecord", "polygon_tfrecord", "polygon_coco", "polygon_single", "rle_coco",
    "rle_semantic_coco", "box_openai_positional_encoding", "polygon_openai_positional_encoding",
    "csv_classification", "classification_tfrecord", "classification_3d_tfrecord", "keypoints_coco",
    "keypoints_tfrecord", "keypoints_datature_raw", "bitmask_tfrecord", "bitmask_rle_coco",
    "bitmask_rle_semantic_coco", "bitmask_openai_positional_encoding", "nifti_one_hot_segmentation",
    "nifti_class_index_segmentation", "segmentation_3d_tfrecord",
)  # fmt: skip
#: annotebook format names -> the Nexus export format of that name
_EXPORT_ALIASES = {"csv": "csv_fourcorner", "csv_four_corner": "csv_fourcorner", "csv_width_height": "csv_widthheight",
                   "voc": "pascal_voc", "yolo": "yolo_darknet", "yolo_keras": "yolo_keras_pytorch"}  # fmt: skip
#: Nexus's export options (annotebook's names; the wire's are camelCase)
EXPORT_OPTIONS = {"split_ratio": None, "seed": None, "normalized": None, "shuffle": None}
#: the files an import session takes from a folder (the SDK's ``ANNOTATION_FORMAT_EXTENSIONS``)
IMPORT_SUFFIXES = (".json", ".csv", ".xml", ".labels", ".txt", ".nii.gz")
MAX_SESSION_FILES = 1000
LOG_EXTRA = ("timestamp", "session")


class NexusTransfer:
    """Import sessions and exports of a Nexus project; `NexusBackend` supplies the client, paths and poll settings."""

    project: str
    poll_interval: float
    poll_timeout: float
    session_files: int
    _api: ApiClient
    _files: SignedUrls

    if TYPE_CHECKING:  # provided by NexusBackend

        def _path(self, dataset: str, tail: str = "") -> str: ...
        def assets(self, dataset: str) -> pd.DataFrame: ...
        def image_path(self, dataset: str, asset: str) -> str | None: ...

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Upload annotation files to import sessions; Nexus reads them (it detects the format itself).

        ``paths``: files, folders (every ``.json .csv .xml .txt .labels .nii.gz`` under them, as the SDK takes
        them), ``(name, bytes)`` pairs, or a ``{name: bytes}`` mapping. A session takes at most
        ``self.session_files`` (1,000) files, so more are split over several sessions, run one after the other
        under one progress bar. With ``wait=True`` (the default option) each session is polled to its end before
        the next one starts, and the report has every file imported and the sessions' logs; a session that ended
        ``Errored`` raises `ImportFailed` whose report has the files of the sessions before it imported, its own
        rejected (with their log lines) and the later ones skipped. With ``wait=False`` every session is started
        and the report lists the files as pending, the session ids in ``sessions`` (see `wait_import`).
        """
        wait = bool(take_options(options, {"wait": True}, "Nexus import_files")["wait"])
        files = _import_files(paths, format)
        if not files:
            raise ValueError("nothing to import: no annotation files among the paths given")
        names, size = list(files), max(1, int(self.session_files))
        parts = [names[i : i + size] for i in range(0, len(names), size)]
        run = _Run(dataset, files, parts)
        bar = progress_bar(len(names), "importing", progress, "file")
        try:
            for n, part in enumerate(parts):
                step = f"session {n + 1}/{len(parts)}" if len(parts) > 1 else "session"
                try:
                    bar.set_description_str(f"{step}: uploading")
                    run.sessions.append(self._start_session(dataset, {k: files[k] for k in part}, bar, not wait))
                    if not wait:
                        continue
                    bar.set_description_str(f"{step}: importing")
                    done = int(bar.n)
                    overview, log = self._wait_session(run.sessions[-1], dataset, partial(_move_from, bar, done))
                    run.logs.append(log)
                    move_bar(bar, done + len(part))
                except BackendError as exc:
                    if len(parts) == 1:  # nothing landed: the error as it is
                        raise
                    raise run.failed(n, f"failed ({exc})", wait) from exc
                if overview == "Errored":
                    raise run.failed(n, f"ended Errored ({len(log)} log line(s), in .report.logs)", wait)
        finally:
            bar.close()
        return run.report("imported" if wait else "pending")

    def _start_session(self, dataset: str, files: dict[str, bytes], bar: ProgressBar, count: bool) -> str:
        """Create a session, register and upload ``files``, commit it; its id (the bar counts uploads if ``count``)."""
        session = self._api.post(self._path(dataset, "/annotationimportsessions"))
        sid = field(session, "id", "import session")
        listed = [{"filename": n, "size": len(d), "crc32c": crc32c_b64(d)} for n, d in files.items()]
        answer = self._api.post(self._path(dataset, f"/annotationimportsessions/{sid}/files"), json={"files": listed})
        registered = _objects(field(answer, "files", "file registration"), "a file registration", "filename")
        uploads = {str(f["filename"]): f.get("upload") or {} for f in registered}
        url = self._path(dataset, f"/annotationimportsessions/{sid}")

        def mark(condition: str, status: str) -> None:
            conditions = [{"condition": condition, "status": status}]
            self._api.json("PATCH", url, json={"status": {"conditions": conditions}})

        upload_registered(self._files, files, uploads, bar=bar if count else None,
                          abandon=lambda: mark("FilesProcessed", "FailedReach"),
                          commit=lambda: mark("FilesInserted", "Reached"))  # fmt: skip
        return str(sid)

    def wait_import(
        self, session: str | ImportReport, dataset: str | None = None, progress: bool = True
    ) -> ImportReport:
        """Poll the sessions of an import started with ``wait=False`` to their end; the finished report.

        ``session`` is the pending report (its files get their statuses) or one session's id (the report then
        lists the files its log names). A session that ended Errored raises `ImportFailed` with the report.
        """
        pending = session if isinstance(session, ImportReport) else None
        sessions = list(pending.sessions) if pending is not None else [str(session)]
        dataset = dataset or (pending.dataset if pending is not None else self.project)
        bar = progress_bar(0, "importing", progress, "file")
        outcomes: dict[str, str] = {}
        logs: list[pd.DataFrame] = []
        try:
            for sid in sessions:
                outcomes[sid], log = self._wait_session(sid, dataset, lambda done, total: move_bar(bar, done, total))
                logs.append(log)
        finally:
            bar.close()
        log = concat_logs(logs, LOG_EXTRA)
        rows = _waited_rows(pending, log, outcomes)
        report = ImportReport.of("nexus", dataset, rows, log, sessions)
        errored = [sid for sid, overview in outcomes.items() if overview == "Errored"]
        if errored:
            raise _errored(errored[0], report)
        return report

    def _wait_session(self, session: str, dataset: str, show: Callable[[int, int], None]) -> tuple[str, pd.DataFrame]:
        """Poll a session until it ends; its overview (Finished / Errored) and log. ``show(done, total)`` per poll."""
        url = self._path(dataset, f"/annotationimportsessions/{session}")
        poll = wait_for(
            lambda: _session_poll(field(self._api.get(url), "status", "import session")),
            timeout=self.poll_timeout,
            delay=steady(self.poll_interval),
            late=lambda last: (
                f"Nexus import session {session} still {last.status.get('overview')} after "
                f"{self.poll_timeout:g}s; wait_import({session!r}) to wait longer"
            ),
            show=show,
        )
        return str(poll.status.get("overview")), self.import_logs(session, dataset)

    def import_logs(self, session: str, dataset: str | None = None) -> pd.DataFrame:
        """The log of an import session: one row per line, with the file and line it names when it names one."""
        answer = self._api.get(self._path(dataset or self.project, f"/annotationimportsessions/{session}/logs"))
        return log_table(field(answer, "logs", "import session log"), lambda e: _log_row(e, session), LOG_EXTRA)

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """Export the project in a Nexus ``format`` and extract the archive under ``dest``; what was written.

        Options are Nexus's: ``split_ratio`` (the share of assets in the validation split), ``seed``, ``normalized``
        and ``shuffle``. The operation is polled with a progress bar, the zip downloaded (a cut download starts
        again: the URL is signed for the one method Nexus names, so no HEAD asks for ranges) and extracted only when
        every member stays inside ``dest`` and none is a link (`UnsafeArchive` otherwise, before anything is
        written). ``images=True`` also places each asset's image under ``dest/images/``.
        """
        opts = take_options(options, EXPORT_OPTIONS, "Nexus export")
        fmt = _EXPORT_ALIASES.get(format.lower().replace("-", "_"), format.lower().replace("-", "_"))
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Nexus has no export format {format!r}; it has {list(EXPORT_FORMATS)}")
        wire = {"splitRatio": opts["split_ratio"], "seed": opts["seed"], "normalized": opts["normalized"],
                "shuffle": opts["shuffle"]}  # fmt: skip
        body = {"format": fmt, "options": {k: v for k, v in wire.items() if v is not None}}
        op = str(field(self._api.post(self._path(dataset, "/annotationexports"), json=body), "id", "export operation"))
        self._wait_operation(dataset, op, progress)
        answer = self._api.get(self._path(dataset, f"/annotationexports/{op}"))
        download = answer.get("download") if isinstance(answer, dict) else None
        if not isinstance(download, dict) or not download.get("url"):
            raise MalformedResponse(f"Nexus export {op} finished without a download: {str(answer)[:200]}")
        dest = Path(dest)
        method = str(download.get("method") or "GET")
        written = fetch_archive(self._files, str(download["url"]), dest, f"export {op} download", method=method)
        if images:
            written += self._export_images(dataset, dest)
        return ExportResult.of("nexus", dataset, fmt, dest, written, reader_of(fmt), op)

    def _wait_operation(self, dataset: str, op: str, progress: bool) -> None:
        """Poll an export operation to its end; `BackendError` when it errored or was cancelled."""
        url = self._path(dataset, f"/operations/{op}")
        poll = wait_with_bar(
            lambda: _operation_poll(field(self._api.get(url), "status", "operation")),
            ("exporting", "op"),
            progress,
            timeout=self.poll_timeout,
            delay=steady(self.poll_interval),
            late=lambda last: f"Nexus export {op} still {last.status.get('overview')} after {self.poll_timeout:g}s",
        )
        if poll.failed:
            overview = str(poll.status.get("overview")).lower()
            raise BackendError(f"Nexus export {op} {overview}: {poll.status.get('message')}")

    def _export_images(self, dataset: str, dest: Path) -> list[Path]:
        out = []
        for r in self.assets(dataset).to_dict("records"):
            source = self.image_path(dataset, str(r["asset"]))
            if source is None:
                continue
            target = dest / "images" / Path(str(r["name"] or Path(source).name)).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            out.append(target)
        return out


class _Run:
    """One `import_files` call: its files, their split into sessions, and the sessions and logs so far."""

    def __init__(self, dataset: str, files: dict[str, bytes], parts: list[list[str]]):
        self.dataset, self.files, self.parts = dataset, files, parts
        self.sessions: list[str] = []
        self.logs: list[pd.DataFrame] = []

    def report(self, status: str | Callable[[int], str]) -> ImportReport:
        """The report with every file of part ``i`` at ``status(i)`` (or at ``status``)."""
        log = concat_logs(self.logs, LOG_EXTRA)
        counts = log_counts(log, self.files)
        rows = [
            {"file": name, "status": status if isinstance(status, str) else status(i), **counts[name],
             "bytes": len(self.files[name]), "session": self.sessions[i] if i < len(self.sessions) else None}
            for i, part in enumerate(self.parts) for name in part
        ]  # fmt: skip
        return ImportReport.of("nexus", self.dataset, rows, log, self.sessions)

    def failed(self, n: int, why: str, waited: bool) -> ImportFailed:
        """`ImportFailed` for session ``n`` (0-based): the sessions before it landed, the ones after never started."""
        before = "imported" if waited else "pending"
        report = self.report(lambda i: before if i < n else "rejected" if i == n else "skipped")
        sid = self.sessions[n] if n < len(self.sessions) else None
        if len(self.parts) == 1:
            return _errored(str(sid), report)
        total, landed = len(self.parts), sum(len(p) for p in self.parts[:n])
        message = f"Nexus import session {n + 1} of {total}{f' ({sid})' if sid else ''} {why}; "
        if n:
            done = "landed" if waited else "were started"
            message += f"sessions 1-{n} ({', '.join(self.sessions[:n])}: {landed} files) {done}"
        else:
            message += "no session landed before it"
        if n + 1 < total:
            message += f", sessions {n + 2}-{total} were not started"
        message += f"; {len(self.files) - landed} file(s) not imported (in .report)"
        lines = report.logs[report.logs["session"] == sid].head(10).to_dict("records") if sid else []
        return ImportFailed(message + "".join("\n" + _log_line(r) for r in lines), report)


def _waited_rows(pending: ImportReport | None, log: pd.DataFrame, outcomes: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a waited import: the pending report's files (else the files the log names), each by its session."""
    base: list[dict[str, Any]]
    if pending is not None:
        kept = pending.files.drop(columns=["status", "errors", "warnings", "first_error"])
        base = [{str(k): v for k, v in r.items()} for r in kept.to_dict("records")]
    else:
        only = next(iter(outcomes))
        base = [{"file": f, "session": only} for f in dict.fromkeys(log["file"].dropna().astype(str))]
    counts = log_counts(log, [str(r["file"]) for r in base])
    rows: list[dict[str, Any]] = []
    for r in base:
        overview = outcomes.get(str(r.get("session")), "Finished")
        rows.append({**r, "status": "rejected" if overview == "Errored" else "imported", **counts[str(r["file"])]})
    return rows


def _errored(session: str, report: ImportReport) -> ImportFailed:
    logs = report.logs[report.logs["session"] == session]
    shown = "\n".join(_log_line(r) for r in logs.head(10).to_dict("records"))
    return ImportFailed(f"Nexus import session {session} ended Errored ({len(logs)} log line(s), in .report.logs):\n"
                        f"{shown}", report)  # fmt: skip


def _counted(status: Any, counts_at: str, done: tuple[str, ...], ends: Mapping[str, bool], least: int) -> Poll:
    """One poll of a Nexus job: its ``overview`` ends it when in ``ends`` (failed when that says so), and its
    ``<counts_at>.withStatus`` counts give the bar (``done`` the statuses counted as done; ``least`` the total at
    least)."""
    counts = ((status.get(counts_at) or {}).get("withStatus")) or {}
    total = max(least, sum(int(v) for v in counts.values()))
    overview = status.get("overview")
    return Poll(sum(int(counts.get(k, 0)) for k in done), total, overview in ends, ends.get(overview, False), status)


def _move_from(bar: ProgressBar, start: int, done: int, total: int) -> None:
    """A session's progress on a bar over several sessions: ``start`` files were done before it."""
    move_bar(bar, start + done)


def _session_poll(status: Any) -> Poll:
    return _counted(status, "files", ("Processed", "FailedProcess"), {"Finished": False, "Errored": True}, 0)


def _operation_poll(status: Any) -> Poll:
    ends = {"Finished": False, "Errored": True, "Cancelled": True}
    return _counted(status, "progress", ("Finished", "Errored", "Cancelled"), ends, 1)


def _log_line(r: dict[Any, Any]) -> str:
    where = "" if pd.isna(r["file"]) else str(r["file"]) + ("" if pd.isna(r["line"]) else f":{r['line']}") + ": "
    return f"  [{r['level']}] {where}{r['message']}"


def _import_files(paths: Any, format: str | None) -> dict[str, bytes]:
    """name -> bytes of what an import session uploads; names must be unique (the SDK's rule)."""
    suffixes = _format_suffixes(format)
    return collect_files(paths, lambda f: f.name.lower().endswith(suffixes))


def _format_suffixes(format: str | None) -> tuple[str, ...]:
    if format is None:
        return IMPORT_SUFFIXES
    key = format.lower().replace("-", "_")
    for prefix, suffixes in (("csv", (".csv",)), ("coco", (".json",)), ("yolo", (".txt", ".labels")),
                             ("voc", (".xml",)), ("pascal", (".xml",))):  # fmt: skip
        if key.startswith(prefix):
            return suffixes
    return IMPORT_SUFFIXES


_LOG_WHERE = re.compile(r"^At (?P<file>.+?)(?::(?P<line>\d+))?: ")


def _log_row(entry: Mapping[str, Any], session: str) -> dict[str, Any]:
    """One line of a session's log: ``At a.csv:19: Point ...`` gives file ``a.csv``, line 19."""
    message = str(entry.get("message") or "")
    where = _LOG_WHERE.match(message)
    return {
        "file": where["file"] if where else None,
        "line": int(where["line"]) if where and where["line"] else None,
        "level": entry.get("level"),
        "message": message[where.end():] if where else message,
        "timestamp": utc_time(entry.get("timestamp"), "s"),
        "session": session,
    }  # fmt: skip
