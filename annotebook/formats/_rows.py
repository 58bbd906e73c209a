"""Small helpers the writers and readers share: checked numbers, file names, asset sizes, and the one rule for rows
a format cannot carry (raise naming them, or skip them when asked; never drop silently)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError

__all__ = [
    "asset_sizes",
    "carried",
    "dataset_name",
    "file_name",
    "is_missing",
    "json_path",
    "number",
    "plain",
    "records",
    "require",
    "size_of",
    "uri_beside",
]


#: the largest image side a reader accepts: the pixel columns are Int64, and no image is 2 billion pixels wide
MAX_SIDE = 2**31 - 1


def is_missing(v: Any) -> bool:
    """True for None, NaN, pd.NA and NaT (a scalar that carries no value)."""
    if v is None or v is pd.NA:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, str):  # the common case, without asking pandas
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def plain(v: Any) -> Any:
    """A cell as a plain Python value: None when missing, numpy scalars as Python scalars."""
    if is_missing(v):
        return None
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as dicts of plain values (missing cells as None)."""
    cols = list(df.columns)
    return [{c: plain(v) for c, v in zip(cols, row, strict=True)} for row in df.itertuples(index=False, name=None)]


def number(
    v: Any, *, file: str, line: int | None = None, field: str, allow_negative: bool = True, text: bool = False
) -> float:
    """``v`` as a finite float (a JSON number; or text, when ``text``), else a FormatError naming file, line, field."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str) if text else (int, float)):
        raise FormatError(f"expected a number, got {type(v).__name__} {v!r}", file=file, line=line, field=field)
    try:
        x = float(v)
    except ValueError:
        raise FormatError(f"expected a number, got {v!r}", file=file, line=line, field=field) from None
    if not math.isfinite(x):
        raise FormatError(f"expected a finite number, got {v!r}", file=file, line=line, field=field)
    if not allow_negative and x < 0:
        raise FormatError(f"expected a number >= 0, got {v!r}", file=file, line=line, field=field)
    return x


def size_of(width: Any, height: Any, *, file: str, line: int | None = None, field: str = "") -> tuple[int, int]:
    """A checked (width, height) in pixels: positive whole numbers."""
    out = []
    for name, v in (("width", width), ("height", height)):
        where = f"{field}.{name}" if field else name
        x = number(v, file=file, line=line, field=where)
        if x <= 0 or x != int(x) or x > MAX_SIDE:
            raise FormatError(
                f"image {name} must be a positive whole number of at most {MAX_SIDE:,} pixels, got {v!r}",
                file=file,
                line=line,
                field=where,
            )
        out.append(int(x))
    return out[0], out[1]


def asset_sizes(assets: pd.DataFrame | None) -> dict[str, tuple[int, int]]:
    """asset (and name) -> (width, height) for the assets whose size is known."""
    if assets is None or not len(assets):
        return {}
    sizes: dict[str, tuple[int, int]] = {}
    cols = [c for c in ("asset", "name", "width", "height") if c in assets.columns]
    for r in records(assets[cols]):
        w, h = r.get("width"), r.get("height")
        if w is None or h is None:
            continue
        for key in (r.get("name"), r.get("asset")):  # the asset id wins over the bare name
            if key is not None:
                sizes[str(key)] = (int(w), int(h))
    return sizes


def file_name(asset: Any, name: Any) -> str:
    """The image file name a format writes: the asset when it is a path ending in its name, else the name.

    A frame read from a file has asset == the path the file named ("imgs/a.png", name "a.png"); a frame from the
    local store or a platform has an opaque asset id ("17") and the file name in ``name``.
    """
    asset_s = None if is_missing(asset) else str(asset)
    name_s = None if is_missing(name) else str(name)
    if name_s is None or asset_s is None:
        return asset_s or name_s or ""
    return asset_s if asset_s == name_s or asset_s.replace("\\", "/").endswith("/" + name_s) else name_s


def dataset_name(path: Path) -> str:
    """The default dataset name of a file or folder: its stem, as valid UTF-8 (undecodable bytes replaced)."""
    return os.fsencode(Path(path).stem).decode("utf-8", "replace")


def uri_beside(root: Path, asset: str) -> str | None:
    """The image file named ``asset`` under ``root`` when it exists there (no URL, no escape upwards)."""
    if "://" in asset or asset.startswith(("data:", "/data/")):
        return None
    try:
        path = root / asset
        return str(path) if path.is_file() else None
    except (OSError, ValueError):
        return None


def carried(
    anns: pd.DataFrame, ok: Iterable[bool], *, what: str, skip: bool, file: str | None = None, why: str = ""
) -> pd.DataFrame:
    """The rows a writer can carry (``anns`` itself when it is all of them): the others raise a FormatError naming
    the first few and what they are, unless ``skip`` leaves them out. ``what`` names the format, ``why`` what it holds.

    >>> rows = pd.DataFrame({"id": ["a", "b"], "kind": ["box", "tag"], "rotation": [0.0, None], "points": [None] * 2})
    >>> carried(rows, [True, False], what="YOLO", skip=True)["id"].tolist()
    ['a']
    """
    mask = ok.astype(bool) if isinstance(ok, np.ndarray) else np.fromiter(ok, dtype=bool, count=len(anns))
    if mask.all():
        return anns
    if not skip:
        bad = anns[~mask]
        shown = ", ".join(f"{i!r} ({k})" for i, k in zip(bad["id"].head(5), _what_rows(bad.head(5)), strict=True))
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise FormatError(
            f"{what} cannot carry {len(bad)} rows: {shown}{more}{'; ' + why if why else ''}; "
            "pass skip_unsupported=True to write the others",
            file=file,
            field="kind",
        )
    return anns[mask]


def _what_rows(bad: pd.DataFrame) -> list[str]:
    out = []
    for kind, rot, pts in zip(bad["kind"], bad["rotation"], bad["points"], strict=True):
        if kind == "box" and not is_missing(rot) and rot != 0:
            out.append("rotated box")
        elif kind == "polygon" and pts is not None and len(pts) > 1:
            out.append(f"polygon of {len(pts)} parts")
        else:
            out.append(str(kind))
    return out


def json_path(*parts: Any) -> str:
    """``annotations[3].result[0].value`` from ("annotations", 3, "result", 0, "value")."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, file: str, path: str) -> Any:
    """``obj[key]`` checked for presence and type, else a FormatError naming the JSON path."""
    where = f"{path}.{key}" if path else key
    if key not in obj:
        raise FormatError(f"missing key {key!r}", file=file, field=where)
    v = obj[key]
    if not isinstance(v, kind) or (isinstance(v, bool) and bool not in _as_tuple(kind)):
        raise FormatError(f"expected {_kind_name(kind)}, got {type(v).__name__}", file=file, field=where)
    return v


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))
