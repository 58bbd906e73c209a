"""Datature Vi JSONL: phrase grounding (a caption with grounded phrases and their boxes) and VQA, one JSON object
per line.

Pixel convention: none; boxes are [xmin, ymin, xmax, ymax] normalised to [0, 1] of the image, like our tables.

Two dialects are read, detected per line; the upload form is written.

* Upload form (Vi SDK "Annotations" page, "Annotation formats")::

    {"asset_id": "cat.jpg", "caption": "A cat sitting on a couch",
     "grounded_phrases": [{"phrase": "cat", "bbox": [0.1, 0.2, 0.5, 0.7]}]}
    {"asset_id": "cat.jpg", "contents": {"interactions": [{"question": "...", "answer": "..."}]}}

* Export form (the Vi SDK's dataset loader, ``vi.dataset.loaders.types.annotations``; camelCase, tagged by type)::

    {"id": "...", "asset": {"type": "Image", "filename": "cat.jpg", "width": 640, "height": 480},
     "contents": {"type": "PhraseGrounding", "caption": "...", "groundedPhrases": [{"phrase": "cat",
                  "startTokenIndex": 1, "endTokenIndex": 2, "bounds": [[0.1, 0.2, 0.5, 0.7]]}]},
     "category": "..."}
    ... "contents": {"type": "Vqa", "interactions": [{"order": 0, "question": "...", "answer": "..."}]}

Rows: a caption row per grounding record (``text`` = caption, ``label`` = the export form's ``category``), one
grounding row per box (``parent`` = the caption row's id, ``text`` = the phrase, ``span_start``/``span_end`` its
character span in the caption, checked to spell the phrase), a qa row per interaction (``text`` = question).

Spans. The export form counts whitespace-separated tokens of the caption (0-based ``startTokenIndex``); the span
starts at that token and runs for the phrase's length. The SDK does not say whether the indices count tokens or
characters, so a start that fits as a character offset (and not as a token) is read as one; a phrase found at
neither is a FormatError naming the line. The upload form has no span: each phrase is the first occurrence of its
text at or after the previous phrase's start (else the first anywhere; a phrase repeated right after itself is
another box of the same occurrence). Where that rule would not give back a row's span, the writer adds
``"span": [start, end]`` (character offsets) to that phrase: an annotebook extension, written only then. Likewise
``"category"`` is written only for a caption row with a label, and ``"tag"`` (the phrase's tag name, our extension)
only for a grounding row with a label; both are read back into ``label``.

Reading a folder reads every ``*.jsonl`` in it (the Vi export's ``training/``, ``validation/`` and ``dump/``
folders set ``split`` to train / validate / none).

Sources: Vi SDK "Annotations" (https://vi.developers.datature.com/docs/vi-sdk-annotations), Vi "Upload
Annotations" (https://vi.developers.datature.com/docs/upload-annotations), ``vi-sdk`` 0.1.0b7
``vi/dataset/loaders/types/annotations.py`` and ``vi/dataset/loaders/utils/visualize.py``.

Keeps (`annotebook.formats._kept`, a write warns about the rest): score, split, status, author and attributes no.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import FormatError
from ._io import head, read_text, write_files
from ._registry import FormatSpec, Tables, register_format
from ._rows import carried, dataset_name, file_name, is_missing, number, records, size_of, uri_beside

__all__ = ["load_vi_jsonl", "save_vi_jsonl", "tables_to_vi_jsonl", "vi_jsonl_to_tables"]

SPLIT_FOLDERS = {
    "training": "train",
    "train": "train",
    "validation": "validate",
    "validate": "validate",
    "test": "test",
}
_TOKEN = re.compile(r"\S+")


@dataclass
class _Builder:
    """Rows, assets and labels gathered line by line."""

    dataset: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def row_id(self, asset: str, own: str | None = None) -> str:
        n = self.counts[asset] = self.counts.get(asset, -1) + 1
        return own if own is not None else f"{asset}#{n}"

    def add(self, asset: str, own_id: str | None = None, **values: Any) -> str:
        rid = self.row_id(asset, own_id)
        self.rows.append({"dataset": self.dataset, "asset": asset, "id": rid, **values})
        return rid

    def asset(self, asset: str, **values: Any) -> None:
        row = self.assets.setdefault(
            asset, {"dataset": self.dataset, "asset": asset, "name": asset.replace("\\", "/").rsplit("/", 1)[-1]}
        )
        row.update({k: v for k, v in values.items() if v is not None})


@dataclass
class _Where:
    file: str
    line: int

    def error(self, message: str, field: str) -> FormatError:
        return FormatError(message, file=self.file, line=self.line, field=field)


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], at: _Where, path: str) -> Any:
    if key not in obj:
        raise at.error(f"missing key {key!r}", f"{path}{key}")
    v = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        raise at.error(f"expected {'/'.join(k.__name__ for k in kinds)}, got {type(v).__name__}", f"{path}{key}")
    return v


def _box(v: Any, at: _Where, path: str) -> tuple[float, float, float, float]:
    """A [xmin, ymin, xmax, ymax] box, or 4 [x, y] corner pairs (their extent)."""
    if isinstance(v, list) and len(v) == 4 and all(isinstance(p, list) and len(p) == 2 for p in v):
        xs = [number(p[0], file=at.file, line=at.line, field=f"{path}[{i}][0]") for i, p in enumerate(v)]
        ys = [number(p[1], file=at.file, line=at.line, field=f"{path}[{i}][1]") for i, p in enumerate(v)]
        return (min(xs), min(ys), max(xs), max(ys))
    if not isinstance(v, list) or len(v) != 4:
        raise at.error(f"a box is [xmin, ymin, xmax, ymax], got {v!r}", path)
    x0, y0, x1, y1 = (number(x, file=at.file, line=at.line, field=f"{path}[{i}]") for i, x in enumerate(v))
    if x1 < x0 or y1 < y0:
        raise at.error(f"xmax/ymax is less than xmin/ymin in {v!r}", path)
    return (x0, y0, x1, y1)


def _token_span(caption: str, phrase: str, start: int, at: _Where, path: str) -> tuple[int, int]:
    """The character span of ``phrase`` given its start token (or, failing that, its start character)."""
    tokens = [m.start() for m in _TOKEN.finditer(caption)]
    for c in ([tokens[start]] if 0 <= start < len(tokens) else []) + ([start] if 0 <= start <= len(caption) else []):
        if caption[c : c + len(phrase)] == phrase:
            return (c, c + len(phrase))
    raise at.error(f"phrase {phrase!r} is not at token (or character) {start} of the caption {caption!r}", path)


def _search_span(
    caption: str, phrase: str, prev: tuple[str, tuple[int, int]] | None, at: _Where | None, path: str
) -> tuple[int, int]:
    """The upload form's rule: the first occurrence at or after the previous phrase's start; a repeat is the same."""
    if prev is not None and prev[0] == phrase:
        return prev[1]
    cursor = prev[1][0] if prev is not None else 0
    pos = caption.find(phrase, cursor)
    if pos < 0:
        pos = caption.find(phrase)
    if pos < 0 or not phrase:
        if at is None:
            return (-1, -1)
        raise at.error(f"phrase {phrase!r} does not occur in the caption {caption!r}", path)
    return (pos, pos + len(phrase))


def _explicit_span(v: Any, caption: str, phrase: str, at: _Where, path: str) -> tuple[int, int]:
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    if not ok or caption[v[0] : v[1]] != phrase or v[0] < 0:
        raise at.error(f"span {v!r} does not spell the phrase {phrase!r} in the caption", path)
    return (v[0], v[1])


def _grounding(b: _Builder, asset: str, caption: str, caption_id: str, at: _Where, upload: bool, phrases: list) -> None:
    path = "grounded_phrases" if upload else "contents.groundedPhrases"
    prev: tuple[str, tuple[int, int]] | None = None
    for i, g in enumerate(phrases):
        p = f"{path}[{i}]"
        if not isinstance(g, dict):
            raise at.error(f"expected an object, got {type(g).__name__}", p)
        phrase = _get(g, "phrase", str, at, f"{p}.")
        if "span" in g:
            span = _explicit_span(g["span"], caption, phrase, at, f"{p}.span")
        elif "startTokenIndex" in g or "start_token_index" in g:
            k = "startTokenIndex" if "startTokenIndex" in g else "start_token_index"
            span = _token_span(caption, phrase, _get(g, k, int, at, f"{p}."), at, f"{p}.{k}")
        else:
            span = _search_span(caption, phrase, prev, at, f"{p}.phrase")
        prev = (phrase, span)
        if "bbox" in g:
            boxes = [_box(g["bbox"], at, f"{p}.bbox")]
        else:
            bounds = _get(g, "bounds", list, at, f"{p}.")
            if len(bounds) == 4 and all(isinstance(v, list) and len(v) == 2 for v in bounds):
                boxes = [_box(bounds, at, f"{p}.bounds")]  # one box as 4 corner pairs
            else:
                boxes = [_box(v, at, f"{p}.bounds[{j}]") for j, v in enumerate(bounds)]
        tag = g.get("tag")
        if tag is not None and not isinstance(tag, str):
            raise at.error(f"expected a string, got {type(tag).__name__}", f"{p}.tag")
        for x0, y0, x1, y1 in boxes:
            b.add(
                asset,
                kind="grounding",
                label=tag,
                text=phrase,
                parent=caption_id,
                span_start=span[0],
                span_end=span[1],
                x0=x0,
                y0=y0,
                x1=x1,
                y1=y1,
            )


def _interactions(b: _Builder, asset: str, items: Any, at: _Where, path: str) -> None:
    if not isinstance(items, list):
        raise at.error(f"expected a list, got {type(items).__name__}", path)
    parsed = []
    for i, q in enumerate(items):
        if not isinstance(q, dict):
            raise at.error(f"expected an object, got {type(q).__name__}", f"{path}[{i}]")
        question = _get(q, "question", str, at, f"{path}[{i}].")
        answer = _get(q, "answer", str, at, f"{path}[{i}].")
        order = q.get("order", i)
        if isinstance(order, bool) or not isinstance(order, int):
            raise at.error(f"expected an integer, got {order!r}", f"{path}[{i}].order")
        parsed.append((order, i, question, answer))
    for _, _, question, answer in sorted(parsed):
        b.add(asset, kind="qa", text=question, answer=answer)


def _upload_line(b: _Builder, obj: dict[str, Any], at: _Where) -> None:
    asset = _get(obj, "asset_id", (str, int), at, "")
    asset = str(asset)
    b.asset(asset)
    if "contents" in obj:
        contents = _get(obj, "contents", dict, at, "")
        _interactions(b, asset, _get(contents, "interactions", list, at, "contents."), at, "contents.interactions")
    if "caption" in obj or "grounded_phrases" in obj:
        caption = _get(obj, "caption", str, at, "")
        label = obj.get("category")
        cid = b.add(asset, kind="caption", text=caption, label=label if isinstance(label, str) else None)
        phrases = _get(obj, "grounded_phrases", list, at, "") if "grounded_phrases" in obj else []
        _grounding(b, asset, caption, cid, at, True, phrases)
    elif "contents" not in obj:
        raise at.error("an upload-form line needs a caption or contents.interactions", "caption")


def _export_line(b: _Builder, obj: dict[str, Any], at: _Where, root: Path | None) -> None:
    a = _get(obj, "asset", dict, at, "")
    asset = _get(a, "filename", str, at, "asset.")
    w, h = (
        size_of(a.get("width"), a.get("height"), file=at.file, line=at.line, field="asset")
        if "width" in a or "height" in a
        else (None, None)
    )
    uri = next((str(a[k]) for k in ("filepath", "url") if isinstance(a.get(k), str) and a[k]), None)
    b.asset(asset, width=w, height=h, uri=uri or (uri_beside(root, asset) if root else None))
    contents = _get(obj, "contents", dict, at, "")
    kind = contents.get("type")
    own = obj.get("id")
    own_id = None if own is None or isinstance(own, bool) else str(own)
    if kind == "Vqa":
        _interactions(b, asset, _get(contents, "interactions", list, at, "contents."), at, "contents.interactions")
    elif kind == "PhraseGrounding":
        caption = _get(contents, "caption", str, at, "contents.")
        label = obj.get("category")
        cid = b.add(asset, own_id, kind="caption", text=caption, label=label if isinstance(label, str) else None)
        phrases = _get(contents, "groundedPhrases", list, at, "contents.")
        _grounding(b, asset, caption, cid, at, False, phrases)
    else:
        raise at.error(f"unknown contents type {kind!r} (expected PhraseGrounding or Vqa)", "contents.type")


def _line(b: _Builder, text: str, at: _Where, root: Path | None) -> None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise at.error(f"not JSON: {exc.msg} (column {exc.colno})", "json") from None
    except RecursionError:
        raise at.error("JSON nested too deeply to read", "json") from None
    if not isinstance(obj, dict):
        raise at.error(f"expected one JSON object per line, got {type(obj).__name__}", "json")
    if "asset_id" in obj:
        _upload_line(b, obj, at)
    elif "asset" in obj or "contents" in obj:
        _export_line(b, obj, at, root)
    else:
        raise at.error("neither the upload form (asset_id) nor the export form (asset, contents)", "asset_id")


def vi_jsonl_to_tables(
    texts: str | Mapping[str, str],
    *,
    dataset: str = "vi",
    root: Path | None = None,
    splits: Mapping[str, str] | None = None,
) -> Tables:
    """The tables of Vi JSONL text, or of ``{file name: text}``; ``splits`` maps a file name to its split.

    >>> t = vi_jsonl_to_tables('{"asset_id": "a.jpg", "caption": "a cat", '
    ...                        '"grounded_phrases": [{"phrase": "cat", "bbox": [0, 0, 0.5, 0.5]}]}')
    >>> t.annotations[["kind", "text", "span_start", "span_end", "x1"]].values.tolist()
    [['caption', 'a cat', <NA>, <NA>, nan], ['grounding', 'cat', 2, 5, 0.5]]
    """
    files = {"<jsonl>": texts} if isinstance(texts, str) else dict(texts)
    b = _Builder(dataset)
    for file, text in files.items():
        start = len(b.rows)
        for i, line in enumerate(text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")):
            if line.strip():
                _line(b, line, _Where(file, i + 1), root)
        split = (splits or {}).get(file)
        for r in b.rows[start:]:
            r["split"] = split
    labels = list(dict.fromkeys(r["label"] for r in b.rows if r.get("label")))
    return Tables(
        annotations=schema.annotations_frame(b.rows),
        assets=schema.assets_frame(list(b.assets.values())),
        labels=schema.labels_frame([{"dataset": dataset, "name": n, "index": i} for i, n in enumerate(labels)]),
    )


def _jsonl_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if p.is_file() and not p.name.startswith("."))
    return [path]


def load_vi_jsonl(path: str | Path, *, dataset: str | None = None) -> Tables:
    """Read a Vi JSONL file, or a folder of them (a Vi export: training/, validation/, dump/)."""
    path = Path(path)
    files = _jsonl_files(path)
    if not files:
        raise FormatError("no .jsonl file in this folder", file=str(path))
    root = path if path.is_dir() else path.parent
    splits = {}
    for f in files:
        parts = f.relative_to(root).parts[:-1] if path.is_dir() else ()
        found = [SPLIT_FOLDERS[p.lower()] for p in parts if p.lower() in SPLIT_FOLDERS]
        if found:
            splits[str(f)] = found[0]
    texts = {str(f): read_text(f) for f in files}
    return vi_jsonl_to_tables(texts, dataset=dataset or dataset_name(path), root=root, splits=splits)


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _phrases(caption: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The grounded phrases of one caption, in span order, with "span" only where the upload rule needs it."""
    rows = sorted(rows, key=lambda r: (_int(r.get("span_start")), _int(r.get("span_end"))))
    out: list[dict[str, Any]] = []
    prev: tuple[str, tuple[int, int]] | None = None
    for r in rows:
        phrase = "" if r.get("text") is None else str(r["text"])
        item: dict[str, Any] = {"phrase": phrase, "bbox": [float(r[k]) for k in ("x0", "y0", "x1", "y1")]}
        if r.get("label") is not None:
            item["tag"] = str(r["label"])
        span = (_int(r.get("span_start")), _int(r.get("span_end")))
        if span[0] >= 0 and caption[span[0] : span[1]] != phrase:
            raise FormatError(
                f"row {r['id']}: span {span} does not spell {phrase!r} in its caption", field="span_start"
            )
        if span[0] < 0:
            span = _search_span(caption, phrase, prev, None, "")  # no span given: the reader's own rule
            if span[0] < 0:
                raise FormatError(f"row {r['id']}: phrase {phrase!r} does not occur in its caption", field="text")
        elif _search_span(caption, phrase, prev, None, "") != span:
            item["span"] = [span[0], span[1]]
        prev = (phrase, span)
        out.append(item)
    return out


def _int(v: Any) -> int:
    return -1 if is_missing(v) else int(v)


def _writable(anns: pd.DataFrame, skip: bool) -> pd.DataFrame:
    captions = set(anns.loc[anns["kind"] == "caption", "id"])
    ok = [
        k in ("caption", "qa") or (k == "grounding" and p in captions)
        for k, p in zip(anns["kind"], anns["parent"], strict=True)
    ]
    return carried(
        anns,
        ok,
        what="Vi JSONL",
        why="it holds captions, groundings of a caption in the frame, and qa only",
        skip=skip,
    )


def tables_to_vi_jsonl(tables: Tables, *, skip_unsupported: bool = False) -> str:
    """The upload form, one line per caption (with its grounded phrases) and one per asset's qa rows."""
    anns = _writable(tables.annotations, skip_unsupported)
    names = {r["asset"]: file_name(r["asset"], r.get("name")) for r in records(tables.assets[["asset", "name"]])}
    rows = records(anns)
    by_parent: dict[str, list[dict[str, Any]]] = {}
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "grounding":
            by_parent.setdefault(r["parent"], []).append(r)
        by_asset.setdefault(r["asset"], []).append(r)
    lines: list[str] = []
    for asset, members in by_asset.items():
        lines += _asset_lines(names.get(asset) or file_name(asset, None), members, by_parent)
    return "".join(line + "\n" for line in lines)


def _asset_lines(asset_id: str, rows: Iterable[dict[str, Any]], by_parent: Mapping[str, list]) -> list[str]:
    out, qa = [], []
    for r in rows:
        if r["kind"] == "caption":
            caption = "" if r.get("text") is None else str(r["text"])
            obj: dict[str, Any] = {
                "asset_id": asset_id,
                "caption": caption,
                "grounded_phrases": _phrases(caption, by_parent.get(r["id"], [])),
            }
            if r.get("label") is not None:
                obj["category"] = str(r["label"])
            out.append(json.dumps(obj, ensure_ascii=False))
        elif r["kind"] == "qa":
            qa.append({"question": _s(r.get("text")), "answer": _s(r.get("answer"))})
    if qa:
        out.append(json.dumps({"asset_id": asset_id, "contents": {"interactions": qa}}, ensure_ascii=False))
    return out


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def save_vi_jsonl(tables: Tables, path: str | Path, **options: Any) -> list[Path]:
    """Write the upload form to ``path`` (a ``.jsonl`` file, or ``annotations.jsonl`` in a folder)."""
    path = Path(path)
    text = tables_to_vi_jsonl(tables, **options)
    if path.suffix.lower() == ".jsonl":
        return write_files(path.parent, {path.name: text})
    return write_files(path, {"annotations.jsonl": text})


def _sniff(path: Path) -> bool:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))[:1] or sorted(path.glob("*/*/*.jsonl"))[:1]
        return bool(files) and _sniff(files[0])
    if path.suffix.lower() != ".jsonl":
        return False
    first = head(path, 4096).split(b"\n", 1)[0]
    return b'"asset_id"' in first or (b'"asset"' in first and b'"contents"' in first) or not first


register_format(
    FormatSpec(
        name="vi_jsonl",
        load=load_vi_jsonl,
        save=save_vi_jsonl,
        sniff=_sniff,
        description="Datature Vi JSONL: phrase grounding and VQA (upload and export forms)",
        aliases=("vijsonl",),
    )
)
