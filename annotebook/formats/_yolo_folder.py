"""How a YOLO Darknet dataset sits on disk: which label file belongs to which image, splits, class names.

The rules follow Ultralytics (``img2label_paths``: the last ``images`` folder of an image's path becomes
``labels``, the suffix ``.txt``) and Darknet (``replace_image_to_label``: an image outside any ``images`` folder
has its label file beside it; ``obj.data`` and list files of image paths). See `annotebook.formats.yolo`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ._data_yaml import parse_data_yaml
from ._image_size import IMAGE_SUFFIXES, image_size
from ._io import head, read_text
from ._tree import relative_name, safe_relative

__all__ = [
    "NAMES_FILES",
    "SPLIT_DIRS",
    "SPLIT_NAMES",
    "YoloItem",
    "image_path",
    "label_path",
    "names_from_yaml",
    "parse_names_text",
    "read_folder",
    "split_of_path",
    "yaml_splits",
]

#: split folder / data.yaml key -> annotebook's split value
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "validate",
    "valid": "validate",
    "validate": "validate",
    "validation": "validate",
    "test": "test",
    "testing": "test",
}
#: annotebook's split value -> the folder and data.yaml key written
SPLIT_DIRS = {"train": "train", "validate": "val", "test": "test"}
NAMES_FILES = ("classes.txt", "obj.names", "_classes.txt", "_darknet.labels")


# ---------------------------------------------------------------------------------------------------------------
# Class names files


def parse_names_text(text: str, file: str) -> dict[int, str]:
    """``classes.txt`` / ``obj.names``: line i names class i; a blank line leaves index i unnamed.

    >>> parse_names_text("cat\\n\\ndog\\n", "classes.txt")
    {0: 'cat', 2: 'dog'}
    """
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    names = {i: line.strip() for i, line in enumerate(lines) if line.strip()}
    return _unique(names, file)


def names_from_yaml(value: Any, file: str) -> dict[int, str]:
    """data.yaml ``names``: a list, or a map of index -> name; empty names leave their index unnamed."""
    if isinstance(value, list):
        pairs = list(enumerate(value))
    elif isinstance(value, dict):
        pairs = list(value.items())
        if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k, _ in pairs):
            raise FormatError("names keys must be class numbers 0, 1, ...", file=file, field="names")
    else:
        raise FormatError(f"names must be a list or a map, got {value!r}", file=file, field="names")
    names = {int(k): str(v).strip() for k, v in pairs if v is not None and str(v).strip()}
    return _unique(names, file)


def _unique(names: dict[int, str], file: str) -> dict[int, str]:
    seen: dict[str, int] = {}
    for i, name in names.items():
        if name in seen:
            raise FormatError(f"class {i} repeats the name {name!r} of class {seen[name]}", file=file, field="names")
        seen[name] = i
    return names


@dataclass(frozen=True)
class YoloItem:
    """One image of a Darknet dataset: its asset id, label file text (None: no label file) and what else is known."""

    asset: str
    text: str | None = None
    split: str | None = None
    width: int | None = None
    height: int | None = None
    uri: str | None = None
    file: str | None = None  # the label file, for error messages


# ---------------------------------------------------------------------------------------------------------------
# Image path <-> label path, splits


def label_path(image: str) -> str:
    """The label file of an image: the last ``images`` folder becomes ``labels``, the suffix ``.txt``.

    >>> label_path("train/images/a.b.jpg"), label_path("obj/x.png"), label_path("images/x")
    ('train/labels/a.b.txt', 'obj/x.txt', 'labels/x.txt')
    """
    parts = image.split("/")
    dirs = parts[:-1]
    if "images" in dirs:
        parts[len(dirs) - 1 - dirs[::-1].index("images")] = "labels"
    stem, dot, _ = parts[-1].rpartition(".")
    parts[-1] = (stem if dot and stem else parts[-1]) + ".txt"
    return "/".join(parts)


def _image_of_label(label: str) -> str:
    """The image path a label file stands for when its image is absent: ``labels`` -> ``images``, no suffix."""
    parts = label.split("/")
    dirs = parts[:-1]
    parts[len(dirs) - 1 - dirs[::-1].index("labels")] = "images"
    parts[-1] = parts[-1][: -len(".txt")]
    return "/".join(parts)


def split_dir(parts: Sequence[str]) -> int | None:
    """Position of the split folder beside the last ``images`` folder (``images/<s>/`` or ``<s>/images/``)."""
    dirs = list(parts[:-1])
    if "images" not in dirs:
        return len(dirs) - 1 if dirs and dirs[-1].lower() in SPLIT_NAMES else None
    k = len(dirs) - 1 - dirs[::-1].index("images")
    if k + 1 < len(dirs) and dirs[k + 1].lower() in SPLIT_NAMES:
        return k + 1
    return k - 1 if k >= 1 and dirs[k - 1].lower() in SPLIT_NAMES else None


def split_of_path(asset: str) -> str | None:
    """The split a path's folders name, or None.

    >>> split_of_path("images/val/a.jpg"), split_of_path("valid/images/a.jpg"), split_of_path("images/a.jpg")
    ('validate', 'validate', None)
    """
    parts = asset.split("/")
    k = split_dir(parts)
    return None if k is None else SPLIT_NAMES[parts[k].lower()]


def image_path(name: str, split: str | None) -> str:
    """Where the writer places an image: its own ``images/...`` path, moved to the row's split folder if it has one.

    >>> image_path("a.jpg", "validate"), image_path("images/train/a.jpg", None)
    ('images/val/a.jpg', 'images/train/a.jpg')
    >>> image_path("images/train/a.jpg", "test"), image_path("images/a.jpg", "train")
    ('images/test/a.jpg', 'images/train/a.jpg')
    """
    rel = relative_name(name)
    folder = SPLIT_DIRS.get(split, split) if split else None
    parts = rel.split("/")
    if "images" not in parts[:-1]:
        return "/".join(["images", *([folder] if folder else []), *parts])
    k = split_dir(parts)
    if folder is None or (k is not None and SPLIT_NAMES[parts[k].lower()] == split):
        return rel
    if k is not None:
        parts[k] = folder
    else:
        at = len(parts) - 2 - parts[-2::-1].index("images")
        parts.insert(at + 1, folder)
    return safe_relative("/".join(parts))


def yaml_splits(images: Iterable[str]) -> dict[str, list[str]]:
    """data.yaml ``train`` / ``val`` / ``test``: the image folders of each split; both train and val name the
    image folders when there are no split folders (Ultralytics needs both keys)."""
    found: dict[str, set[str]] = {}
    unsplit: set[str] = set()
    for image in images:
        parts = image.split("/")
        k = split_dir(parts)
        dirs = list(parts[:-1])
        top = len(dirs) - dirs[::-1].index("images") if "images" in dirs else len(dirs)
        if k is None:
            unsplit.add("/".join(parts[:top]))
        else:
            key = SPLIT_DIRS[SPLIT_NAMES[parts[k].lower()]]
            found.setdefault(key, set()).add("/".join(parts[: max(k, top - 1) + 1]))
    if not found:
        return {"train": sorted(unsplit), "val": sorted(unsplit)} if unsplit else {}
    return {key: sorted(found[key]) for key in ("train", "val", "test") if key in found}


# ---------------------------------------------------------------------------------------------------------------
# Finding the images and label files of a folder


@dataclass
class FolderConfig:
    names: dict[int, str] | None
    sources: list[tuple[str, Path]]  # (split, image folder or list file)


def root_of(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        return path, None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return path.parent, path
    raise FormatError("expected a YOLO dataset folder or its data.yaml", file=str(path))


def _find_yaml(root: Path) -> Path | None:
    if (root / "data.yaml").is_file():
        return root / "data.yaml"
    for p in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        if b"names" in head(p, 1 << 16):
            return p
    return None


def _resolve(base: Path, value: Any) -> Path | None:
    """A data.yaml / obj.data path, relative to the dataset folder; Ultralytics' ``../`` fallback included."""
    if not isinstance(value, str) or not value:
        return None
    p = base / value
    if not p.exists() and value.startswith(("../", "data/")):
        p = base / value.split("/", 1)[1]
    return p if p.exists() else None


def read_config(root: Path, yaml_file: Path | None) -> FolderConfig:
    names: dict[int, str] | None = None
    sources: list[tuple[str, Path]] = []
    yaml_file = yaml_file or _find_yaml(root)
    if yaml_file is not None:
        data = parse_data_yaml(read_text(yaml_file), str(yaml_file))
        if data.get("kpt_shape") is not None:
            raise FormatError("YOLO pose labels (kpt_shape) are not supported", file=str(yaml_file), field="kpt_shape")
        if data.get("names") is not None:
            names = names_from_yaml(data["names"], str(yaml_file))
        base = root / data["path"] if isinstance(data.get("path"), str) and (root / data["path"]).is_dir() else root
        for key in ("train", "val", "test"):
            value = data.get(key)
            values: list[Any] = value if isinstance(value, list) else [value]
            sources += [(SPLIT_NAMES[key], p) for p in (_resolve(base, v) for v in values) if p is not None]
    if (root / "obj.data").is_file():  # Darknet / CVAT: "key = value" lines
        pairs = [line.partition("=") for line in read_text(root / "obj.data").split("\n")]
        obj = {k.strip(): v.strip() for k, sep, v in pairs if sep}
        for key in ("train", "valid"):
            p = _resolve(root, obj.get(key))
            sources += [(SPLIT_NAMES[key], p)] if p is not None else []
        names_file = _resolve(root, obj.get("names"))
        if names is None and names_file is not None:
            names = parse_names_text(read_text(names_file), str(names_file))
    return FolderConfig(names if names is not None else _names_file(root), sources)


def _names_file(root: Path) -> dict[int, str] | None:
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        candidates = [folder / n for n in NAMES_FILES] + sorted([*folder.glob("*.names"), *folder.glob("*.labels")])
        for p in candidates:
            if p.is_file():
                return parse_names_text(read_text(p), str(p))
    return None


def _walk(root: Path) -> tuple[set[str], set[str]]:
    """Relative POSIX paths of the image files and ``.txt`` files under ``root`` (hidden entries skipped)."""
    images: set[str] = set()
    texts: set[str] = set()
    prefix = len(str(root)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = dirpath[prefix:].replace(os.sep, "/")
        for f in filenames:
            ext = os.path.splitext(f)[1].lower()
            if f.startswith(".") or (ext != ".txt" and ext not in IMAGE_SUFFIXES):
                continue
            rel = f"{rel_dir}/{f}" if rel_dir else f
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(
                    "file name is not UTF-8", file=os.path.join(dirpath, os.fsdecode(f)), field="name"
                ) from None
            (texts if ext == ".txt" else images).add(rel)
    return images, texts


def _list_entries(root: Path, list_file: Path) -> set[str]:
    """Image paths of a Darknet / Ultralytics list file, relative to the dataset folder.

    An entry is relative to the list file (Ultralytics) or to the folder Darknet ran from, often with a ``data/``
    prefix (CVAT): the first reading under which the image or its label file exists wins.
    """
    out = set()
    for line in read_text(list_file).split("\n"):
        entry = line.strip().replace("\\", "/")
        if not entry:
            continue
        tails = [entry, entry.split("/", 1)[1]] if entry.startswith(("../", "data/")) else [entry]
        readings = [base / tail for tail in tails for base in (list_file.parent, root)]
        relative = [Path(os.path.relpath(p, root)).as_posix() for p in readings]
        found = (r for r, p in zip(relative, readings, strict=True) if p.exists() or (root / label_path(r)).exists())
        out.add(next(found, relative[0]))
    return out


def _votes(asset: str, sources: list[tuple[str, str | set[str]]]) -> str | None:
    splits = {s for s, src in sources if (asset in src if isinstance(src, set) else asset.startswith(src + "/"))}
    if len(splits) == 1:
        return splits.pop()
    return None if splits else split_of_path(asset)


def discover(root: Path, config: FolderConfig) -> list[YoloItem]:
    images, texts = _walk(root)
    sources: list[tuple[str, str | set[str]]] = []
    for split, p in config.sources:
        src: str | set[str] = _list_entries(root, p) if p.is_file() else Path(os.path.relpath(p, root)).as_posix()
        sources.append((split, src))
    listed = set().union(*(src for _, src in sources if isinstance(src, set)))
    in_split_dir = {a for a in images for _, src in sources if isinstance(src, str) and a.startswith(src + "/")}
    assets = {
        a: label_path(a)
        for a in sorted(images | listed)
        if a in listed or a in in_split_dir or "images" in a.split("/")[:-1] or label_path(a) in texts
    }
    claimed = set(assets.values())
    for t in sorted(texts - claimed):
        if "labels" in t.split("/")[:-1] and t.rsplit("/", 1)[-1] not in NAMES_FILES:
            assets.setdefault(_image_of_label(t), t)
    return [_item(root, a, label, images, texts, _votes(a, sources)) for a, label in sorted(assets.items())]


def _item(root: Path, asset: str, label: str, images: set[str], texts: set[str], split: str | None) -> YoloItem:
    size = image_size(root / asset) if asset in images else None
    return YoloItem(
        asset=asset,
        text=read_text(root / label) if label in texts else None,
        split=split,
        width=size[0] if size else None,
        height=size[1] if size else None,
        uri=str(root / asset) if asset in images else None,
        file=str(root / label),
    )


def read_folder(path: Path, names: Sequence[str] | None = None) -> tuple[dict[int, str] | None, list[YoloItem]]:
    """(class names, images) of a Darknet dataset folder or its data.yaml; ``names`` overrides the names files."""
    root, yaml_file = root_of(path)
    config = read_config(root.absolute(), yaml_file)
    if names is not None:
        config.names = dict(enumerate(names))
    return config.names, discover(root.absolute(), config)
