"""The front door: `__all__` is what the README promises, and importing annotebook stays cheap."""

from __future__ import annotations

import subprocess
import sys

import annotebook as ab

PROMISED = [
    "AnnotebookError",
    "AuthError",
    "BackendError",
    "Changeset",
    "ConflictError",
    "Connection",
    "FormatError",
    "NotFound",
    "PushError",
    "PushReport",
    "RateLimited",
    "TraceError",
    "ValidationError",
    "__version__",
    "annotations_frame",
    "assets_frame",
    "connect",
    "labels_frame",
    "read",
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
    """Every error is an AnnotebookError; backend errors share a base."""
    for cls in (ab.AuthError, ab.NotFound, ab.RateLimited, ab.ConflictError, ab.PushError):
        assert issubclass(cls, ab.BackendError)
    for cls in (ab.FormatError, ab.ValidationError, ab.TraceError, ab.BackendError):
        assert issubclass(cls, ab.AnnotebookError)
