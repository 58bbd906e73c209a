"""Issue 16: export archives extract within limits, or not at all, with a named error and nothing left behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

import annotebook as ab
from annotebook.backends._archive import extract_zip


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _left(dest: Path) -> list[Path]:
    return sorted(dest.rglob("*")) if dest.exists() else []


def test_zip_bomb_is_refused_by_ratio(tmp_path: Path) -> None:
    """A 300 KB zip that inflates to 300 MB: ArchiveTooLarge, nothing written."""
    bomb = _zip({"a.json": b"{}", "huge.bin": b"\0" * (300 * 2**20)})
    assert len(bomb) < 400_000
    dest = tmp_path / "out"
    with pytest.raises(ab.ArchiveTooLarge, match="inflates"):
        extract_zip(io.BytesIO(bomb), dest)
    assert _left(dest) == []
    assert not dest.exists()


def test_total_size_and_count_limits(tmp_path: Path) -> None:
    archive = _zip({f"f{i}.txt": b"x" * 100 for i in range(20)})
    with pytest.raises(ab.ArchiveTooLarge, match="20 files"):
        extract_zip(io.BytesIO(archive), tmp_path / "a", max_files=10)
    with pytest.raises(ab.ArchiveTooLarge, match="2,000 bytes"):
        extract_zip(io.BytesIO(archive), tmp_path / "b", max_bytes=1000)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lying_directory_is_caught_while_inflating(tmp_path: Path) -> None:
    """A member whose directory entry understates its size is stopped while it inflates."""
    data = bytearray(_zip({"ok.txt": b"hello", "big.txt": b"y" * 5000}))
    # patch the central directory's uncompressed size of big.txt down to 10 bytes
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("big.txt")
    cd = data.rfind(b"PK\x01\x02")
    assert data[cd + 46 : cd + 46 + len(b"big.txt")] == b"big.txt"
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    assert info.file_size == 5000
    dest = tmp_path / "out"
    with pytest.raises((ab.ArchiveTooLarge, ab.CorruptArchive)):
        extract_zip(io.BytesIO(bytes(data)), dest, max_bytes=1000)
    assert not dest.exists()


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_archive_is_named_and_leaves_nothing(tmp_path: Path, cut: float) -> None:
    archive = _zip({"a.txt": b"a" * 50_000, "b/c.txt": bytes(range(256)) * 400})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ab.CorruptArchive, match="corrupt or truncated"):
        extract_zip(io.BytesIO(archive[: int(len(archive) * cut)]), dest)
    assert _left(dest) == [dest / "keep.txt"]


def test_corrupt_member_is_named_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """A member whose deflate stream is damaged in the middle: the first member is not left half-written."""
    payload = bytes(range(256)) * 4000
    archive = bytearray(_zip({"first.bin": payload, "second.bin": payload}))
    start = archive.find(b"first.bin") + len(b"first.bin") + 200
    archive[start : start + 64] = b"\xff" * 64
    dest = tmp_path / "out"
    with pytest.raises(ab.CorruptArchive):
        extract_zip(io.BytesIO(bytes(archive)), dest)
    assert not dest.exists()


def test_a_good_archive_extracts_whole(tmp_path: Path) -> None:
    archive = _zip({"a.txt": b"a", "b/c.txt": b"c"})
    written = extract_zip(io.BytesIO(archive), tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["a.txt", "b/c.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b"]  # no staging folder left
