"""The fuzz harness of issue 16: structure-aware mutations of valid documents, and the one property they must keep.

A *target* is a valid seed plus a way to run the code under test on a mutated copy of it:

- a file format: a folder of files in that format (the bundled golden files, or what the format's own writer made of
  a small dataset); a case is that folder with one file mutated (`mutate_file`: a JSON value deleted, retyped,
  nested or truncated; an XML element dropped or its text replaced; a text token replaced, a line dropped or
  duplicated; the bytes cut short). The property: ``ab.read`` raises a `FormatError` naming the file (and a line or
  a field), or returns a frame whose rows build (`annotebook.validate` runs and every row has an id and a kind);
  never another exception, and nothing is written.
- a backend's response parser: a list of valid wire annotations, as the platform's simulator encodes them; a case
  is that list with one value mutated (`mutate_json`). The property: `MalformedResponse`, or rows that build a
  canonical frame.

Adding a backend is one line in `BACKENDS` (see `tests/hardening/test_fuzz.py`): its name, a function returning
seed wire annotations, and a function parsing a list of them into rows.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

#: what a value is replaced with: wrong types, edge numbers, hostile text
ODD_VALUES: list[Any] = [
    None, True, False, "", "x", "007", "nan", "1e400", -1, 0, 1, 0.5, 1e308, -1e308, 2**64, -(2**63), 1e20,
    [], {}, [[]], [1, 2], {"a": 1}, "<img src=x onerror=alert(1)>", "../../../../etc/hostname", "/etc/passwd",
    "\u0000", "é" * 3, " cat ", "a\nb",
]  # fmt: skip
#: what a token of a text file is replaced with
ODD_TOKENS = ["", "nan", "inf", "-inf", "-1", "0", "1e400", "1e20", "abc", "0x10", "1,5", "\t", '"', "<", "99999999999"]


@dataclass(frozen=True)
class Backend:
    """A backend's response parser under fuzz: seed wire annotations and a parse of a list of them into rows."""

    name: str
    seed: Callable[[], list[dict[str, Any]]]
    parse: Callable[[list[Any]], list[dict[str, Any]]]


# -- JSON ------------------------------------------------------------------------------------------------------------
def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutate_json(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` (a JSON value) with one value deleted, retyped, nested, duplicated, cut or made huge."""
    doc = copy.deepcopy(doc)
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
    op = draw(st.sampled_from(["delete", "retype", "retype", "nest", "deep", "cut", "scale", "duplicate"]))
    if not path:
        return draw(st.sampled_from(ODD_VALUES)) if op != "deep" else [[[[doc]]]]
    parent, key = _get(doc, path[:-1]), path[-1]
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = draw(st.sampled_from(ODD_VALUES))
    elif op == "nest":
        parent[key] = [value] if not isinstance(value, list) else {"value": value}
    elif op == "deep":
        nested: Any = value
        for _ in range(draw(st.integers(50, 200))):  # deeper: tests/hardening/test_bad_input.py
            nested = [nested]
        parent[key] = nested
    elif op == "cut":
        if isinstance(value, str | list):
            parent[key] = value[: draw(st.integers(0, max(0, len(value) - 1)))]
        else:
            parent[key] = str(value)
    elif op == "scale":
        if isinstance(value, bool) or not isinstance(value, int | float):
            parent[key] = draw(st.sampled_from([1e20, -1e20, 2**70, -0.0]))
        else:
            parent[key] = value * draw(st.sampled_from([-1, 1e6, 1e-9, 2**40]))
    elif isinstance(parent, list):
        parent.insert(key, copy.deepcopy(value))
    else:
        parent[key] = [value, copy.deepcopy(value)]
    return doc


# -- files -----------------------------------------------------------------------------------------------------------
def _xml(draw: st.DrawFn, text: str) -> str:
    root = ET.fromstring(text)
    elements = list(root.iter())
    el = draw(st.sampled_from(elements))
    op = draw(st.sampled_from(["text", "drop", "nest", "clear"]))
    if op == "text":
        el.text = str(draw(st.sampled_from(ODD_VALUES + ODD_TOKENS)))
    elif op == "drop" and el is not root:
        parent = next(p for p in root.iter() if el in list(p))
        parent.remove(el)
    elif op == "nest":
        inner = copy.deepcopy(el)
        el.append(inner)
    else:
        el.clear()
    return ET.tostring(root, encoding="unicode")


def _tokens(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    op = draw(st.sampled_from(["token", "token", "drop", "duplicate", "extra"]))
    if op == "drop":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "extra":
        lines[i] = lines[i] + draw(st.sampled_from([" 0.5", ",0.5", " x", ",", " "]))
    else:
        parts = re.split(r"([,\s]+)", lines[i])
        spots = [j for j, p in enumerate(parts) if p and not re.fullmatch(r"[,\s]+", p)]
        if spots:
            parts[draw(st.sampled_from(spots))] = draw(st.sampled_from(ODD_TOKENS))
        lines[i] = "".join(parts)
    return "\n".join(lines)


@st.composite
def mutate_file(draw: st.DrawFn, folder: Path) -> tuple[Path, bytes]:
    """One file of ``folder`` and its mutated bytes: structure-aware by the file's kind, or cut short."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    target = draw(st.sampled_from(files))
    data = target.read_bytes()
    if draw(st.integers(0, 9)) == 0:  # one in ten: the bytes cut short anywhere
        return target, data[: draw(st.integers(0, max(0, len(data) - 1)))]
    text = data.decode("utf-8-sig")
    suffix = target.suffix.lower()
    if suffix == ".json":
        return target, json.dumps(draw(mutate_json(json.loads(text)))).encode()
    if suffix == ".jsonl":
        lines = [ln for ln in text.split("\n") if ln.strip()]
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = json.dumps(draw(mutate_json(json.loads(lines[i]))))
        return target, "\n".join(lines).encode()
    if suffix == ".xml":
        return target, _xml(draw, text).encode()
    return target, _tokens(draw, text).encode()


TEXT_SUFFIXES = {".json", ".jsonl", ".xml", ".txt", ".csv", ".yaml", ".yml"}
