"""What an import or an export did, as values: `ImportReport` and `ExportResult`.

They replace the DataFrames that carried a second table in ``.attrs``: pandas drops attrs in most operations, and a
value with named fields says what it holds. Both print as one line, render as their per-file table in a notebook,
and give that table with ``to_frame()``. Every backend returns them (`Connection.import_files`, `Connection.export`),
so code that reads a report works on the local store and on every platform alike.

>>> report = ImportReport.of("local", "d", [{"file": "a.json", "status": "imported"}])
>>> report
<ImportReport local d: 1 file, 1 imported>
>>> report.ok, report.imported
(True, ['a.json'])
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema

__all__ = [
    "FILE_COLUMNS",
    "LOG_COLUMNS",
    "STATUSES",
    "ExportResult",
    "ImportReport",
    "log_counts",
    "logs_frame",
    "reader_of",
    "take_options",
]

#: the columns every import report's file table starts with; a backend adds its own after them
FILE_COLUMNS = ("file", "status", "errors", "warnings", "first_error")
#: a file's status: in the backend; refused; sent to a session not waited for; never sent (an earlier session failed)
STATUSES = ("imported", "rejected", "pending", "skipped")
#: the columns every import log starts with, one row per line the backend logged
LOG_COLUMNS = ("file", "line", "level", "message")
_HTML_ROWS = 50


def logs_frame(rows: Iterable[Mapping[str, Any]] = (), extra: Sequence[str] = ()) -> pd.DataFrame:
    """An import log: file, line, level, message (then ``extra`` columns), in the contract's string dtypes."""
    frame = pd.DataFrame(list(rows), columns=[*LOG_COLUMNS, *extra])
    strings = {c: schema.STR for c in ("file", "level", "message", "session") if c in frame.columns}
    return frame.astype({**strings, "line": "Int64"})


def log_counts(logs: pd.DataFrame, files: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per file: how many error and warning lines the log has for it, and the first error's message."""
    level = logs["level"].astype(str).str.lower()
    errors, warnings = level.str.startswith("err").to_numpy(), level.str.startswith("warn").to_numpy()
    out = {}
    for name in files:
        mine = (logs["file"] == name).fillna(False).to_numpy(dtype=bool)
        first = logs.loc[mine & errors, "message"]
        out[name] = {
            "errors": int((mine & errors).sum()),
            "warnings": int((mine & warnings).sum()),
            "first_error": str(first.iloc[0]) if len(first) else None,
        }
    return out


def _files_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    extra = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in FILE_COLUMNS]
    frame = pd.DataFrame(list(rows), columns=[*FILE_COLUMNS, *extra])
    unknown = set(frame["status"].dropna()) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown file status {sorted(unknown)}; a file is one of {STATUSES}")
    frame[["errors", "warnings"]] = frame[["errors", "warnings"]].fillna(0)
    return frame.astype({"file": schema.STR, "status": schema.STR, "errors": "int64", "warnings": "int64",
                         "first_error": schema.STR})  # fmt: skip


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _html(summary: str, table: pd.DataFrame) -> str:
    shown = table.to_html(index=False, max_rows=_HTML_ROWS, na_rep="", border=0)
    return f"<div><p><code>{html.escape(summary)}</code></p>{shown}</div>"


@dataclass(frozen=True, repr=False, eq=False)
class ImportReport:
    """What an import did, file by file: ``files`` (file, status, errors, warnings, first_error, then the
    backend's own columns), the backend's ``logs`` (file, line, level, message, ...), the import ``sessions``
    (platforms that have them) and ``added`` (what the local store says it added: assets, labels, annotations).

    A file's status is one of `STATUSES`. ``ok`` is True when every file was imported; a report of an import not
    waited for (``wait=False``) lists its files as pending until ``wait_import`` returns the finished report.
    """

    backend: str
    dataset: str
    files: pd.DataFrame
    logs: pd.DataFrame = field(default_factory=logs_frame)
    sessions: tuple[str, ...] = ()
    added: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        backend: str,
        dataset: str,
        rows: Sequence[Mapping[str, Any]],
        logs: pd.DataFrame | None = None,
        sessions: Sequence[str] = (),
        added: Mapping[str, int] | None = None,
    ) -> ImportReport:
        """A report from one dict per file (``file`` and ``status`` at least; missing counts are 0)."""
        return cls(backend, dataset, _files_frame(rows), logs_frame() if logs is None else logs, tuple(sessions),
                   dict(added or {}))  # fmt: skip

    def _with(self, status: str) -> list[str]:
        return self.files.loc[(self.files["status"] == status).to_numpy(dtype=bool), "file"].astype(str).tolist()

    @property
    def imported(self) -> list[str]:
        """The files the backend took."""
        return self._with("imported")

    @property
    def rejected(self) -> list[str]:
        """The files the backend refused (``first_error`` says why)."""
        return self._with("rejected")

    @property
    def counts(self) -> dict[str, int]:
        """Files per status, every status named (0 where none)."""
        found = self.files["status"].value_counts()
        return {s: int(found.get(s, 0)) for s in STATUSES}

    @property
    def ok(self) -> bool:
        """Whether every file was imported."""
        return bool((self.files["status"] == "imported").all())

    def to_frame(self) -> pd.DataFrame:
        """The per-file table (a copy)."""
        return self.files.copy()

    def summary(self) -> str:
        """One line: the backend, the dataset, the files by status, the log's length."""
        parts = [f"{n} {s}" for s, n in self.counts.items() if n]
        text = f"{self.backend} {self.dataset}: {_plural(len(self.files), 'file')}"
        text += (", " + ", ".join(parts)) if parts else ""
        if len(self.logs):
            text += f"; {_plural(len(self.logs), 'log line')}"
        return text

    def __repr__(self) -> str:
        return f"<ImportReport {self.summary()}>"

    def _repr_html_(self) -> str:
        return _html(f"ImportReport {self.summary()}", self.files)


@dataclass(frozen=True, repr=False, eq=False)
class ExportResult:
    """What an export wrote: ``files`` (file, bytes: one row per file written, images included), under ``dest``,
    in ``format`` as the backend names it (Nexus ``yolo_darknet``, Vi ``YoloDarknet``, the store ``yolo``).

    ``reader`` is the annotebook format that reads the files back (``ab.read(path, format=reader)``), None when
    annotebook has no reader for them (TFRecord); ``export_id`` is the platform's id of the export, if it has one.
    """

    backend: str
    dataset: str
    format: str
    dest: Path
    files: pd.DataFrame
    reader: str | None = None
    export_id: str | None = None

    @classmethod
    def of(
        cls,
        backend: str,
        dataset: str,
        format: str,
        dest: str | Path,
        written: Iterable[Path],
        reader: str | None = None,
        export_id: str | None = None,
    ) -> ExportResult:
        """A result for the ``written`` paths (their sizes read from disk)."""
        paths = list(written)
        files = pd.DataFrame({"file": pd.array([str(p) for p in paths], dtype=schema.STR),
                              "bytes": pd.array([p.stat().st_size for p in paths], dtype="int64")})  # fmt: skip
        return cls(backend, dataset, format, Path(dest), files, reader, export_id)

    @property
    def paths(self) -> list[Path]:
        """The files written, as paths."""
        return [Path(f) for f in self.files["file"]]

    def to_frame(self) -> pd.DataFrame:
        """The per-file table (a copy)."""
        return self.files.copy()

    def summary(self) -> str:
        """One line: the backend, the dataset, how many files of which format, where."""
        size = int(self.files["bytes"].sum())
        files = _plural(len(self.files), "file")
        return f"{self.backend} {self.dataset}: {files} ({size:,} bytes) of {self.format} in {self.dest}"

    def __repr__(self) -> str:
        return f"<ExportResult {self.summary()}>"

    def _repr_html_(self) -> str:
        return _html(f"ExportResult {self.summary()}", self.files)


def reader_of(format: str) -> str | None:
    """The annotebook format that reads files a platform exported in ``format`` (None: no reader)."""
    from ..formats import FORMATS, _builtin  # noqa: F401 - _builtin registers the bundled formats

    spec = FORMATS.get(format.lower().replace("-", "_"))
    return spec.name if spec is not None else None


def take_options(options: Mapping[str, Any], defaults: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``defaults`` updated with ``options``; a name the backend does not take is a TypeError that lists those it does.

    Every backend's ``export`` and ``import_files`` share one signature with ``**options`` for what is the
    platform's own (Nexus's ``split_ratio``, Vi's failure policies); this keeps a misspelt option from being
    ignored silently.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        takes = ", ".join(defaults) or "no options"
        raise TypeError(f"{what} got unexpected option(s) {', '.join(unknown)}; it takes {takes}")
    return {**defaults, **options}
