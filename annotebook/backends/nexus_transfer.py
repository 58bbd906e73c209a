"""Datature Nexus import sessions and exports: `NexusTransfer`, the file-moving half of `NexusBackend`.

An import uploads annotation files to import sessions (at most ``session_files`` files a session, several sessions
one after the other) that Nexus reads itself; their logs come back as frames, one row per line, and a session that
ends ``Errored`` raises `ImportFailed`. An export is a polled operation whose zip is downloaded and extracted.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from .. import schema
from ..errors import BackendError
from ._http import ApiClient, MalformedResponse
from ._remote import collect_files, crc32c_b64, extract_zip, field, progress_bar, put_signed
from .nexus_rows import _objects

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
#: the files an import session takes from a folder (the SDK's ``ANNOTATION_FORMAT_EXTENSIONS``)
IMPORT_SUFFIXES = (".json", ".csv", ".xml", ".labels", ".txt", ".nii.gz")
MAX_SESSION_FILES = 1000
LOG_COLUMNS = ["file", "line", "level", "message", "timestamp", "session"]


class ImportFailed(BackendError):
    """An import session ended ``Errored`` (or a later one failed); ``logs`` is the log so far as a frame.

    ``imported`` lists the files of the sessions that landed before it, ``not_imported`` the files of that session
    and of the sessions after it (never started).
    """

    def __init__(
        self, message: str, logs: pd.DataFrame, imported: Sequence[str] = (), not_imported: Sequence[str] = ()
    ):
        super().__init__(message)
        self.logs = logs
        self.imported, self.not_imported = list(imported), list(not_imported)


class NexusTransfer:
    """Import sessions and exports of a Nexus project; `NexusBackend` supplies the client, paths and poll settings."""

    project: str
    poll_interval: float
    poll_timeout: float
    session_files: int
    _api: ApiClient
    _files: httpx.Client

    if TYPE_CHECKING:  # provided by NexusBackend

        def _path(self, dataset: str, tail: str = "") -> str: ...
        def assets(self, dataset: str) -> pd.DataFrame: ...
        def image_path(self, dataset: str, asset: str) -> str | None: ...

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self, paths: Any, dataset: str, format: str | None = None, progress: bool = True, wait: bool = True
    ) -> pd.DataFrame:
        """Upload annotation files to import sessions; Nexus reads them (it detects the format itself).

        ``paths``: files, folders (every ``.json .csv .xml .txt .labels .nii.gz`` under them, as the SDK takes
        them), ``(name, bytes)`` pairs, or a ``{name: bytes}`` mapping. A session takes at most
        ``self.session_files`` (1,000) files, so more are split over several sessions, run one after the other
        under one progress bar. With ``wait`` each session is polled to its end before the next one starts, and
        the logs of all of them are returned, one row per line (file, line, level, message, timestamp, session);
        a session that ended ``Errored`` raises `ImportFailed` with the logs so far, naming the sessions that
        landed before it and the files not imported. Without ``wait`` every session is started and the empty log
        returned at once, the session ids in ``.attrs["sessions"]`` (``.attrs["session"]`` is the first; see
        `wait_import`).
        """
        files = _import_files(paths, format)
        if not files:
            raise ValueError("nothing to import: no annotation files among the paths given")
        names, size = list(files), max(1, int(self.session_files))
        parts = [names[i : i + size] for i in range(0, len(names), size)]
        sessions: list[str] = []
        logs: list[pd.DataFrame] = []
        bar = progress_bar(len(names), "importing", progress, "file")
        try:
            for n, part in enumerate(parts):
                step = f"session {n + 1}/{len(parts)}" if len(parts) > 1 else "session"
                try:
                    _stage(bar, f"{step}: uploading")
                    sessions.append(self._start_session(dataset, {k: files[k] for k in part}, bar, count=not wait))
                    if not wait:
                        continue
                    _stage(bar, f"{step}: importing")
                    done = int(bar.n)
                    overview, log = self._wait_session(sessions[-1], dataset, partial(_move_from, bar, done))
                    logs.append(log)
                    _move(bar, done + len(part))
                except BackendError as exc:
                    if len(parts) == 1:  # nothing landed: the error as it is
                        raise
                    raise _import_failed(f"failed ({exc})", parts, sessions, n, _concat_logs(logs), wait) from exc
                if overview != "Errored":
                    continue
                if len(parts) == 1:
                    raise self._errored(sessions[0], log, part)
                why = f"ended Errored ({len(log)} log line(s), in .logs)"
                raise _import_failed(why, parts, sessions, n, _concat_logs(logs), wait)
        finally:
            bar.close()
        out = _concat_logs(logs)
        out.attrs["session"], out.attrs["sessions"] = sessions[0], sessions
        return out

    def _start_session(self, dataset: str, files: dict[str, bytes], bar: Any, count: bool) -> str:
        """Create a session, register and upload ``files``, commit it; its id (the bar counts uploads if ``count``)."""
        session = self._api.post(self._path(dataset, "/annotationimportsessions"))
        sid = field(session, "id", "import session")
        listed = [{"filename": n, "size": len(d), "crc32c": crc32c_b64(d)} for n, d in files.items()]
        answer = self._api.post(self._path(dataset, f"/annotationimportsessions/{sid}/files"), json={"files": listed})
        registered = _objects(field(answer, "files", "file registration"), "a file registration", "filename")
        uploads = {str(f["filename"]): f.get("upload") or {} for f in registered}
        missing = sorted(set(files) - set(uploads))
        if missing:
            raise MalformedResponse(f"Nexus gave no upload URL for {missing[:5]}")
        try:
            for name, data in files.items():
                put_signed(self._files, "Nexus", name, data, uploads[name])
                if count:
                    bar.update(1)
        except BaseException:
            conditions = [{"condition": "FilesProcessed", "status": "FailedReach"}]
            with contextlib.suppress(BackendError):
                self._api.json("PATCH", self._path(dataset, f"/annotationimportsessions/{sid}"),
                               json={"status": {"conditions": conditions}})  # fmt: skip
            raise
        conditions = [{"condition": "FilesInserted", "status": "Reached"}]
        self._api.json("PATCH", self._path(dataset, f"/annotationimportsessions/{sid}"),
                       json={"status": {"conditions": conditions}})  # fmt: skip
        return str(sid)

    def wait_import(self, session: str, dataset: str | None = None, progress: bool = True) -> pd.DataFrame:
        """Poll an import session to its end; its log as a frame, or `ImportFailed` when it ended Errored."""
        dataset = dataset or self.project
        bar = progress_bar(0, "importing", progress, "file")

        def show(done: int, total: int) -> None:
            bar.total = total
            _move(bar, done)

        try:
            overview, logs = self._wait_session(session, dataset, show)
        finally:
            bar.close()
        logs.attrs["session"], logs.attrs["sessions"] = session, [session]
        if overview == "Errored":
            raise self._errored(session, logs)
        return logs

    @staticmethod
    def _errored(session: str, logs: pd.DataFrame, files: Sequence[str] = ()) -> ImportFailed:
        shown = "\n".join(_log_line(r) for r in logs.head(10).to_dict("records"))
        return ImportFailed(f"Nexus import session {session} ended Errored ({len(logs)} log line(s), in .logs):\n"
                            f"{shown}", logs, not_imported=files)  # fmt: skip

    def _wait_session(self, session: str, dataset: str, show: Callable[[int, int], None]) -> tuple[str, pd.DataFrame]:
        """Poll a session until it ends; its overview (Finished / Errored) and log. ``show(done, total)`` per poll."""
        url = self._path(dataset, f"/annotationimportsessions/{session}")
        deadline = time.monotonic() + self.poll_timeout
        while True:
            status = field(self._api.get(url), "status", "import session")
            counts = ((status.get("files") or {}).get("withStatus")) or {}
            total = sum(int(v) for v in counts.values())
            show(int(counts.get("Processed", 0)) + int(counts.get("FailedProcess", 0)), total)
            if status.get("overview") in ("Finished", "Errored"):
                break
            if time.monotonic() > deadline:
                raise BackendError(f"Nexus import session {session} still {status.get('overview')} after "
                                   f"{self.poll_timeout:g}s; wait_import({session!r}) to wait longer")  # fmt: skip
            time.sleep(self.poll_interval)
        return str(status.get("overview")), self.import_logs(session, dataset)

    def import_logs(self, session: str, dataset: str | None = None) -> pd.DataFrame:
        """The log of an import session: one row per line, with the file and line it names when it names one."""
        answer = self._api.get(self._path(dataset or self.project, f"/annotationimportsessions/{session}/logs"))
        return _logs_frame(field(answer, "logs", "import session log"), session)

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self,
        format: str,
        dest: Any,
        dataset: str,
        images: bool = False,
        split_ratio: float | None = None,
        seed: int | None = None,
        normalized: bool | None = None,
        shuffle: bool | None = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Export the project in a Nexus ``format`` and extract the archive under ``dest``; one row per file.

        ``split_ratio`` (the share of assets in the validation split), ``seed``, ``normalized`` and ``shuffle`` are
        Nexus's export options. The operation is polled with a progress bar, the zip downloaded and extracted
        only when every member stays inside ``dest`` and none is a link (`UnsafeArchive` otherwise, before
        anything is written). ``images=True`` also places each asset's image under ``dest/images/``.
        """
        fmt = _EXPORT_ALIASES.get(format.lower().replace("-", "_"), format.lower().replace("-", "_"))
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Nexus has no export format {format!r}; it has {list(EXPORT_FORMATS)}")
        options = {"splitRatio": split_ratio, "seed": seed, "normalized": normalized, "shuffle": shuffle}
        body = {"format": fmt, "options": {k: v for k, v in options.items() if v is not None}}
        op = field(self._api.post(self._path(dataset, "/annotationexports"), json=body), "id", "export operation")
        self._wait_operation(dataset, str(op), progress)
        answer = self._api.get(self._path(dataset, f"/annotationexports/{op}"))
        download = answer.get("download") if isinstance(answer, dict) else None
        if not isinstance(download, dict) or not download.get("url"):
            raise MalformedResponse(f"Nexus export {op} finished without a download: {str(answer)[:200]}")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as tmp:
            with self._files.stream(str(download.get("method") or "GET"), str(download["url"])) as response:
                if response.status_code != 200:
                    raise BackendError(f"Nexus export {op}: HTTP {response.status_code} from its download URL")
                for chunk in response.iter_bytes():
                    tmp.write(chunk)
            tmp.seek(0)
            written = extract_zip(tmp, dest)
        if images:
            written += self._export_images(dataset, dest)
        return pd.DataFrame({"file": [str(p) for p in written], "bytes": [p.stat().st_size for p in written]})

    def _wait_operation(self, dataset: str, op: str, progress: bool) -> None:
        deadline = time.monotonic() + self.poll_timeout
        bar = progress_bar(1, "exporting", progress, "op")
        try:
            while True:
                status = field(self._api.get(self._path(dataset, f"/operations/{op}")), "status", "operation")
                counts = ((status.get("progress") or {}).get("withStatus")) or {}
                total = sum(int(v) for v in counts.values()) or 1
                bar.total = total
                bar.n = sum(int(counts.get(k, 0)) for k in ("Finished", "Errored", "Cancelled"))
                bar.refresh()
                overview = status.get("overview")
                if overview == "Finished":
                    return
                if overview in ("Errored", "Cancelled"):
                    raise BackendError(f"Nexus export {op} {overview.lower()}: {status.get('message')}")
                if time.monotonic() > deadline:
                    raise BackendError(f"Nexus export {op} still {overview} after {self.poll_timeout:g}s")
                time.sleep(self.poll_interval)
        finally:
            bar.close()

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


def _stage(bar: Any, text: str) -> None:
    """Name the stage a bar is at (a silent bar has no description)."""
    describe = getattr(bar, "set_description_str", None)
    if describe is not None:
        describe(text)


def _move(bar: Any, n: int) -> None:
    if n != bar.n:
        bar.n = n
        bar.refresh()


def _move_from(bar: Any, start: int, done: int, total: int) -> None:
    """A session's progress on a bar over several sessions: ``start`` files were done before it."""
    _move(bar, start + done)


def _import_failed(
    why: str, parts: list[list[str]], sessions: list[str], failed: int, logs: pd.DataFrame, waited: bool
) -> ImportFailed:
    """`ImportFailed` for session ``failed`` (0-based) of ``parts``: which sessions landed before it, which did not."""
    n, sid = len(parts), sessions[failed] if failed < len(sessions) else None
    imported = [f for part in parts[:failed] for f in part]
    not_imported = [f for part in parts[failed:] for f in part]
    message = f"Nexus import session {failed + 1} of {n}{f' ({sid})' if sid else ''} {why}; "
    if failed:
        landed = "landed" if waited else "were started"
        message += f"sessions 1-{failed} ({', '.join(sessions[:failed])}: {len(imported)} files) {landed}"
    else:
        message += "no session landed before it"
    if failed + 1 < n:
        message += f", sessions {failed + 2}-{n} were not started"
    message += f"; {len(not_imported)} file(s) not imported (in .not_imported)"
    lines = logs[logs["session"] == sid].head(10).to_dict("records") if sid else []
    shown = "".join("\n" + _log_line(r) for r in lines)
    return ImportFailed(message + shown, logs, imported, not_imported)


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


def _concat_logs(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The logs of several sessions as one frame (an empty log when none has a line)."""
    kept = [f for f in frames if len(f)]
    return pd.concat(kept, ignore_index=True) if kept else _logs_frame([], None)


def _logs_frame(logs: list[dict[str, Any]], session: str | None) -> pd.DataFrame:
    """An import session's log lines as a frame: ``At a.csv:19: Point ...`` gives file ``a.csv``, line 19."""
    rows = []
    for entry in logs:
        message = str(entry.get("message") or "")
        stamp = entry.get("timestamp")
        where = _LOG_WHERE.match(message)
        rows.append({
            "file": where["file"] if where else None,
            "line": int(where["line"]) if where and where["line"] else None,
            "level": entry.get("level"),
            "message": message[where.end():] if where else message,
            "timestamp": pd.Timestamp(float(stamp), unit="s", tz="UTC") if stamp else pd.NaT,
            "session": session,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    strings = {"file": schema.STR, "level": schema.STR, "message": schema.STR, "session": schema.STR}
    return frame.astype({**strings, "line": "Int64"})
