"""The format registry: one `FormatSpec` per file format, looked up by name or sniffed from a path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FormatError

__all__ = ["FORMATS", "FormatSpec", "Tables", "find_format", "register_format"]


@dataclass
class Tables:
    """The three canonical tables a format reads or writes (see docs/data-model.md)."""

    annotations: pd.DataFrame
    assets: pd.DataFrame
    labels: pd.DataFrame


@dataclass(frozen=True)
class FormatSpec:
    """A file format: ``load(path, **opts) -> Tables``, ``save(tables, path, **opts) -> written paths``.

    ``sniff(path) -> bool`` says whether a path holds this format (cheap: a suffix and the first bytes).
    """

    name: str
    load: Callable[..., Tables]
    save: Callable[..., list[Path]]
    sniff: Callable[[Path], bool]
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


FORMATS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> FormatSpec:
    """Add a format to the registry (by its name and aliases); its ``load`` takes ``images=`` and never points an
    asset outside the dataset (`_paths.confine`)."""
    from dataclasses import replace

    from ._paths import confined_load

    spec = replace(spec, load=confined_load(spec.load))
    for key in (spec.name, *spec.aliases):
        FORMATS[key.lower()] = spec
    return spec


def find_format(path: Path, format: str | None = None) -> FormatSpec:
    """The spec named ``format``, else the first whose sniff accepts ``path``."""
    from . import _builtin  # noqa: F401 - registers the bundled formats

    if format is not None:
        spec = FORMATS.get(format.lower().replace("-", "_"))
        if spec is None:
            raise FormatError(f"unknown format {format!r}; known: {sorted({s.name for s in FORMATS.values()})}")
        return spec
    seen: set[str] = set()
    for spec in FORMATS.values():
        if spec.name in seen:
            continue
        seen.add(spec.name)
        try:
            if spec.sniff(path):
                return spec
        except OSError as exc:
            raise FormatError(f"cannot read: {exc}", file=str(path)) from exc
    raise FormatError("no known format recognises this path; pass format=...", file=str(path))


def options(**kwargs: Any) -> dict[str, Any]:
    """Drop options left as None so each format's own defaults apply."""
    return {k: v for k, v in kwargs.items() if v is not None}
