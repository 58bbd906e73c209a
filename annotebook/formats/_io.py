"""Thin, safe file I/O shared by the formats: atomic writes, text decoding with BOM / CRLF, sniffing."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .._gc import gc_paused
from ..errors import DiskFull, FormatError

__all__ = ["atomic_write", "gc_paused", "head", "read_text", "write_files"]


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (a BOM is dropped), CRLF and CR turned into LF; a named error otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def head(path: Path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of a file (b"" for a folder or a missing file)."""
    path = Path(path)
    if not path.is_file():
        return b""
    with path.open("rb") as f:
        return f.read(n).lstrip(b"\xef\xbb\xbf").lstrip()


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"the disk is full: cannot write {path}; it was left as it was", str(path)) from exc
        raise
    return path


def write_files(root: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write several files under ``root``, all or none (staged, then renamed into place: a full disk half way leaves
    nothing behind); one file is written atomically. Contents are built before the first write."""
    from ._tree import write_tree

    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise FormatError(f"not a path inside the output folder: {rel!r}", file=str(root))
    if len(files) == 1:
        return [atomic_write(Path(root) / rel, data) for rel, data in files.items()]
    return write_tree(Path(root), files)
