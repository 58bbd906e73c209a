"""Label Studio imports (tasks with predictions, images) and snapshot exports, for `LabelStudioBackend`.

Import: ``POST /api/projects/{id}/import`` takes a JSON list of tasks (``data``, and ``predictions`` /
``annotations`` inline) or image files (multipart, one form field per file); it is synchronous on a server without
a job queue and answers with the counts it made. A tasks file in another annotebook format (COCO, YOLO, ...) is
read and written as Label Studio tasks first, through the one Label Studio mapping.

Export: a snapshot (``POST /api/projects/{id}/exports/``) polled until ``completed``; for other formats than JSON
it is converted (``POST .../convert``, polled through ``converted_formats``) and then downloaded
(``GET .../download?exportType=``) under a progress bar; a zip is extracted safely. ``ExportResult.reader`` names
the annotebook format that reads it back.
"""

from __future__ import annotations

import json
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, MalformedResponse
from ._lifecycle import Poll, quick_first, wait_with_bar
from ._remote import extract_zip, progress_bar
from .transfer_report import ExportResult, ImportReport, take_options

if TYPE_CHECKING:
    from ._http import ApiClient

__all__ = ["EXPORT_FORMATS", "READERS", "LabelStudioTransfer"]

#: the snapshot formats of Label Studio community, and the annotebook format that reads each back
READERS: dict[str, str | None] = {
    "JSON": "labelstudio",
    "JSON_MIN": None,
    "CSV": None,
    "TSV": None,
    "COCO": "coco",
    "COCO_WITH_IMAGES": "coco",
    "YOLO": "yolo",
    "YOLO_WITH_IMAGES": "yolo",
    "VOC": "voc",
}
EXPORT_FORMATS = tuple(READERS)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class LabelStudioTransfer:
    """Imports and exports; the backend gives the client (``_api``) and the server's address."""

    _api: ApiClient
    _auth: dict[str, str]  # the key's header, sent to this server only
    base_url: str
    name: str

    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Import task files (Label Studio JSON with ``predictions``, or any annotebook format) and images.

        Each file is one request; a file the server refuses is ``rejected`` with its message, the rest go on.
        """
        take_options(options, {}, "Label Studio import_files")
        files = _files(paths)
        rows: list[dict[str, Any]] = []
        images = [p for p in files if p.suffix.lower() in _IMAGE_SUFFIXES]
        bar = progress_bar(len(files), "importing", progress, "file")
        try:
            for path in [p for p in files if p not in images]:
                rows.append(self._import_tasks(path, dataset, format))
                bar.update(1)
            if images:
                rows += self._import_images(images, dataset)
                bar.update(len(images))
        finally:
            bar.close()
        return ImportReport.of(self.name, dataset, rows)

    def _import_tasks(self, path: Path, dataset: str, format: str | None) -> dict[str, Any]:
        try:
            tasks = _tasks_of(path, format)
        except Exception as exc:  # a file annotebook cannot read is that file's refusal, named
            return {"file": str(path), "status": "rejected", "errors": 1, "first_error": str(exc)}
        try:
            answer = self._api.post(f"/api/projects/{dataset}/import", json=tasks)
        except BackendError as exc:
            if getattr(exc, "status", 0) != 400:
                raise
            return {"file": str(path), "status": "rejected", "errors": 1, "first_error": _why(exc)}
        return {
            "file": str(path),
            "status": "imported",
            "tasks": _count(answer, "task_count"),
            "annotations": _count(answer, "annotation_count"),
            "predictions": _count(answer, "prediction_count"),
        }

    def _import_images(self, images: list[Path], dataset: str) -> list[dict[str, Any]]:
        form = {f"file{i}": (p.name, p.read_bytes()) for i, p in enumerate(images)}
        answer = self._api.post(f"/api/projects/{dataset}/import", files=form)
        made = _count(answer, "task_count")
        return [{"file": str(p), "status": "imported", "tasks": 1 if made == len(images) else None} for p in images]

    def export(
        self,
        format: str,
        dest: Any,
        dataset: str,
        *,
        images: bool = False,
        progress: bool = True,
        **options: Any,
    ) -> ExportResult:
        """A snapshot of the project in ``format`` (`EXPORT_FORMATS`; ``images=True`` takes the ``_WITH_IMAGES``
        variant) written under ``dest``: created, polled, converted, downloaded, extracted.

        ``annotated_only=True`` leaves out tasks without annotations; ``timeout`` (seconds) bounds the waits.
        """
        opts = take_options(options, {"annotated_only": False, "timeout": 600.0}, "Label Studio export")
        fmt = format.upper()
        if images and not fmt.endswith("_WITH_IMAGES") and f"{fmt}_WITH_IMAGES" in READERS:
            fmt = f"{fmt}_WITH_IMAGES"
        if fmt not in READERS:
            raise ValueError(f"Label Studio exports {list(READERS)}, not {format!r}")
        base = f"/api/projects/{dataset}/exports"
        body: dict[str, Any] = {"title": f"annotebook {time.strftime('%Y-%m-%d %H:%M:%S')}"}
        if opts["annotated_only"]:
            body["task_filter_options"] = {"annotated": "only"}
        snapshot = self._api.post(f"{base}/", json=body)
        eid = snapshot.get("id") if isinstance(snapshot, dict) else None
        if eid is None:
            raise MalformedResponse(f"Label Studio sent a snapshot without an id: {str(snapshot)[:200]}")
        self._wait_snapshot(base, eid, progress, float(opts["timeout"]))
        if fmt != "JSON":
            self._convert(base, eid, fmt, progress, float(opts["timeout"]))
        written = self._download(f"{base}/{eid}/download", fmt, Path(dest), progress)
        return ExportResult.of(self.name, dataset, fmt, dest, written, READERS[fmt], str(eid))

    def _wait_snapshot(self, base: str, eid: Any, progress: bool, timeout: float) -> None:
        def read() -> Poll:
            s = self._api.get(f"{base}/{eid}")
            status = str(s.get("status") if isinstance(s, dict) else "")
            return Poll(int(status == "completed"), 1, status in ("completed", "failed"), status == "failed", s)

        poll = wait_with_bar(
            read,
            ("snapshot", "step"),
            progress,
            timeout=timeout,
            delay=quick_first(1.0),
            late=lambda p: f"the Label Studio snapshot {eid} is still {p.status.get('status')}",
        )
        if poll.failed:
            raise BackendError(f"the Label Studio snapshot {eid} failed: {str(poll.status)[:300]}")

    def _convert(self, base: str, eid: Any, fmt: str, progress: bool, timeout: float) -> None:
        try:
            self._api.post(f"{base}/{eid}/convert", json={"export_type": fmt, "download_resources": False})
        except BackendError as exc:
            if getattr(exc, "status", 0) != 400:  # "already started": poll it like ours
                raise

        def read() -> Poll:
            s = self._api.get(f"{base}/{eid}")
            found = (
                [c for c in (s.get("converted_formats") or []) if isinstance(c, dict) and c.get("export_type") == fmt]
                if isinstance(s, dict)
                else []
            )
            status = str(found[0].get("status")) if found else ""
            return Poll(
                int(status == "completed"),
                1,
                status in ("completed", "failed"),
                status == "failed",
                found[0] if found else {},
            )

        poll = wait_with_bar(
            read,
            (f"converting to {fmt}", "step"),
            progress,
            timeout=timeout,
            delay=quick_first(1.0),
            late=lambda p: f"the {fmt} conversion of snapshot {eid} is late",
        )
        if poll.failed:
            raise BackendError(
                f"Label Studio could not convert snapshot {eid} to {fmt}: {str(poll.status.get('traceback'))[-300:]}"
            )

    def _download(self, url: str, fmt: str, dest: Path, progress: bool) -> list[Path]:
        with tempfile.TemporaryFile() as tmp:
            self._stream(url, {"exportType": fmt}, tmp, progress)
            tmp.seek(0)
            if zipfile.is_zipfile(tmp):
                tmp.seek(0)
                dest.mkdir(parents=True, exist_ok=True)
                return extract_zip(tmp, dest)
            tmp.seek(0)
            data = tmp.read()
        suffix = {"JSON": ".json", "JSON_MIN": ".json", "CSV": ".csv", "TSV": ".tsv"}.get(fmt, ".dat")
        target = dest if dest.suffix else dest / f"{fmt.lower()}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        part.write_bytes(data)
        part.replace(target)
        return [target]

    def _stream(self, url: str, params: dict[str, str], out: Any, progress: bool) -> None:
        """GET ``url`` into ``out`` as it arrives, under a bar in bytes (the key goes to this server only)."""
        from ._http import translated

        target = f"{self.base_url}/{url.lstrip('/')}"
        what = f"Label Studio GET {url}"
        with (
            translated(what, self._api.redact),
            self._api.http.stream("GET", target, params=params, headers=self._auth) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise BackendError(f"{what}: HTTP {response.status_code}: {self._api.redact(response.text[:200])}")
            bar = progress_bar(int(response.headers.get("content-length") or 0), "downloading", progress, "B")
            try:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()


def _files(paths: Any) -> list[Path]:
    out: list[Path] = []
    for p in [paths] if isinstance(paths, str | Path) else paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def _tasks_of(path: Path, format: str | None) -> list[dict[str, Any]]:
    """The Label Studio tasks of one file: a Label Studio JSON list as it is, any other format through the
    mapping (`annotebook.formats.labelstudio.tables_to_labelstudio`)."""
    if (format in (None, "labelstudio", "label_studio")) and path.suffix.lower() == ".json":
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
        if isinstance(obj, list) and all(isinstance(t, dict) for t in obj):
            return obj
        if isinstance(obj, dict) and ("data" in obj or "image" in obj):
            return [obj]
    from ..formats import load
    from ..formats.labelstudio import tables_to_labelstudio

    return tables_to_labelstudio(load(path, format=format))


def _count(answer: Any, key: str) -> int | None:
    value = answer.get(key) if isinstance(answer, dict) else None
    return int(value) if isinstance(value, int) else None


def _why(exc: BackendError) -> str:
    """A refusal's message with the fields Label Studio names (``validation_errors``)."""
    response = getattr(exc.__cause__, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    fields = body.get("validation_errors") if isinstance(body, dict) else None
    return f"{exc}: {json.dumps(fields)[:500]}" if fields else str(exc)
