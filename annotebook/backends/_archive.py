"""Safe extraction of the zip archives platforms export: inside the destination, bounded, whole or not at all.

A member outside ``dest`` or a link is `UnsafeArchive`; more than `MAX_FILES` members, more than `MAX_BYTES` in all,
or a member that inflates more than `MAX_RATIO` times (a zip bomb: 306 KB that inflate to 300 MB) is
`ArchiveTooLarge`; a corrupt or truncated archive is `CorruptArchive`. The sizes are checked twice: from the
archive's directory before anything is written, and while inflating (a directory can lie). Members are inflated into
a hidden folder inside ``dest`` and renamed into place only when every one of them inflated, so any failure leaves
``dest`` as it was.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from ..errors import ArchiveTooLarge, CorruptArchive, UnsafeArchive

__all__ = ["MAX_BYTES", "MAX_FILES", "MAX_RATIO", "extract_zip"]

#: the most an archive may inflate to in all (an export of images included fits well under it)
MAX_BYTES = 32 * 2**30
#: the most members an archive may hold
MAX_FILES = 500_000
#: the most a member may inflate relative to its compressed size, once it is larger than `RATIO_FLOOR`
MAX_RATIO = 200
#: members smaller than this are never judged by their ratio (a small, very regular JSON file compresses well)
RATIO_FLOOR = 8 * 2**20

_CHUNK = 2**20


def extract_zip(
    archive: str | Path | IO[bytes],
    dest: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_files: int = MAX_FILES,
    max_ratio: float = MAX_RATIO,
) -> list[Path]:
    """Extract a zip under ``dest`` (see the module's docstring); the files written."""
    dest = Path(dest)
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            _check_names(z.infolist(), root, dest)
            _check_sizes(members, max_bytes, max_files, max_ratio)
            return _extract(z, members, root, max_bytes, max_ratio)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise CorruptArchive(f"export archive is corrupt or truncated ({exc}); nothing was extracted") from exc


def _check_names(members: list[zipfile.ZipInfo], root: Path, dest: Path) -> None:
    for m in members:
        name = m.filename.replace("\\", "/")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise UnsafeArchive(f"export archive member {m.filename!r} is a link; nothing was extracted")
        target = (root / name).resolve()
        if name.startswith("/") or ":" in name.split("/")[0] or not target.is_relative_to(root) or target == root:
            raise UnsafeArchive(f"export archive member {m.filename!r} lies outside {dest}; nothing was extracted")


def _check_sizes(members: list[zipfile.ZipInfo], max_bytes: int, max_files: int, max_ratio: float) -> None:
    if len(members) > max_files:
        raise ArchiveTooLarge(
            f"export archive holds {len(members):,} files, more than the limit of {max_files:,}; nothing was extracted"
        )
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise ArchiveTooLarge(
            f"export archive would inflate to {total:,} bytes, more than the limit of {max_bytes:,}; "
            "nothing was extracted"
        )
    for m in members:
        _check_ratio(m.filename, m.file_size, m.compress_size, max_ratio)


def _check_ratio(name: str, size: int, packed: int, max_ratio: float) -> None:
    if size > RATIO_FLOOR and size > max_ratio * max(packed, 1):
        raise ArchiveTooLarge(
            f"export archive member {name!r} inflates {size / max(packed, 1):,.0f} times ({packed:,} -> at least "
            f"{size:,} bytes), more than the limit of {max_ratio:,.0f}; nothing was extracted"
        )


def _extract(
    z: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path, max_bytes: int, ratio: float
) -> list[Path]:
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".annotebook-extract-", dir=root))
    done = False
    try:
        total, staged = 0, []
        for i, m in enumerate(members):
            part = staging / str(i)
            with z.open(m) as src, open(part, "wb") as out:
                written = 0
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if total > max_bytes:
                        raise ArchiveTooLarge(
                            f"export archive inflates past the limit of {max_bytes:,} bytes (its directory said "
                            "less); nothing was extracted"
                        )
                    _check_ratio(m.filename, written, m.compress_size, ratio)
                    out.write(chunk)
            staged.append((part, root / m.filename.replace("\\", "/")))
        written_paths = []
        for part, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            written_paths.append(target)
        done = True
        return written_paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            shutil.rmtree(root, ignore_errors=True)
