"""Write a folder of many small files (a YOLO or VOC export) fast, and never half of it.

Every file is first written into a hidden staging folder on the same file system, then moved into place with
``os.replace``: a folder that does not exist yet at the destination moves in one rename, so a fresh export of
10,000 label files costs 10,000 plain writes and a handful of renames rather than 10,000 temporary files.
The files may come as a lazy stream of (path, content) pairs, each staged as it is produced, so that only one
file's content is alive at a time. If producing or staging fails, nothing is left at the destination: the
staging folder goes, and so do the folders made to hold it.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DiskFull, FormatError

__all__ = ["TreeFiles", "relative_name", "safe_relative", "write_tree"]


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


@dataclass(frozen=True)
class TreeFiles:
    """The files of a folder export: their relative paths known (and checked) up front, their contents built one
    by one as the pairs are iterated (``contents()`` yields one per path, in order).

    >>> files = TreeFiles(["a.txt", "b.txt"], lambda: (s.upper() for s in "ab"))
    >>> len(files), dict(files)
    (2, {'a.txt': 'A', 'b.txt': 'B'})
    """

    paths: list[str]
    contents: Callable[[], Iterator[str]]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.paths, self.contents(), strict=True)


def write_tree(root: Path, files: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]]) -> list[Path]:
    """Write ``{relative path: content}`` (or (path, content) pairs, staged as they come) under ``root``; returns
    the paths written, in the given order.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "export"
    >>> [p.name for p in write_tree(out, {"labels/a.txt": "0 0.5 0.5 1 1\\n"})]
    ['a.txt']
    """
    root = Path(root)
    pairs = files.items() if isinstance(files, Mapping) else files
    existed = root.exists()
    base = root if existed else root.parent
    made = _missing_folders(base)
    base.mkdir(parents=True, exist_ok=True)
    stage = base / f".annotebook-{uuid.uuid4().hex[:12]}"
    stage.mkdir()  # not mkdtemp: its 0700 mode would become the export folder's
    done = False
    try:
        rels = _stage(str(stage), pairs)
        if existed:
            _merge(str(stage), str(root))
        else:
            os.replace(stage, root)
        done = True
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"the disk is full: cannot write {root}; nothing was written there", str(root)) from exc
        raise FormatError(f"cannot write: {exc.strerror or exc}", file=str(exc.filename or root)) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not done:
            _remove_empty(made)
    return [root / rel for rel in rels]


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, innermost first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write made, innermost first, stopping at one that holds something else."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _stage(stage: str, files: Iterable[tuple[str, str | bytes]]) -> list[str]:
    """Write each (path, content) under ``stage`` as it comes; returns the checked relative paths."""
    rels: list[str] = []
    made: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    for path, data in files:
        rel = safe_relative(path)
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
        rels.append(rel)
    return rels


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
