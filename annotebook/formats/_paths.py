"""The one rule for where a file read may point: inside the dataset it came from (issue 16).

An annotation file names its images (COCO ``file_name``, VOC ``filename``, a JSONL ``filepath``, a Label Studio
URL). A name like ``../../../../etc/hostname`` or ``/etc/passwd``, or a link inside the folder that points out of it,
must not become an asset's ``uri``: an export with ``images=True`` would copy that file into a dataset the user then
shares. Every reader's tables pass through `confine` (`register_format` wraps each format's ``load``): a local ``uri``
that resolves outside the allowed roots becomes NaN (an asset without pixels) and a `PathOutsideWarning` names it.

The allowed roots are the folder read (or the annotation file's folder; when that folder is a conventional
annotations folder, ``annotations`` / ``Annotations`` / ``labels`` / ``ann``, the folder above it, where COCO and VOC
keep their images), plus the ``images=`` root the user passes to `annotebook.read`. With ``images=``, an asset whose
image the reader did not find is looked up under that root by its path, then by its name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import AnnotebookError, FormatError

__all__ = ["PathOutsideWarning", "allowed_roots", "confine", "confined_load"]

#: folders that hold annotation files, whose images sit in the folder above (COCO ``annotations/``, VOC
#: ``Annotations/``, SuperAnnotate / YOLO ``labels/``)
ANNOTATION_FOLDERS = frozenset({"annotations", "annotation", "labels", "label", "ann", "anns", "json"})


class PathOutsideWarning(UserWarning):
    """An annotation file named an image outside its dataset; the asset was read without pixels."""


def allowed_roots(path: Path, images: str | Path | None = None) -> list[str]:
    """The real folders a read of ``path`` may take images from."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    roots = [folder]
    if folder.name.lower() in ANNOTATION_FOLDERS:
        roots.append(folder.parent)
    if images is not None:
        roots.append(Path(images))
    return [os.path.realpath(r) for r in roots]


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _local(uri: str) -> str | None:
    """The local path a ``uri`` names (a plain path or a ``file:`` URL), None for a remote URL."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        return unquote(urlsplit(uri).path)
    if "://" in uri or uri.startswith("data:"):
        return None
    return uri


def confine(assets: pd.DataFrame, path: Path, images: str | Path | None = None) -> pd.DataFrame:
    """``assets`` with every local ``uri`` outside the allowed roots set to NaN, each one warned about by name."""
    if "uri" not in assets.columns or not len(assets):
        return assets
    roots = allowed_roots(path, images)
    uris = assets["uri"].to_numpy(dtype=object)
    parents: dict[str, str] = {}
    out, refused = [], []
    for asset, uri in zip(assets["asset"].tolist(), uris.tolist(), strict=True):
        local = _local(uri) if isinstance(uri, str) else None
        if local is None:
            out.append(uri)
            continue
        absolute = os.path.abspath(local)  # a reader's uri is a path as the process opens it
        parent = os.path.dirname(absolute)
        if parent not in parents:
            parents[parent] = os.path.realpath(parent)
        real = os.path.join(parents[parent], os.path.basename(absolute))
        if os.path.islink(real):
            real = os.path.realpath(real)
        if _inside(real, roots):
            out.append(uri)
        else:
            out.append(None)
            refused.append(str(asset))
    if images is not None:
        out = _look_up(assets, out, Path(images), roots)
    if refused:
        shown = ", ".join(repr(a) for a in refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
        warnings.warn(
            f"{path}: {len(refused)} image path(s) lie outside the dataset ({shown}); read without pixels. "
            "Pass images=<folder> to read images from another folder.",
            PathOutsideWarning,
            stacklevel=3,
        )
    assets = assets.copy()
    assets["uri"] = pd.array(np.asarray(out, dtype=object), dtype=schema.STR)
    return assets


def _look_up(assets: pd.DataFrame, uris: list[Any], images: Path, roots: list[str]) -> list[Any]:
    """Assets without a uri, found under the ``images=`` root by their path, then by their name."""
    names = assets["name"].tolist() if "name" in assets.columns else [None] * len(assets)
    out = list(uris)
    for i, (asset, name, uri) in enumerate(zip(assets["asset"].tolist(), names, uris, strict=True)):
        if isinstance(uri, str):
            continue
        for rel in (asset, name):
            if not isinstance(rel, str) or not rel or "://" in rel:
                continue
            candidate = os.path.realpath(images / rel)
            if _inside(candidate, roots[-1:]) and os.path.isfile(candidate):
                out[i] = candidate
                break
    return out


def confined_load(load: Callable[..., Any]) -> Callable[..., Any]:
    """A format's ``load`` that takes ``images=`` and confines the uris of what it reads (`confine`); an exception
    that is not annotebook's becomes a `FormatError` naming the file (the readers name line and field themselves)."""
    if getattr(load, "__confined__", False):
        return load

    def wrapper(path: Any, *args: Any, images: str | Path | None = None, **options: Any) -> Any:
        try:
            tables = load(path, *args, **options)
        except AnnotebookError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            # the one boundary: a reader that met a shape it did not foresee still names the file (issue 16)
            raise FormatError(f"cannot be read: {type(exc).__name__}: {str(exc)[:200]}", file=str(path)) from exc
        tables.assets = confine(tables.assets, Path(path), images)
        return tables

    wrapper.__confined__ = True  # type: ignore[attr-defined]
    wrapper.__wrapped__ = load  # type: ignore[attr-defined]
    wrapper.__doc__, wrapper.__name__ = load.__doc__, getattr(load, "__name__", "load")
    return wrapper
