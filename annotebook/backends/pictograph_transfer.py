"""Pictograph exports and the dataset download: `PictographTransfer`, the file-moving half of `PictographBackend`.

Two ways out of Pictograph (protocol notes C.3):

- a server-side export in any of its formats (`EXPORT_FORMATS`): ``POST exports/`` (with an ``Idempotency-Key``,
  so a retried create makes no second export), ``GET exports/{name}?dataset=`` polled under a progress bar until
  ``completed`` (``failed`` raises `BackendError` with the server's ``error_message``), then ``GET
  exports/{name}/download`` and its signed ``download_url`` (no key), extracted under ``dest``;
- the dataset download (``export("pictograph", dest, images=...)``): the ``datasets/{name}/download`` listing gives
  each image's signed ``image_url`` and its ``annotation_url``; the listing stops at 10,000 items and takes no
  offset, so the images past it are taken from the image listing (``limit`` / ``offset`` pages), which names both
  URLs too. Each image's annotations land in ``<dest>/<file>.json`` (the answer as sent, as the SDK saves it), its
  pixels in ``<dest>/<file>`` with ``images=True``.

Every file lands whole: it is written to a ``.part`` file (or a temporary file, for a ZIP) and renamed into place, so
a cut transfer leaves no partial file; the transfer is tried again, and a file that still fails is named in the
error. `read_export` reads the result back into an annotations frame (asset = the image's id).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
import warnings
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pandas as pd

from .. import schema
from ..errors import BackendError, ConnectionFailed, MalformedResponse, ServerError
from ..formats import load
from ._http import ApiClient, SignedUrls
from ._lifecycle import Poll, download, quick_first, wait_with_bar
from ._remote import extract_zip, progress_bar
from .pictograph_poses import Templates, templates_of
from .pictograph_rows import rows_from_wire
from .transfer_report import ExportResult, take_options

__all__ = ["EXPORT_FORMATS", "READERS", "PictographTransfer", "read_export"]

API = "/api/v1/developer"
#: the export formats of the SDK (``pictograph/models/export.py``)
EXPORT_FORMATS = ("pictograph", "darwin", "coco", "yolo", "yolo_obb", "yolo_pose", "dota", "pascal_voc", "cvat",
                  "datumaro", "labelme", "csv")  # fmt: skip
_ALIASES = {"voc": "pascal_voc", "yolo_darknet": "yolo", "csv_four_corner": "csv", "csv_fourcorner": "csv"}
#: export format -> how `read_export` reads it: an annotebook format and the file or folder it reads
READERS = {"coco": ("coco", "annotations.json"), "yolo": ("yolo", "."), "yolo_obb": ("yolo", "."),
           "pascal_voc": ("voc", "Annotations"), "csv": ("csv_four_corner", "annotations.csv")}  # fmt: skip
EXPORT_OPTIONS = {"name": None, "class_filter": None, "status_filter": None, "organize_by_split": False,
                  "via": None, "wait": True}  # fmt: skip
DOWNLOAD_CAP = 10_000


class PictographTransfer:
    """Exports and the dataset download of a Pictograph organization; `PictographBackend` gives the client."""

    poll_interval: float = 2.0
    poll_timeout: float = 600.0
    workers: int
    _api: ApiClient
    _files: SignedUrls

    if TYPE_CHECKING:  # provided by PictographBackend

        def _list_images(self, dataset: str, status: str | None = None) -> list[dict[str, Any]]: ...
        def _write(self, method: str, url: str, body: Any, key: str | None = None) -> Any: ...
        def templates(self, dataset: str, fresh: bool = True) -> Templates: ...
        def assets(self, dataset: str) -> pd.DataFrame: ...

    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """Export ``dataset`` in a Pictograph ``format`` under ``dest``; what was written.

        ``"pictograph"`` is the dataset download (per image ``<file>.json``, and ``<file>`` with ``images=True``);
        ``via="export"`` asks for the server-side export in Pictograph's JSON instead. Every other format is a
        server-side export (``images=True``: ``include_images``). Options: ``name`` (of the export; a fresh one by
        default), ``class_filter`` (class names), ``status_filter`` (an image status), ``organize_by_split``.
        """
        opts = take_options(options, EXPORT_OPTIONS, "Pictograph export")
        fmt = format.lower().replace("-", "_")
        fmt = _ALIASES.get(fmt, fmt)
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Pictograph has no export format {format!r}; it has {list(EXPORT_FORMATS)}")
        dest = Path(dest)
        if fmt == "pictograph" and opts["via"] != "export":
            if opts["class_filter"] or opts["organize_by_split"]:
                raise ValueError("the dataset download takes status_filter only; use via='export' for the others")
            written = self._download_dataset(dataset, dest, images, progress, opts["status_filter"])
            return ExportResult.of("pictograph", dataset, "pictograph", dest, written)
        name = opts["name"] or f"annotebook-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        body: dict[str, Any] = {"dataset_name": dataset, "name": name, "format": fmt, "include_images": bool(images)}
        body.update({k: opts[k] for k in ("class_filter", "status_filter") if opts[k] is not None})
        if opts["organize_by_split"]:
            body["organize_by_split"] = True
        made = self._create(body)
        export_id = str((made.get("data") or {}).get("id")) if isinstance(made, dict) else None
        self._wait_export(dataset, name, progress)
        answer = self._api.get(f"{API}/exports/{quote(name, safe='')}/download", params={"dataset": dataset})
        link = (answer.get("data") or {}).get("download_url") if isinstance(answer, dict) else None
        if not link:
            raise MalformedResponse(f"Pictograph export {name!r} is completed but has no download_url: "
                                    f"{str(answer)[:200]}")  # fmt: skip
        written = _fetch_zip(self._files, str(link), dest, f"export {name} download", progress)
        reader = READERS.get(fmt, (None,))[0] if fmt != "pictograph" else None
        return ExportResult.of("pictograph", dataset, fmt, dest, written, reader, export_id)

    def _create(self, body: dict[str, Any]) -> Any:
        """Ask for an export; an answer lost to a cut or a 5xx is asked again once with the same
        ``Idempotency-Key``, which Pictograph answers with the first answer rather than a second export."""
        key = uuid.uuid4().hex
        try:
            return self._write("POST", f"{API}/exports/", body, key)
        except (ServerError, ConnectionFailed):
            return self._write("POST", f"{API}/exports/", body, key)

    def _wait_export(self, dataset: str, name: str, progress: bool) -> None:
        url = f"{API}/exports/{quote(name, safe='')}"

        def poll() -> Poll:
            answer = self._api.get(url, params={"dataset": dataset})
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict) or "status" not in data:
                raise MalformedResponse(f"Pictograph sent an export without a status: {str(answer)[:200]}")
            status = str(data["status"])
            done = {"pending": 0, "processing": 1}.get(status, 2)
            return Poll(done, 2, status in ("completed", "failed"), status == "failed", data)

        last = wait_with_bar(poll, ("exporting", "step"), progress, timeout=self.poll_timeout,
                             delay=quick_first(self.poll_interval),
                             late=lambda p: f"Pictograph export {name!r} still {p.status.get('status')} after "
                                            f"{self.poll_timeout:g}s; it goes on on the server")  # fmt: skip
        if last.failed:
            why = last.status.get("error_message") or "no error message given"
            raise BackendError(f"Pictograph export {name!r} of {dataset!r} failed on the server: {why}")

    def _export_lists(self, dataset: str, progress: bool) -> dict[str, list[dict[str, Any]]]:
        """Every image's annotation list, as held, from one server-side export in Pictograph's JSON (each
        ``annotations/<file>.json`` names its ``image_uuid``), the export deleted after (its failure is warned)."""
        name = f"annotebook-load-{uuid.uuid4().hex[:12]}"
        self._create({"dataset_name": dataset, "name": name, "format": "pictograph", "include_images": False})
        try:
            self._wait_export(dataset, name, progress)
            answer = self._api.get(f"{API}/exports/{quote(name, safe='')}/download", params={"dataset": dataset})
            link = (answer.get("data") or {}).get("download_url") if isinstance(answer, dict) else None
            if not link:
                raise MalformedResponse(f"Pictograph export {name!r} has no download_url: {str(answer)[:200]}")
            with tempfile.TemporaryFile() as tmp:
                download(self._files, str(link), tmp, f"export {name} download", progress=progress)
                tmp.seek(0)
                return _lists_of(tmp, name)
        finally:
            try:
                self._api.request("DELETE", f"{API}/exports/{quote(name, safe='')}", params={"dataset": dataset})
            except BackendError as exc:
                warnings.warn(f"the export {name!r} that this load read was not deleted: {exc}", stacklevel=3)

    # -- the dataset download ------------------------------------------------------------------------------
    def _download_dataset(
        self, dataset: str, dest: Path, images: bool, progress: bool, status: str | None
    ) -> list[Path]:
        params = {"mode": "full" if images else "annotations_only", "limit": str(DOWNLOAD_CAP)}
        if status is not None:
            params["status_filter"] = status
        answer = self._api.get(f"{API}/datasets/{quote(dataset, safe='')}/download", params=params)
        data = answer.get("data") if isinstance(answer, dict) else None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise MalformedResponse(f"Pictograph sent a download listing without items: {str(answer)[:200]}")
        wanted: dict[str, tuple[str | None, str | None]] = {}
        for item in items:
            wanted[_safe(item.get("filename"))] = (item.get("image_url"), item.get("annotation_url"))
        # the listing stops at 10,000 and takes no offset: the image listing (paged) names the rest
        for img in self._list_images(dataset, status):
            folder = str(img.get("directory_path") or "").strip("/")
            path = _safe(f"{folder}/{img['filename']}" if folder else img["filename"])
            if path not in wanted and PurePosixPath(path).name not in wanted:
                wanted[path] = (img.get("image_url"), img.get("annotation_url"))
        tasks = [(dest / f"{path}.json", "annotation", a) for path, (_, a) in wanted.items() if a]
        tasks += [(dest / path, "image", i) for path, (i, _) in wanted.items() if images and i]
        dest.mkdir(parents=True, exist_ok=True)
        bar = progress_bar(len(tasks), "downloading", progress, "file")
        failed: dict[str, str] = {}

        def one(task: tuple[Path, str, str]) -> None:
            target, kind, url = task
            try:
                if kind == "annotation":
                    _land(target, json.dumps(self._api.get(_pinned(url)), indent=2).encode())
                else:
                    _land_stream(self._files, url, target, f"image {target.name}")
            except (BackendError, OSError) as exc:
                failed[str(target.relative_to(dest))] = str(exc)
            bar.update(1)

        try:
            with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="pictograph-dl") as pool:
                list(pool.map(one, tasks))
        finally:
            bar.close()
        if failed:
            shown = "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:5])
            raise BackendError(f"{len(failed)} of {len(tasks)} file(s) of the {dataset!r} download failed (none "
                               f"was left half written; the other files are in {dest}): {shown}")  # fmt: skip
        return [t for t, _, _ in tasks]

    def read_export(self, result: ExportResult) -> pd.DataFrame:
        """An export or download of this backend read back (`read_export`), with the dataset's image sizes and
        pose classes from the platform."""
        return read_export(result, self.assets(result.dataset), self.templates(result.dataset))


def _safe(name: Any) -> str:
    """A server-given file path made safe to join under a folder (no absolute path, no ``..``)."""
    parts = [p for p in PurePosixPath(str(name or "image").replace("\\", "/")).parts if p not in ("/", "..", ".")]
    return "/".join(parts) or "image"


def _pinned(url: str) -> str:
    """An absolute annotation URL reduced to its path and query: it is asked of the API's own host (the SDK's
    host pinning), so the key never goes to another host."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _land(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        part.write_bytes(data)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(target)


def _land_stream(files: SignedUrls, url: str, target: Path, what: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with open(part, "wb") as out:
            files.download("GET", url, out, what)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(target)


def _fetch_zip(files: SignedUrls, url: str, dest: Path, what: str, progress: bool) -> list[Path]:
    """Download the ZIP at ``url`` to a temporary file and extract it under ``dest`` only once it is whole."""
    with tempfile.TemporaryFile() as tmp:
        download(files, url, tmp, what, progress=progress)
        tmp.seek(0)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            return extract_zip(tmp, dest)
        except zipfile.BadZipFile as exc:
            raise MalformedResponse(f"Pictograph {what}: the archive is not a whole ZIP ({exc}); "
                                    "nothing was extracted") from exc  # fmt: skip


def _lists_of(archive: Any, name: str) -> dict[str, list[dict[str, Any]]]:
    """image id -> its annotation list, from a Pictograph JSON export's ``annotations/*.json``."""
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if not member.endswith(".json") or PurePosixPath(member).parent.name != "annotations":
                    continue
                doc = json.loads(z.read(member))
                items, image = doc.get("annotations"), doc.get("image_uuid") or doc.get("image_id")
                if not isinstance(items, list) or not image:
                    raise MalformedResponse(f"Pictograph export {name!r}: {member} has no image_uuid or annotations")
                out[str(image)] = items
    except zipfile.BadZipFile as exc:
        raise MalformedResponse(f"Pictograph export {name!r}: the archive is not a whole ZIP ({exc})") from exc
    return out


# -- read back -----------------------------------------------------------------------------------------------------
def read_export(
    result: ExportResult, assets: pd.DataFrame | None = None, templates: Templates | None = None
) -> pd.DataFrame:
    """The annotations of a Pictograph export or dataset download, as a frame (read from files: no load token).

    The Pictograph JSON (the download's ``<file>.json``, an export's ``annotations/<file>.json``) is read with the
    backend's own wire reader, asset = the image's id; image sizes come from the file, else ``assets`` (the
    dataset's assets table), else the image beside it; an export's ``classes.json`` gives the pose classes, else
    ``templates``. COCO, YOLO (and YOLO OBB, as polygons), Pascal VOC and CSV are read with annotebook's readers
    (CSV's pixels need ``assets``); the other formats are downloaded, not parsed.
    """
    if result.format == "pictograph":
        return _read_pictograph(result, assets, templates)
    if result.format not in READERS:
        raise ValueError(f"annotebook reads no {result.format} export; the files are in .files")
    reader, where = READERS[result.format]
    roots = [result.dest / s for s in ("train", "valid", "test") if (result.dest / s).is_dir()] or [result.dest]
    parts = []
    for root in roots:
        options: dict[str, Any] = {"assets": assets} if reader == "csv_four_corner" and assets is not None else {}
        part = load(root / where, reader, **options).annotations
        part["dataset"] = pd.array([result.dataset] * len(part), dtype=schema.STR)
        parts.append(part)
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _read_pictograph(result: ExportResult, assets: pd.DataFrame | None, templates: Templates | None) -> pd.DataFrame:
    classes = result.dest / "classes.json"
    if classes.is_file():
        templates = templates_of(json.loads(classes.read_text()))
    sizes: dict[str, tuple[float, float]] = {}
    if assets is not None:
        for r in assets.to_dict("records"):
            if pd.notna(r.get("width")) and pd.notna(r.get("height")):
                size = (float(r["width"]), float(r["height"]))
                sizes[str(r["asset"])] = sizes[str(r["name"])] = size
    rows: list[dict[str, Any]] = []
    for path in sorted(p for p in result.paths if p.suffix == ".json" and p.name != "classes.json"):
        doc = json.loads(path.read_text())
        if not isinstance(doc, Mapping) or not isinstance(doc.get("annotations"), list):
            raise MalformedResponse(f"{path}: not a Pictograph annotation file (no annotations list)")
        image_id = str(doc.get("image_id") or doc.get("image_uuid") or path.name.removesuffix(".json"))
        filename = str(doc.get("image") or path.name.removesuffix(".json"))
        found = _size(doc, sizes.get(image_id) or sizes.get(filename), path.with_name(filename))
        if found is None:
            raise ValueError(f"{path}: no size for image {filename!r}; pass the dataset's assets table")
        rows += rows_from_wire(doc["annotations"], result.dataset, image_id, found, templates)
    return schema.annotations_frame(rows)


def _size(doc: Mapping[str, Any], known: tuple[float, float] | None, image: Path) -> tuple[float, float] | None:
    if doc.get("width") and doc.get("height"):
        return float(doc["width"]), float(doc["height"])
    if known is not None:
        return known
    if image.is_file():
        from ..formats._image_size import image_size

        found = image_size(image)
        return (float(found[0]), float(found[1])) if found else None
    return None
