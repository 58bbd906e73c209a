"""One error tree for annotebook.

```
AnnotebookError
 ├── FormatError               a file is malformed (carries file, line, field)
 ├── ValidationError           a frame breaks the data contract (carries a `problems` DataFrame)
 │    └── NotCarried           rows with fields the platform cannot store; nothing was written
 ├── TraceError                a frame cannot be traced to its load (no registry entry for its token)
 ├── DiskFull                  the disk filled while writing; names the file, nothing half-written is left
 └── BackendError              a platform or the local store refused or failed
      ├── AuthError            the key was refused
      ├── NotFound             a dataset, asset or row does not exist
      ├── RateLimited          too many requests (carries retry_after)
      ├── ConflictError        the remote changed since the load (carries a `conflicts` DataFrame)
      ├── PushError            a push failed part way (carries the PushReport of what landed)
      ├── NotSupported         the backend has no such ability (export on a file, statuses on Vi, ...)
      ├── ServerError          HTTP 5xx: for a write, whether it acted is unknown
      ├── ConnectionFailed     a timeout or a dropped connection: for a write, whether it landed is unknown
      ├── MalformedResponse    an answer that is not the shape expected
      │    └── CorruptArchive  an archive that is corrupt or truncated; nothing was extracted
      ├── UnsafeArchive        an export archive with a member outside its destination, or a link
      │    └── ArchiveTooLarge an archive past the limits on size, inflation ratio or file count
      ├── CorruptStore         the local store's or the registry's file is not a database (names the file)
      ├── ImportFailed         an import session ended in error (carries the ImportReport so far)
      └── ImportRejected       the platform or the store refused an import's files (carries the ImportReport)
```
Third-party exceptions (httpx's above all) are translated at one boundary and chained with ``raise ... from exc``:
`annotebook.backends._http` for API and signed-URL requests. Messages never carry keys or tokens.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .backends.transfer_report import ImportReport

__all__ = [
    "AnnotebookError",
    "ArchiveTooLarge",
    "AuthError",
    "BackendError",
    "ConflictError",
    "ConnectionFailed",
    "CorruptArchive",
    "CorruptStore",
    "DiskFull",
    "FormatError",
    "ImportFailed",
    "ImportRejected",
    "MalformedResponse",
    "NotCarried",
    "NotFound",
    "NotSupported",
    "PushError",
    "RateLimited",
    "ServerError",
    "TraceError",
    "UnsafeArchive",
    "ValidationError",
]


class AnnotebookError(Exception):
    """Base of every error annotebook raises."""


class FormatError(AnnotebookError, ValueError):
    """A file does not follow its format; names the file, line and field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None):
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"line {line}" if line is not None else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.line, self.field = file, line, field


class ValidationError(AnnotebookError, ValueError):
    """A frame breaks the data contract; ``problems`` lists every problem (id, column, problem)."""

    def __init__(self, message: str, problems: pd.DataFrame | None = None):
        self.problems = problems
        if problems is not None and len(problems):
            shown = problems.head(10).to_string(index=False)
            more = f"\n... and {len(problems) - 10} more" if len(problems) > 10 else ""
            message = f"{message}\n{shown}{more}"
        super().__init__(message)


class TraceError(AnnotebookError):
    """A frame's rows cannot be traced to their load (unknown load token, or rows of two loads that clash)."""


#: values that must never show in a message: the transport (`annotebook.backends._http`) adds every key it holds
_SECRETS: set[str] = set()
_FIELD = re.compile(
    r"""(?ix)(["']?[\w-]*(?:secret|token|passw(?:or)?d|api[_-]?key|apikey|access[_-]?key|signature|credential|
    authorization)[\w-]*["']?\s*[:=]\s*)(["'])(?:(?!\2).)*\2"""
)
_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
    r"signature|sig|token|access_token|key-pair-id|policy)=)[^&\s'\"]+"
)
_SCHEME = re.compile(r"\b(Bearer|Basic|Token|Key)\s+[A-Za-z0-9._~+/=-]{12,}")


def scrub(text: str) -> str:
    """``text`` with every known key, every credential-named field's value, every signed-URL signature and every
    ``Bearer <token>`` replaced by ``***``: what a backend error may quote of a request or an answer's body."""
    for value in sorted(_SECRETS, key=len, reverse=True):
        if len(value) >= 6:  # a test's one-letter key would mask every letter it shares; real keys are long
            text = text.replace(value, "***")
    text = _FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}***{m.group(2)}", text)
    text = _QUERY.sub(r"\1***", text)
    return _SCHEME.sub(r"\1 ***", text)


class BackendError(AnnotebookError):
    """A backend refused or failed a request; its message is scrubbed of keys and credentials (`scrub`)."""

    def __init__(self, message: object = "", *args: Any):
        super().__init__(scrub(str(message)), *args)


class AuthError(BackendError, PermissionError):
    """The platform refused the credentials."""


class NotFound(BackendError, LookupError):
    """A dataset, asset or row does not exist on the backend."""


class RateLimited(BackendError):
    """The platform asked us to slow down; ``retry_after`` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(BackendError):
    """The backend changed since the load; ``conflicts`` has one row per (id, field)."""

    #: what a push landed before it met the conflict (a `PushReport`), when anything did
    report: Any = None

    def __init__(self, message: str, conflicts: pd.DataFrame | None = None):
        self.conflicts = conflicts
        if conflicts is not None and len(conflicts):
            message = f"{message}\n{conflicts.head(10).to_string(index=False)}"
        super().__init__(message)


class PushError(BackendError):
    """A push failed part way; ``report`` says what landed and what did not."""

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


class NotCarried(ValidationError):
    """Rows with fields the platform cannot store (read-only there); nothing was written."""


class NotSupported(BackendError):
    """The backend lacks this ability (an export from a file, statuses on Vi, ...); named, never an AttributeError."""


class ServerError(BackendError):
    """The platform answered 5xx; for a write, whether it acted is unknown."""


class ConnectionFailed(BackendError):
    """A timeout or a dropped connection; for a write, whether it landed is unknown."""


class MalformedResponse(BackendError):
    """The platform answered with a body that is not the shape expected."""


class UnsafeArchive(BackendError):
    """An export archive with a member outside the destination or a link; nothing was extracted."""


class _ImportError(BackendError):
    """An import that did not land whole; ``report`` (an `ImportReport`) has a row per file and the log."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report

    @property
    def logs(self) -> pd.DataFrame:
        return self.report.logs


class ImportFailed(_ImportError):
    """An import session ended in error, or a later session of a split import failed; ``report`` says what landed.

    ``report.files`` has a row per file (imported in the sessions before, rejected in the failed one, skipped after
    it); ``logs``, ``imported`` and ``not_imported`` are kept as shortcuts for code written before the report.
    """

    @property
    def imported(self) -> list[str]:
        return self.report.imported

    @property
    def not_imported(self) -> list[str]:
        landed = set(self.report.imported)
        return [f for f in self.report.files["file"].astype(str) if f not in landed]


class ImportRejected(_ImportError):
    """The platform (or the local store) refused an import's files; ``report`` has a row per file and the log."""


class ArchiveTooLarge(UnsafeArchive):
    """An archive past the limits on total size, inflation ratio or file count; nothing was extracted."""


class CorruptArchive(MalformedResponse):
    """An archive that is corrupt or truncated; nothing was extracted."""


class CorruptStore(BackendError):
    """The local store's (or the registry's) SQLite file is not a database; ``path`` names it."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class DiskFull(AnnotebookError, OSError):
    """The disk filled up while writing ``path``; what was being written was removed, nothing half-written is left."""

    def __init__(self, message: str, path: str | None = None):
        AnnotebookError.__init__(self, message)
        self.path = path
