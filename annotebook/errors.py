"""One error tree for annotebook.

```
AnnotebookError
 ├── FormatError            a file is malformed (carries file, line, field)
 ├── ValidationError        a frame breaks the data contract (carries a `problems` DataFrame)
 ├── TraceError             a frame cannot be traced to its load (no registry entry for its token)
 └── BackendError           a platform or the local store refused or failed
      ├── AuthError         the key was refused
      ├── NotFound          a dataset, asset or row does not exist
      ├── RateLimited       too many requests (carries retry_after)
      ├── ConflictError     the remote changed since the load (carries a `conflicts` DataFrame)
      └── PushError         a push failed part way (carries the PushReport of what landed)
```
Third-party exceptions are translated at one boundary and chained with ``raise ... from exc``.
Messages never carry keys or tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AnnotebookError",
    "AuthError",
    "BackendError",
    "ConflictError",
    "FormatError",
    "NotFound",
    "PushError",
    "RateLimited",
    "TraceError",
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


class BackendError(AnnotebookError):
    """A backend refused or failed a request."""


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
