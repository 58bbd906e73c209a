"""The front door: `__all__` is what the README promises, and importing annotebook stays cheap."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import annotebook as ab

ROOT = Path(__file__).resolve().parent.parent

PROMISED = [
    "AnnotebookError",
    "ArchiveTooLarge",
    "AuthError",
    "BackendError",
    "Changeset",
    "ConflictError",
    "Connection",
    "ConnectionFailed",
    "CorruptArchive",
    "CorruptStore",
    "DiskFull",
    "ExportResult",
    "FormatError",
    "ImportFailed",
    "ImportRejected",
    "ImportReport",
    "MalformedResponse",
    "NotCarried",
    "NotFound",
    "NotSupported",
    "PushError",
    "PushReport",
    "RateLimited",
    "ServerError",
    "TraceError",
    "UnsafeArchive",
    "ValidationError",
    "__version__",
    "annotations_frame",
    "assets_frame",
    "connect",
    "labels_frame",
    "read",
    "read_dask",
    "recover",
    "validate",
]


def test_all_is_sorted_and_complete() -> None:
    """`__all__` is sorted, exactly the promised names, and each resolves."""
    assert ab.__all__ == sorted(ab.__all__) == PROMISED
    for name in ab.__all__:
        assert getattr(ab, name) is not None


def test_import_is_cheap() -> None:
    """`import annotebook` loads neither matplotlib, ipycanvas nor httpx."""
    code = "import sys, annotebook; print(sorted(m for m in ('matplotlib', 'ipycanvas', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_error_tree() -> None:
    """Every error is an AnnotebookError; backend errors share a base; the docstring's tree draws every class."""
    from annotebook import errors

    backend = (ab.AuthError, ab.NotFound, ab.RateLimited, ab.ConflictError, ab.PushError, ab.NotSupported,
               ab.ServerError, ab.ConnectionFailed, ab.MalformedResponse, ab.UnsafeArchive, ab.ImportFailed,
               ab.ImportRejected)  # fmt: skip
    for cls in backend:
        assert issubclass(cls, ab.BackendError)
    for cls in (ab.FormatError, ab.ValidationError, ab.TraceError, ab.BackendError):
        assert issubclass(cls, ab.AnnotebookError)
    assert issubclass(ab.NotCarried, ab.ValidationError)
    tree = str(errors.__doc__)
    for name in errors.__all__:
        assert re.search(rf"^(.*── )?{name}\b", tree, re.M), f"{name} is not drawn in the tree of annotebook/errors.py"
        assert getattr(ab, name) is getattr(errors, name)


def test_moved_errors_are_still_importable_from_their_old_modules() -> None:
    """The errors that lived beside their backends are the same classes from there."""
    from annotebook.backends import _http, _remote, nexus, nexus_transfer, vi, vi_transfer

    assert _http.ServerError is ab.ServerError and _http.ConnectionFailed is ab.ConnectionFailed
    assert _http.MalformedResponse is ab.MalformedResponse and _remote.UnsafeArchive is ab.UnsafeArchive
    assert nexus.ImportFailed is nexus_transfer.ImportFailed is ab.ImportFailed
    assert nexus.NotCarried is ab.NotCarried and nexus.UnsafeArchive is ab.UnsafeArchive
    assert vi.ImportRejected is vi_transfer.ImportRejected is ab.ImportRejected


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def test_layers_import_downwards_only() -> None:
    """Formats never import pictures or the front door; the two YOLO formats share a module, not each other; the
    backends read files through the formats layer, not through `annotebook.connection`."""
    formats = sorted((ROOT / "annotebook" / "formats").glob("*.py"))
    for path in formats:
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("annotebook.render", "annotebook.widgets", "annotebook.connection"))
        }
        assert not bad, f"{path.name} imports {bad}"
    assert "annotebook.formats.yolo_keras" not in _imports(ROOT / "annotebook" / "formats" / "yolo.py")
    assert not {
        m
        for m in _imports(ROOT / "annotebook" / "formats" / "yolo_keras.py")
        if m.startswith("annotebook.formats.yolo.")
    }
    for path in sorted((ROOT / "annotebook" / "backends").glob("*.py")):
        assert not {m for m in _imports(path) if m.startswith("annotebook.connection")}, path.name
