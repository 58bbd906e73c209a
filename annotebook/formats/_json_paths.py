"""JSON index paths in errors: pluck fields from lists of JSON objects and name the first bad one exactly.

Shared by the JSON formats: ``where.error("annotations[12].bbox", "...")`` is a `FormatError` naming the file and
that path; the checks run on whole lists at once and only scan item by item to find what to name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FormatError

__all__ = ["Where", "is_int", "is_number", "numbers", "pluck", "section", "show", "unique"]

FloatArray = npt.NDArray[np.float64]


class Where:
    """Builds the FormatError of one file, named by JSON index paths."""

    def __init__(self, file: str | None):
        self.file = file

    def error(self, path: str, message: str) -> FormatError:
        return FormatError(message, file=self.file, field=path)

    def first(self, values: list[Any], ok: Callable[[Any], bool], path: str, key: str, message: str) -> FormatError:
        """The error for the first value that is not ``ok`` (the caller knows at least one is not)."""
        for i, v in enumerate(values):
            if not ok(v):
                return self.error(f"{path}[{i}].{key}", f"{message}, got {show(v)}")
        return self.error(path, message)  # pragma: no cover - callers pass a failing list


def show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def is_int(v: Any) -> bool:
    return type(v) is int


def section(doc: Mapping[str, Any], key: str, where: Where, required: bool = True) -> list[Any]:
    """``doc[key]`` as a list of JSON objects (a missing optional section is empty)."""
    items = doc.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise where.error(key, f"expected a list of objects, got {show(items) if key in doc else 'nothing'}")
    if not all(type(a) is dict for a in items):
        bad = next(i for i, a in enumerate(items) if type(a) is not dict)
        raise where.error(f"{key}[{bad}]", f"expected an object, got {show(items[bad])}")
    return items


def pluck(items: list[dict[str, Any]], key: str, path: str, where: Where) -> list[Any]:
    """``[item[key] for item in items]``; a missing key names the first item that lacks it."""
    try:
        return [a[key] for a in items]
    except KeyError:
        bad = next(i for i, a in enumerate(items) if key not in a)
        raise where.error(f"{path}[{bad}].{key}", "missing") from None


def numbers(values: list[Any], path: str, key: str, where: Where, positive: bool = False) -> FloatArray:
    """Finite numbers (bools and strings refused) as floats; ``positive`` refuses zero and negatives."""
    if not all(type(v) in (int, float) for v in values):
        raise where.first(values, lambda v: type(v) in (int, float), path, key, "expected a number")
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else np.zeros(len(arr), dtype=bool))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a positive number" if positive else "a finite number"
        raise where.error(f"{path}[{i}].{key}", f"expected {what}, got {show(values[i])}")
    return arr


def unique(values: list[Any], path: str, key: str, where: Where) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise where.error(f"{path}[{i}].{key}", f"duplicate {key} {v!r} (also {path}[{seen[v]}])")
        seen[v] = i
