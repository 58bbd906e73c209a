"""Write a folder of many small files (a YOLO or VOC export) fast, and never half of it.

Every file is first written into a hidden staging folder on the same file system, then moved into place with
``os.replace``: a folder that does not exist yet at the destination moves in one rename, so a fresh export of
10,000 label files costs 10,000 plain writes and a handful of renames rather than 10,000 temporary files.
If building or staging fails, nothing is left at the destination.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import FormatError

__all__ = ["relative_name", "safe_relative", "write_tree"]


def safe_relative(path: str) -> str:
    """``path`` as a relative POSIX path inside its root (no drive, no leading ``/``, no ``..``); else ValueError.

    >>> safe_relative("images/train/./a.jpg")
    'images/train/a.jpg'
    """
    s = path.replace("\\", "/")
    parts = [x for x in s.split("/") if x not in ("", ".")]
    if s.startswith("/") or not parts or ".." in parts or parts[0].endswith(":"):
        raise ValueError(f"not a relative path inside the folder: {path!r}")
    return "/".join(parts)


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write ``{relative path: content}`` under ``root``; returns the paths written, in the mapping's order.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "export"
    >>> [p.name for p in write_tree(out, {"labels/a.txt": "0 0.5 0.5 1 1\\n"})]
    ['a.txt']
    """
    root = Path(root)
    rels = [safe_relative(rel) for rel in files]
    existed = root.exists()
    base = root if existed else root.parent
    base.mkdir(parents=True, exist_ok=True)
    stage = base / f".annotebook-{uuid.uuid4().hex[:12]}"
    stage.mkdir()  # not mkdtemp: its 0700 mode would become the export folder's
    try:
        _stage(str(stage), rels, files.values())
        if existed:
            _merge(str(stage), str(root))
        else:
            os.replace(stage, root)
    except OSError as exc:
        raise FormatError(f"cannot write: {exc.strerror or exc}", file=str(exc.filename or root)) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [root / rel for rel in rels]


def _stage(stage: str, rels: list[str], contents: Iterable[str | bytes]) -> None:
    made: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    for rel, data in zip(rels, contents, strict=True):
        folder, _, _ = rel.rpartition("/")
        if folder not in made:
            os.makedirs(os.path.join(stage, folder), exist_ok=True)
            made.add(folder)
        # os-level calls: 10,000 small files, and Python's buffered file objects would double the cost of each
        fd = os.open(os.path.join(stage, rel), flags, 0o666)
        try:
            view = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _merge(src: str, dst: str) -> None:
    """Move every entry of ``src`` into ``dst``: new entries in one rename each, existing folders recursively."""
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            if entry.is_dir(follow_symlinks=False) and os.path.isdir(target):
                _merge(entry.path, target)
            else:
                os.replace(entry.path, target)


def relative_name(name: str) -> str:
    """A file name from a table as a safe relative path (a URL or absolute path keeps its last component)."""
    s = name.replace("\\", "/")
    if "://" in s:
        s = s.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    try:
        return safe_relative(s)
    except ValueError:
        try:
            return safe_relative(s.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            raise FormatError(f"asset {name!r} has no usable file name", field="name") from None
