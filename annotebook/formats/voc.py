"""Pascal VOC XML: one ``<annotation>`` file per image, boxes in ``<object><bndbox>``.

Pixel convention: ``<bndbox>`` holds the VOC devkit's 1-based inclusive pixel indices, so
x0 = (xmin - 1) / width and x1 = xmax / width (a box over a whole 640-wide image is xmin=1, xmax=640).

- Reads a single ``.xml``, a folder of them (searched recursively), or a VOC devkit folder (``Annotations/``,
  ``JPEGImages/``, ``ImageSets/Main/{train,val,test}.txt`` giving ``split``). asset: ``<filename>``, prefixed with
  the XML file's sub-folder of the folder read (the writer mirrors an asset's folders the same way).
- Coordinates may be decimals (read as given). VOC stores whole pixels: box edges and polygon vertices are
  written rounded half up, so a write then read is exact within half a pixel (exact for pixel-aligned values).
- ``pose``, ``truncated``, ``difficult`` and ``occluded`` become attributes when they differ from VOC's defaults
  (``Unspecified``, 0, 0, 0), and CVAT's ``<attributes><attribute><name/><value/>`` pairs become attributes too;
  the writer always writes ``pose``, ``truncated`` and ``difficult`` (the devkit's parsers require ``difficult``),
  ``occluded`` when set and other attributes in CVAT's form, whose values read back as the text they are (``"007"``
  stays ``"007"``, ``"true"`` stays ``"true"``): a number or boolean attribute written from another format reads
  back as text, and the write names it in a `FieldNotKept` warning.
- Keeps (see `annotebook.formats._kept`): score no, split no (a devkit's ImageSets are read, not written), status no,
  author no, attributes as text.
- Polygons: the ``<polygon><x1/><y1/><x2/>...`` element Roboflow and supervision write inside ``<object>``, whose
  vertices are 1-based like the box corners (x = (x1 - 1) / width), written with the polygon's extent as
  ``<bndbox>`` for readers that know only boxes (a tiny ring that whole pixels would close keeps 6 decimals).
  Rotated boxes, multi-part polygons, polylines, keypoints and whole-image rows are refused with a FormatError
  naming them unless ``skip_unsupported=True``. Other elements (``<part>``, ``<actions>``) are not read.
- A missing or zero ``<size>`` is taken from the image beside the file, else a FormatError names the file and
  field. Files with a DOCTYPE (and so any ENTITY) declaration are refused, wherever it is and in any encoding
  (``defusedxml`` with ``forbid_dtd=True``).

Sources: the PASCAL VOC 2012 development kit documentation (section "Annotation"), CVAT's Pascal VOC format page,
supervision ``dataset/formats/pascal_voc.py`` (the polygon extension).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import FormatError
from ._image_size import IMAGE_SUFFIXES, image_size
from ._io import head
from ._registry import FormatSpec, Tables, register_format
from ._tree import write_tree
from ._voc_write import DEFAULTS, tables_to_voc, voc_files

__all__ = ["VocDocument", "load_voc", "parse_voc", "save_voc", "tables_to_voc", "voc_to_tables"]

SPLITS = {"train": "train", "val": "validate", "test": "test"}


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: its name, ``box`` (xmin, ymin, xmax, ymax) or ``points`` (x1, y1, ...) as in the file."""

    name: str
    box: tuple[float, float, float, float] | None
    points: tuple[float, ...] | None
    attributes: dict[str, Any] | None


@dataclass(frozen=True)
class VocDocument:
    """One VOC file: the asset it annotates, its size (None when missing or 0) and objects."""

    file: str
    asset: str | None
    width: int | None
    height: int | None
    objects: list[VocObject] = field(default_factory=list)
    split: str | None = None
    uri: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Parsing one file (pure)


def _parse_xml(raw: bytes, file: str) -> ET.Element:
    """The root element, parsed by ``defusedxml`` with every DTD refused: no entity expansion, no external
    reference, wherever the declaration is in the file and whatever its encoding (expat reads the declaration,
    not a prefix of the bytes)."""
    import defusedxml
    import defusedxml.ElementTree

    try:
        root: ET.Element = defusedxml.ElementTree.fromstring(raw, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        what = "DOCTYPE" if isinstance(exc, defusedxml.DTDForbidden) else "ENTITY"
        raise FormatError(
            f"{what} declarations are refused (entity expansion, external references): {exc}", file=file, field=what
        ) from None
    except ET.ParseError as exc:
        raise FormatError(f"not well-formed XML: {exc}", file=file, line=exc.position[0]) from None
    return root


def _children(node: ET.Element) -> dict[str, str | None]:
    """tag -> stripped text (None when empty) of a node's children; the first of a repeated tag wins."""
    raw = {child.tag: child.text for child in reversed(node)}
    return {tag: (text.strip() or None) if text else None for tag, text in raw.items()}


def _numbers(values: Mapping[str, str | None], tags: Iterable[str], file: str, where: str) -> list[float]:
    tags = list(tags)
    try:
        out = [float(values[t]) for t in tags]  # type: ignore[arg-type]
        if math.isfinite(sum(out)):
            return out
    except (KeyError, TypeError, ValueError):
        pass
    for t in tags:  # say which one is wrong
        text = values.get(t)
        if text is None:
            raise FormatError(f"missing <{t}>", file=file, field=f"{where}.{t}")
        try:
            ok = math.isfinite(float(text))
        except ValueError:
            ok = False
        if not ok:
            raise FormatError(f"expected a finite number, got {text!r}", file=file, field=f"{where}.{t}")
    return [float(values[t]) for t in tags]  # type: ignore[arg-type]


def _size(root: ET.Element, file: str) -> tuple[int | None, int | None]:
    size = root.find("size")
    values = _children(size) if size is not None else {}
    if values.get("width") is None or values.get("height") is None:
        return None, None
    out = []
    for tag, v in zip(("width", "height"), _numbers(values, ("width", "height"), file, "size"), strict=True):
        if v < 0 or not v.is_integer():
            raise FormatError(f"expected a whole number >= 0, got {v}", file=file, field=f"size.{tag}")
        out.append(int(v) or None)  # 0: unknown (LabelImg writes it for unreadable images)
    return (out[0], out[1]) if out[0] and out[1] else (None, None)


def _typed(text: str | None) -> Any:
    """An attribute value: whole numbers and decimals as numbers, true / false as booleans, else the text."""
    if text is None:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


_DEFAULT_TEXTS = {tag: str(value) for tag, value in DEFAULTS.items()}


def _attributes(obj: ET.Element, fields: Mapping[str, str | None]) -> dict[str, Any] | None:
    out = {}
    for tag, default in DEFAULTS.items():
        text = fields.get(tag)
        if text is None or text == _DEFAULT_TEXTS[tag]:
            continue  # the common case, without typing the text
        value = _typed(text)
        if value != default:
            out[tag] = value
    if "attributes" in fields:
        for attribute in obj.iterfind("attributes/attribute"):
            pair = _children(attribute)
            if pair.get("name") is not None:
                out[str(pair["name"])] = pair.get("value")  # text, as the file holds it ("007" stays "007")
    return out or None


def _polygon(node: ET.Element, file: str, where: str) -> tuple[float, ...]:
    values = _children(node)
    n = sum(1 for tag in values if tag[:1] == "x")
    if n < 3 or len(values) != 2 * n:
        raise FormatError(
            f"expected <x1> <y1> ... <xn> <yn> with n >= 3, got {len(values)} values", file=file, field=where
        )
    points = _numbers(values, (f"{axis}{k}" for k in range(1, n + 1) for axis in ("x", "y")), file, where)
    if points[-2:] == points[:2]:
        points = points[:-2]  # a closed ring: the contract keeps rings open
    if len(points) < 6:
        raise FormatError("a polygon needs n >= 3 distinct points", file=file, field=where)
    return tuple(points)


_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def _object(obj: ET.Element, i: int, file: str) -> VocObject:
    where = f"object[{i}]"
    fields = _children(obj)
    name = fields.get("name")
    if name is None:
        raise FormatError("missing <name>", file=file, field=f"{where}.name")
    if "polygon" in fields:
        polygon = _polygon(obj.find("polygon"), file, f"{where}.polygon")  # type: ignore[arg-type]
        return VocObject(name, None, polygon, _attributes(obj, fields))
    box = obj.find("bndbox")
    if box is None:
        raise FormatError("missing <bndbox> (and no <polygon>)", file=file, field=f"{where}.bndbox")
    xmin, ymin, xmax, ymax = _numbers(_children(box), _BOX_TAGS, file, f"{where}.bndbox")
    for lo, hi, tag in ((xmin, xmax, "xmax"), (ymin, ymax, "ymax")):
        if hi < lo - 1:
            raise FormatError(f"{tag} {hi} is left of / above its min {lo}", file=file, field=f"{where}.bndbox.{tag}")
    return VocObject(name, (xmin, ymin, xmax, ymax), None, _attributes(obj, fields))


def parse_voc(data: bytes | str, file: str, folder: str = "") -> VocDocument:
    """One VOC file's content; ``folder`` (the file's sub-folder of the folder read) prefixes its asset.

    >>> doc = parse_voc("<annotation><filename>a.jpg</filename><size><width>640</width><height>480</height>"
    ...                 "</size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>640</xmax>"
    ...                 "<ymax>480</ymax></bndbox></object></annotation>", "a.xml")
    >>> doc.asset, doc.width, doc.objects[0].box
    ('a.jpg', 640, (1.0, 1.0, 640.0, 480.0))
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    root = _parse_xml(raw, file)
    if root.tag != "annotation":
        raise FormatError(f"the root element is <{root.tag}>, not <annotation>", file=file, field="annotation")
    filename = _children(root).get("filename")
    asset = None if filename is None else f"{folder}/{filename}" if folder else filename
    width, height = _size(root, file)
    objects = [_object(obj, i, file) for i, obj in enumerate(root.findall("object"))]
    return VocDocument(file, asset, width, height, objects)


# ---------------------------------------------------------------------------------------------------------------
# Documents <-> tables (pure)


def voc_to_tables(documents: Iterable[VocDocument], dataset: str = "voc") -> Tables:
    """The three tables of parsed VOC documents (each needs its asset and size).

    >>> doc = VocDocument("a.xml", "a.jpg", 640, 480, [VocObject("cat", (1, 1, 640, 480), None, None)])
    >>> voc_to_tables([doc]).annotations[["asset", "id", "x0", "y0", "x1", "y1"]].to_dict("records")
    [{'asset': 'a.jpg', 'id': 'a.jpg#0', 'x0': 0.0, 'y0': 0.0, 'x1': 1.0, 'y1': 1.0}]
    """
    rows: dict[str, list[Any]] = {k: [] for k in ("asset", "label", "kind", "box", "points", "attributes", "split")}
    assets: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if doc.width is None or doc.height is None or doc.asset is None:
            what = "<filename>" if doc.asset is None else "<size> (and no image beside the file to read it from)"
            raise FormatError(f"missing {what}", file=doc.file, field="filename" if doc.asset is None else "size")
        assets.setdefault(doc.asset, _asset_record(doc, dataset))
        for obj in doc.objects:
            box, points = _normalised(obj, doc.width, doc.height)
            for key, value in zip(
                rows,
                (doc.asset, obj.name, "box" if points is None else "polygon", box, points, obj.attributes, doc.split),
                strict=True,
            ):
                rows[key].append(value)
    return Tables(
        annotations=_annotations(rows, dataset),
        assets=schema.assets_frame(list(assets.values())),
        labels=_labels(rows["label"], dataset),
    )


def _normalised(obj: VocObject, w: int, h: int) -> tuple[tuple[float, ...], Any]:
    if obj.points is None:
        assert obj.box is not None
        xmin, ymin, xmax, ymax = obj.box
        return ((xmin - 1) / w, (ymin - 1) / h, xmax / w, ymax / h), None
    p = obj.points
    ring = tuple(v for x, y in zip(p[::2], p[1::2], strict=True) for v in ((x - 1) / w, (y - 1) / h))
    return (math.nan,) * 4, (ring,)


def _asset_record(doc: VocDocument, dataset: str) -> dict[str, Any]:
    assert doc.asset is not None
    name = doc.asset.rsplit("/", 1)[-1]
    return {
        "dataset": dataset,
        "asset": doc.asset,
        "name": name,
        "width": doc.width,
        "height": doc.height,
        "uri": doc.uri,
    }


def _annotations(rows: dict[str, list[Any]], dataset: str) -> pd.DataFrame:
    assets = pd.Series(rows["asset"], dtype=object)
    ids = assets + "#" + assets.groupby(assets, sort=False).cumcount().astype(str) if len(assets) else assets
    box = np.array(rows["box"], dtype=float).reshape(-1, 4)
    return schema.annotations_frame(
        {
            "dataset": [dataset] * len(assets),
            "asset": rows["asset"],
            "id": ids.tolist(),
            "label": rows["label"],
            "kind": rows["kind"],
            "x0": box[:, 0],
            "y0": box[:, 1],
            "x1": box[:, 2],
            "y1": box[:, 3],
            "points": pd.Series(rows["points"], dtype=object),
            "attributes": pd.Series(rows["attributes"], dtype=object),
            "split": rows["split"],
        }
    )


def _labels(names: list[str], dataset: str) -> pd.DataFrame:
    """VOC has no class numbers: labels are numbered 0, 1, ... in name order."""
    unique = sorted(set(names))
    return schema.labels_frame({"dataset": [dataset] * len(unique), "name": unique, "index": list(range(len(unique)))})


# ---------------------------------------------------------------------------------------------------------------
# Files


class _Images:
    """Finds the image a VOC file names: beside it, under the folder read, or in a devkit's ``JPEGImages``."""

    def __init__(self, xml_root: Path, devkit: Path | None):
        beside = [xml_root, xml_root / "images", xml_root / "JPEGImages"]  # "images": conn.export(images=True)
        self.roots = [*beside, *([devkit / "JPEGImages", devkit / "images", devkit] if devkit else [])]
        self.listings: dict[Path, set[str]] = {}

    def _names(self, folder: Path) -> set[str]:
        if folder not in self.listings:
            try:
                self.listings[folder] = set(os.listdir(folder))
            except OSError:
                self.listings[folder] = set()
        return self.listings[folder]

    def find(self, asset: str, beside: Path) -> str | None:
        sub, _, name = asset.rpartition("/")
        for folder in (beside, *(root / sub for root in self.roots)):
            if name in self._names(folder):
                return str(folder / name)
        return None

    def guess(self, folder: str, stem: str, beside: Path) -> str:
        """The asset of a file without ``<filename>``: the image beside it with its stem, else the bare stem."""
        found = sorted(n for n in self._names(beside) if n.rpartition(".")[0] == stem and _is_image(n))
        return "/".join(x for x in (folder, found[0] if found else stem) if x)


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _xml_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.lower().endswith(".xml") and not f.startswith("."):
                path = Path(dirpath, f)
                try:
                    str(path.relative_to(root)).encode("utf-8")
                except UnicodeEncodeError:
                    raise FormatError("file name is not UTF-8", file=str(path), field="name") from None
                out.append(path)
    return out


def _image_sets(devkit: Path) -> dict[str, str | None]:
    """xml stem -> split from ``ImageSets/Main/{train,val,test}.txt``; an id in two lists gets no split."""
    out: dict[str, str | None] = {}
    for stem, split in SPLITS.items():
        listing = devkit / "ImageSets" / "Main" / f"{stem}.txt"
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8", errors="replace").split("\n"):
                key = line.split()[0] if line.split() else None
                if key is not None:
                    out[key] = split if out.get(key, split) == split else None
    return out


def _read(path: Path, xml_root: Path, images: _Images, splits: Mapping[str, str | None]) -> VocDocument:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    folder = Path(os.path.relpath(path.parent, xml_root)).as_posix().strip(".")
    doc = parse_voc(data, str(path), folder)
    asset = doc.asset or images.guess(folder, path.stem, path.parent)
    uri = images.find(asset, path.parent)
    size = (doc.width, doc.height) if doc.width else (image_size(Path(uri)) if uri else None) or (None, None)
    return replace(doc, asset=asset, width=size[0], height=size[1], uri=uri, split=splits.get(path.stem))


def load_voc(path: str | Path, dataset: str | None = None) -> Tables:
    """Read a VOC ``.xml`` file, a folder of them, or a devkit folder (``Annotations/``) into the three tables.

    >>> tables = load_voc("VOCdevkit/VOC2012")            # doctest: +SKIP
    """
    path = Path(path).absolute()
    devkit = path if path.is_dir() and (path / "Annotations").is_dir() else None
    if path.is_file():
        xml_root, files = path.parent, [path]
    elif path.is_dir():
        xml_root = path / "Annotations" if devkit else path
        files = _xml_files(xml_root)
    else:
        raise FormatError("no such file or folder", file=str(path))
    images, splits = _Images(xml_root, devkit), _image_sets(devkit) if devkit else {}
    return voc_to_tables((_read(f, xml_root, images, splits) for f in files), dataset or path.stem)


def save_voc(tables: Tables, path: str | Path, skip_unsupported: bool = False) -> list[Path]:
    """Write one VOC ``.xml`` per asset under the folder ``path`` (or the one file ``path`` ending in ``.xml``).

    >>> save_voc(tables, "out/voc")                       # doctest: +SKIP
    """
    path = Path(path)
    files = voc_files(tables, skip_unsupported=skip_unsupported, file=str(path))
    if path.suffix.lower() == ".xml":
        if len(files) != 1:
            raise FormatError(f"a .xml file holds one image, and there are {len(files)}; pass a folder", file=str(path))
        return write_tree(path.parent, ((path.name, text) for _, text in files))
    return write_tree(path, files)


_ROOT = re.compile(rb"<annotation[\s>]")


def _first_xml(folder: Path, budget: int = 2000) -> Path | None:
    """The first ``.xml`` file under ``folder``, looking at no more than ``budget`` entries (sniffing stays cheap)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.lower().endswith(".xml") and not f.startswith("."):
                return Path(dirpath, f)
        budget -= len(filenames) + len(dirnames)
        if budget <= 0:
            return None
    return None


def _sniff_voc(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".xml" and _ROOT.search(head(path, 1024)) is not None
    if not path.is_dir():
        return False
    if (path / "Annotations").is_dir():
        return True
    first = _first_xml(path)
    return first is not None and _ROOT.search(head(first, 1024)) is not None


register_format(
    FormatSpec(
        name="voc",
        load=load_voc,
        save=save_voc,
        sniff=_sniff_voc,
        description="Pascal VOC XML: one <annotation> per image, 1-based inclusive pixel <bndbox>",
        aliases=("pascal_voc", "pascalvoc"),
    )
)
