"""Folder writes (`annotebook.formats._tree`): files staged as they are produced, renamed into place, and nothing left
at the destination when producing or staging fails, whether the destination folder is new or already there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annotebook.errors import FormatError
from annotebook.formats._tree import TreeFiles, write_tree


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (hidden ones included): a file's bytes, None for a folder."""
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() for p in root.rglob("*")}


def failing(after: int, error: Exception) -> Iterator[tuple[str, str]]:
    """``after`` good files, then ``error`` as the next one is produced."""
    for i in range(after):
        yield f"labels/{i}.txt", f"{i}\n"
    raise error


def test_pairs_are_written_in_order_as_they_come(tmp_path: Path) -> None:
    produced: list[str] = []

    def files() -> Iterator[tuple[str, str]]:
        for name in ("b.txt", "sub/a.txt", "c.txt"):
            produced.append(name)
            yield name, name.upper()

    out = tmp_path / "new" / "export"
    written = write_tree(out, files())
    assert written == [out / "b.txt", out / "sub" / "a.txt", out / "c.txt"]
    assert produced == ["b.txt", "sub/a.txt", "c.txt"]
    assert (out / "sub" / "a.txt").read_text() == "SUB/A.TXT"
    assert snapshot(tmp_path) == {
        "new": None,
        "new/export": None,
        "new/export/b.txt": b"B.TXT",
        "new/export/sub": None,
        "new/export/sub/a.txt": b"SUB/A.TXT",
        "new/export/c.txt": b"C.TXT",
    }


def test_a_mapping_still_writes(tmp_path: Path) -> None:
    assert write_tree(tmp_path / "o", {"a.txt": "a", "b.bin": b"\x00"}) == [
        tmp_path / "o" / "a.txt",
        tmp_path / "o" / "b.bin",
    ]
    assert (tmp_path / "o" / "b.bin").read_bytes() == b"\x00"


@pytest.mark.parametrize(
    ("error", "words"),
    [(FormatError("row 'x' is bad", file="out", field="label"), "row 'x' is bad"), (RuntimeError("broke"), "broke")],
    ids=["format-error", "any-error"],
)
def test_a_late_failure_leaves_a_new_destination_absent(tmp_path: Path, error: Exception, words: str) -> None:
    """Files already staged go with the staging folder, and so do the parent folders the write made."""
    (tmp_path / "keep").mkdir()
    with pytest.raises(type(error), match=words):
        write_tree(tmp_path / "keep" / "made" / "export", failing(3, error))
    assert snapshot(tmp_path / "keep") == {}


def test_a_late_failure_leaves_an_existing_destination_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "export"
    write_tree(out, {"labels/0.txt": "old\n", "labels/keep.txt": "keep\n", "classes.txt": "cat\n"})
    before = snapshot(out)
    with pytest.raises(FormatError, match="bad row"):
        write_tree(out, failing(5, FormatError("bad row", field="x0")))
    assert snapshot(out) == before  # no file replaced, none added, no staging folder left among them


def test_an_unsafe_path_produced_late_writes_nothing(tmp_path: Path) -> None:
    def files() -> Iterator[tuple[str, str]]:
        yield "a.txt", "a"
        yield "../escape.txt", "b"

    with pytest.raises(ValueError, match="not a relative path"):
        write_tree(tmp_path / "o", files())
    assert snapshot(tmp_path) == {}


def test_tree_files_know_their_paths_and_build_contents_on_each_iteration() -> None:
    built: list[str] = []

    def contents() -> Iterator[str]:
        for name in "ab":
            built.append(name)
            yield name * 2

    files = TreeFiles(["a.txt", "b.txt"], contents)
    assert len(files) == 2 and built == []
    assert dict(files) == {"a.txt": "aa", "b.txt": "bb"}
    assert list(files) == [("a.txt", "aa"), ("b.txt", "bb")] and built == ["a", "b", "a", "b"]
