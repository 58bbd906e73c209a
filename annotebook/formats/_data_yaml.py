"""The subset of YAML a YOLO ``data.yaml`` uses, read and written without a YAML dependency.

PyYAML is in some environments only as a dependency of Jupyter, so annotebook does not rely on it. A data.yaml
as Ultralytics, Roboflow and supervision write it needs: top-level ``key: value`` pairs; plain, single- and
double-quoted scalars; flow lists ``[a, b]`` and maps ``{0: a}``; block lists (``- a``) and maps (``0: a``) one
level below a key; comments. Only the keys asked for are parsed; any other key's block (Ultralytics' ``download: |``
scripts, nested maps) is skipped unread.

>>> parse_data_yaml("train: images/train  # comment\\nnames:\\n  0: person\\n  1: 'traffic light'\\n", "d.yaml")
{'train': 'images/train', 'names': {0: 'person', 1: 'traffic light'}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..errors import FormatError

__all__ = ["DATA_YAML_KEYS", "dump_data_yaml", "parse_data_yaml", "quote"]

DATA_YAML_KEYS = ("path", "train", "val", "test", "names", "nc", "kpt_shape")

_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def parse_data_yaml(text: str, file: str, keys: Iterable[str] = DATA_YAML_KEYS) -> dict[str, Any]:
    """The top-level ``keys`` present in a data.yaml text, with their values."""
    wanted, out = set(keys), {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = _strip_comment(lines[i])
        start, i = i, i + 1
        if not line.strip() or line.startswith("---"):
            continue
        if line[0] in " \t-":
            raise FormatError("expected a top-level 'key: value' line", file=file, line=start + 1)
        key, sep, rest = _split_pair(line)
        if not sep:
            raise FormatError("expected 'key: value'", file=file, line=start + 1, field=key.strip())
        block_end = _block_end(lines, i)
        name = str(_scalar(key.strip()))
        if name in wanted:
            out[name] = _value(rest.strip(), lines[i:block_end], file=file, line=start + 1, field=name)
        i = block_end
    return out


def _block_end(lines: list[str], i: int) -> int:
    """Index past the lines that belong to the key above ``i``: indented, blank, comments, or ``- item`` lines."""
    while i < len(lines):
        line = lines[i]
        if line.strip() and not line.lstrip().startswith("#") and line[0] not in " \t-":
            break
        i += 1
    return i


def _value(rest: str, block: list[str], *, file: str, line: int, field: str) -> Any:
    try:
        if rest[:1] in ("|", ">"):
            return None  # a block scalar (a script); no key annotebook reads is one
        if rest:
            return _flow(rest)
        items = [_strip_comment(x).strip() for x in block]
        items = [x for x in items if x]
        if not items:
            return None
        if all(x.startswith("-") for x in items):
            return [_flow(x[1:].strip()) for x in items]
        pairs = [_split_pair(x) for x in items]
        if not all(sep for _, sep, _ in pairs):
            raise ValueError("expected '- item' or 'key: value' lines")
        return {_scalar(k.strip()): _flow(v.strip()) for k, sep, v in pairs}
    except ValueError as exc:
        raise FormatError(str(exc), file=file, line=line, field=field) from None


def _flow(text: str) -> Any:
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(f"unclosed flow list {text!r}")
        return [_scalar(x.strip()) for x in _split_commas(text[1:-1])]
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError(f"unclosed flow map {text!r}")
        pairs = [_split_pair(x.strip()) for x in _split_commas(text[1:-1])]
        return {_scalar(k.strip()): _scalar(v.strip()) for k, _, v in pairs}
    return _scalar(text)


def _scalar(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _quoted_spans(text: str) -> list[bool]:
    """For each character: is it inside a quoted scalar?"""
    inside, quote_char, out = False, "", []
    for ch in text:
        if inside and ch == quote_char:
            inside = False
            out.append(True)
            continue
        if not inside and ch in "'\"":
            inside, quote_char = True, ch
        out.append(inside)
    return out


def _strip_comment(line: str) -> str:
    quoted = _quoted_spans(line)
    for j, ch in enumerate(line):
        if ch == "#" and not quoted[j] and (j == 0 or line[j - 1] in " \t"):
            return line[:j].rstrip()
    return line.rstrip()


def _split_pair(text: str) -> tuple[str, str, str]:
    """``key: value`` split at the first ``:`` outside quotes that ends the text or is followed by a space."""
    quoted = _quoted_spans(text)
    for j, ch in enumerate(text):
        if ch == ":" and not quoted[j] and (j + 1 == len(text) or text[j + 1] in " \t"):
            return text[:j], ":", text[j + 1 :]
    return text, "", ""


def _split_commas(text: str) -> list[str]:
    quoted = _quoted_spans(text)
    parts, start = [], 0
    for j, ch in enumerate(text):
        if ch == "," and not quoted[j]:
            parts.append(text[start:j])
            start = j + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def quote(text: str) -> str:
    """``text`` as a single-quoted YAML scalar."""
    return "'" + text.replace("'", "''") + "'"


def dump_data_yaml(splits: dict[str, list[str]], names: dict[int, str]) -> str:
    """A data.yaml: one key per split (a folder, or a flow list of folders), then ``nc`` and ``names`` as a map."""
    lines = ["# YOLO dataset written by annotebook; paths are relative to this file's folder"]
    for key, dirs in splits.items():
        value = quote(dirs[0]) if len(dirs) == 1 else "[" + ", ".join(quote(d) for d in dirs) + "]"
        lines.append(f"{key}: {value}")
    lines.append(f"nc: {len(names)}")
    lines.append("names:")
    lines += [f"  {i}: {quote(name)}" for i, name in sorted(names.items())]
    return "\n".join(lines) + "\n"
