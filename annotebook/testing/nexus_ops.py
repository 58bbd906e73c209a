"""The Nexus simulator's annotation import sessions, and the signed URLs of its uploads and downloads.

Import sessions (``annotationimportsessions``): create, register files (each answered with a signed ``PUT`` URL on
this server), upload, ``PATCH`` the ``FilesInserted`` condition, then ``GET`` the session: it runs for a few polls
and finishes. The uploaded files are really read, with `annotebook.formats` (COCO JSON, CSV four-corner /
width-height, Pascal VOC XML, YOLO ``.txt`` with a ``.labels`` / ``classes.txt`` of class names, ...), matched to
the project's assets by file name, and checked as Nexus checks them; every problem is a log line
(``"At boats.csv:19: Point 259.0, 259.0 is out of bounds. ..."``). A session with an error log ends ``Errored``
and adds nothing; otherwise its rows are added when it finishes.

The exports are `nexus_exports`.
"""

from __future__ import annotations

import csv
import inspect
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ImportSession", "match_asset", "read_session_files"]


MAX_FILES = 1000


class ImportSession:
    """One annotation import session: its files, its polls, its logs."""

    def __init__(self, project_id: str, now: Callable[[], int], steps: int):
        self.id = f"annotsess_{uuid.uuid4()}"
        self.project_id, self.now, self.steps = project_id, now, steps
        self.created = self.updated = now()
        self.files: dict[str, dict[str, Any]] = {}  # filename -> {size, crc32c, data}
        self.overview, self.message = "Running", "Waiting for files"
        self.committed = False
        self.polls = 0
        self.logs: list[dict[str, Any]] = []
        self.processed = self.failed = self.annotations = 0

    def wire(self) -> dict[str, Any]:
        n = len(self.files)
        done = n if self.overview in ("Finished", "Errored") else min(n, n * self.polls // max(self.steps, 1))
        processing = n - done
        return {
            "id": self.id, "projectId": self.project_id, "object": "annotation_import_session",
            "status": {
                "overview": self.overview, "message": self.message, "updateDate": self.updated,
                "annotations": {"withStatus": {"Processed": self.annotations, "Committed": self.annotations}},
                "files": {"totalSizeBytes": sum(int(f["size"]) for f in self.files.values()), "pageCount": n,
                          "withStatus": {"Processing": processing, "Processed": done - self.failed,
                                         "FailedProcess": self.failed}},
            },
            "expiryDate": self.created + 86_400_000, "createDate": self.created, "updateDate": self.updated,
        }  # fmt: skip

    def log(self, level: str, message: str) -> None:
        self.logs.append({"timestamp": time.time(), "level": level, "message": message})


# -- reading uploaded files ------------------------------------------------------------------------------------
def _csv_lines(path: Path) -> list[int]:
    """Line numbers (1-based) of the CSV rows that hold a box, in file order."""
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for i, cells in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in cells]
            if len([c for c in cells if c]) > 1 and not (i == 1 and not any(_number(c) for c in cells)):
                out.append(i)
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_session_files(
    files: dict[str, bytes], sizes: pd.DataFrame
) -> tuple[list[tuple[str, int | None, dict[str, Any]]], list[tuple[str, int | None, str]]]:
    """The canonical rows of uploaded files, each with (file, line), and the problems, each (file, line, message).

    ``sizes`` is the project's assets (asset, name, width, height): a pixel CSV needs them.
    """
    from ..errors import FormatError
    from ..formats import find_format

    rows: list[tuple[str, int | None, dict[str, Any]]] = []
    problems: list[tuple[str, int | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="nexus-import-") as tmp:
        root = Path(tmp)
        yolo = [n for n in files if Path(n).suffix.lower() in (".txt", ".labels")]
        names = [n for n in yolo if Path(n).suffix.lower() == ".labels" or n.lower() in ("classes.txt", "obj.names")]
        jobs: list[tuple[str, Path, str | None]] = []
        if yolo:
            folder = root / "yolo"
            (folder / "labels").mkdir(parents=True)
            for n in yolo:
                target = folder / "classes.txt" if n in names else folder / "labels" / n
                target.write_bytes(files[n])
            if not names:
                problems.append((yolo[0], None, "YOLO files need a .labels file of class names in the same session"))
            else:
                jobs.append((", ".join(sorted(n for n in yolo if n not in names)), folder, "yolo"))
        for n, data in files.items():
            if n in yolo:
                continue
            path = root / "files" / n
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            jobs.append((n, path, None))
        for label, path, fmt in jobs:
            try:
                spec = find_format(path, fmt)
                params = inspect.signature(spec.load).parameters
                options = {"assets": sizes} if "assets" in params or spec.name.startswith("csv") else {}
                tables = spec.load(path, **options)
            except (FormatError, ValueError, KeyError, OSError) as exc:
                line = getattr(exc, "line", None)
                message = str(getattr(exc, "args", [exc])[0]) if isinstance(exc, FormatError) else str(exc)
                message = message.replace(str(path), label).replace(tmp + "/", "")
                if isinstance(exc, FormatError) and ": " in message and message.startswith("file "):
                    message = message.split(": ", 1)[1]
                problems.append((label, line, message))
                continue
            anns = tables.annotations
            lines: list[int | None] = [None] * len(anns)
            if path.suffix.lower() == ".csv":
                found = _csv_lines(path)
                if len(found) == len(anns):
                    lines = list(found)
            names_of = dict(zip(tables.assets["asset"], tables.assets["name"], strict=True))
            for (_, r), line in zip(anns.iterrows(), lines, strict=True):
                rec = {str(k): v for k, v in r.items()}
                rec["_name"] = names_of.get(rec["asset"]) or rec["asset"]
                rows.append((label, line, rec))
    return rows, problems


def match_asset(name: str, assets: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The project's asset a file refers to: by file name, else by stem (YOLO label files carry no suffix)."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    for a in assets.values():
        if a["filename"] == base:
            return a
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return next((a for a in assets.values() if a["filename"].rsplit(".", 1)[0] == stem), None)


def out_of_bounds(bound: list[list[float]]) -> list[float] | None:
    return next((p for p in bound if not (-1e-9 <= p[0] <= 1 + 1e-9 and -1e-9 <= p[1] <= 1 + 1e-9)), None)
