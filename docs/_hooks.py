"""MkDocs hooks: tables generated from the code, so the pages cannot drift from what annotebook does. (The notebooks
come in through the ``docs/notebooks`` link to ``notebooks/``, rendered by mkdocs-jupyter with their saved outputs.)

- ``<!-- formats-table -->`` becomes, for every registered format, what a write then read keeps: each row kind and
  each optional field, found by writing a small table to a temporary folder and reading it back (`format_table`).
- ``<!-- capabilities: NAME -->`` becomes the backend's declared `Capabilities`, in words.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

KIND_ROWS: dict[str, dict[str, Any]] = {
    "box": {"kind": "box", "label": "cat", "x0": 0.25, "y0": 0.25, "x1": 0.75, "y1": 0.5},
    "rotated box": {"kind": "box", "label": "cat", "x0": 0.25, "y0": 0.25, "x1": 0.75, "y1": 0.5, "rotation": 30.0},
    "polygon": {"kind": "polygon", "label": "cat", "points": ((0.25, 0.25, 0.75, 0.25, 0.5, 0.75),)},
    "polygon with a hole": {
        "kind": "polygon",
        "label": "cat",
        "points": ((0.125, 0.125, 0.875, 0.125, 0.875, 0.875, 0.125, 0.875), (0.375, 0.375, 0.625, 0.375, 0.5, 0.625)),
    },
    "polyline": {"kind": "polyline", "label": "road", "points": ((0.125, 0.125, 0.5, 0.5, 0.875, 0.25),)},
    "keypoints": {"kind": "keypoints", "label": "person", "points": ((0.25, 0.25, 0.5, 0.5),), "visibility": (2, 2)},
    "tag": {"kind": "tag", "label": "outdoor", "value": True},
    "caption": {"kind": "caption", "id": "c1", "text": "a cat on a mat"},
    "qa": {"kind": "qa", "text": "what is on the mat?", "answer": "a cat"},
}
FIELDS: dict[str, tuple[str, Any]] = {
    "attributes": ("attributes", {"occluded": True}),
    "score": ("score", 0.875),
    "author": ("author", "model:v1"),
    "status": ("status", "Completed"),
    "split": ("split", "train"),
}


def _tables(row: dict[str, Any], folder: Path) -> Any:
    from PIL import Image

    from annotebook import schema
    from annotebook.formats import Tables

    image = folder / "images" / "a.jpg"
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), "white").save(image)
    anns = schema.annotations_frame([{"dataset": "d", "asset": "a.jpg", **row}])
    assets = schema.assets_frame(
        [{"dataset": "d", "asset": "a.jpg", "name": "a.jpg", "width": 64, "height": 48, "uri": str(image)}]
    )
    names = [row["label"]] if isinstance(row.get("label"), str) else []
    labels = schema.labels_frame(
        [{"dataset": "d", "name": n, "index": 0, "keypoints": ("a", "b") if row["kind"] == "keypoints" else None}
         for n in names]
    )  # fmt: skip
    return Tables(anns, assets, labels)


def _round_trip(fmt: str, row: dict[str, Any]) -> Any:
    """The rows read back after writing ``row`` in ``fmt``; None when the writer refuses it."""
    from annotebook.errors import AnnotebookError
    from annotebook.formats import find_format

    spec = find_format(Path("x"), fmt)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables = _tables(row, folder)
        out = folder / ("out.json" if fmt in ("coco", "labelstudio") else "out")
        if fmt == "vi_jsonl":
            out = folder / "out.jsonl"
        try:
            spec.save(tables, out)
        except (AnnotebookError, ValueError):
            return None
        beside = out if out.is_dir() else out.parent  # readers that need the image's size find it beside
        if not (beside / "a.jpg").exists():
            shutil.copy(folder / "images" / "a.jpg", beside / "a.jpg")
        return spec.load(out).annotations


def _same(kind: str, row: dict[str, Any], back: Any) -> bool:
    want = row["kind"]
    got = back[back["kind"] == want]
    if len(got) != 1:
        return False
    r = got.iloc[0]
    if want == "box":
        if not all(math.isclose(float(r[c]), row[c], abs_tol=0.02) for c in ("x0", "y0", "x1", "y1")):
            return False
        return math.isclose(float(r["rotation"] or 0.0), row.get("rotation", 0.0), abs_tol=0.5)
    if "points" in row:
        return len(r["points"]) == len(row["points"])
    return True


def format_table() -> str:
    """Markdown: a row per format, a column per kind and field; kept, refused (a named error) or dropped."""
    from annotebook.formats import (
        FORMATS,
        _builtin,  # noqa: F401  (registers the bundled formats)
    )

    specs = list({s.name: s for s in FORMATS.values()}.values())
    head = ["format", *KIND_ROWS, *FIELDS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for spec in specs:
        cells = [f"`{spec.name}`"]
        for kind, row in KIND_ROWS.items():
            back = _round_trip(spec.name, row)
            cells.append("refused" if back is None else "kept" if _same(kind, row, back) else "dropped")
        for column, value in FIELDS.values():
            back = _round_trip(spec.name, {**KIND_ROWS["box"], column: value})
            kept = back is not None and len(back) == 1 and back.iloc[0][column] == value
            cells.append("kept" if kept else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: what each declared capability means for a user (annotebook.backends.base.Capabilities)
MEANING = {
    "update": "a row is patched in place (else: create + delete, or a whole asset replaced)",
    "create": "single rows can be created (else: only through imports)",
    "replace_per_asset": "a write replaces every row of an asset",
    "batch_size": "rows per request (empty: everything in one transaction)",
    "client_ids": "annotebook chooses new rows' ids, so a retried create cannot duplicate",
    "revisions": "how a row changed elsewhere is seen: a revision, or a re-read of its content (none)",
    "statuses": "review statuses are read and written",
    "creates_labels": "an unknown label is created, else the row is refused before any request",
    "atomic": "a push lands whole or not at all",
    "conditional_write": "the platform itself refuses a write whose row moved",
    "remote": "reached over HTTP",
    "unit": "what one replace writes",
    "export_formats": "formats of `conn.export(...)` run by the platform",
}


def capabilities(name: str) -> str:
    """Markdown: the backend's declared capabilities, one line each, with what each means."""
    import dataclasses
    import importlib

    from annotebook.connection import BACKENDS

    module, cls = BACKENDS[name][0].split(":")
    backend = getattr(importlib.import_module(module), cls)
    caps = backend.capabilities
    lines = ["| capability | value | meaning |", "| --- | --- | --- |"]
    lines.append(f"| strategy | `{caps.strategy}` | how the sync engine writes a push |")
    for verb, method in (("`conn.import_files(...)`", "import_files"), ("`conn.export(...)`", "export")):
        there = "yes" if callable(getattr(backend, method, None)) else "no: `NotSupported`"
        lines.append(f"| {verb} | {there} | |")
    for f in dataclasses.fields(caps):
        value = getattr(caps, f.name)
        shown = {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
        shown = ", ".join(value) if isinstance(value, tuple) else shown
        lines.append(f"| `{f.name}` | {shown if shown not in ('', None) else '-'} | {MEANING.get(f.name, '')} |")
    return "\n".join(lines)


# -- MkDocs events ---------------------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    import re

    if "<!-- formats-table -->" in markdown:
        markdown = markdown.replace("<!-- formats-table -->", format_table())
    return re.sub(r"<!-- capabilities: (\w+) -->", lambda m: capabilities(m.group(1)), markdown)
