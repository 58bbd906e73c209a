"""A YOLO ``data.yaml``, read with PyYAML's ``safe_load`` and written with ``safe_dump``: what Ultralytics,
Roboflow and supervision themselves use, so a file any of them reads, annotebook reads the same way.

One difference on purpose: booleans are YAML 1.2's (``true`` / ``false``), not YAML 1.1's, whose ``yes``, ``no``,
``on`` and ``off`` would turn classes of those names into ``True`` and ``False``. A file that is not YAML, or not
a mapping at its top, is a `FormatError` naming the file, the line and the top-level key it happened under.

>>> parse_data_yaml("train: images/train  # comment\\nnames:\\n  0: person\\n  1: 'traffic light'\\n", "d.yaml")
{'train': 'images/train', 'names': {0: 'person', 1: 'traffic light'}}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from ..errors import FormatError

__all__ = ["DATA_YAML_KEYS", "dump_data_yaml", "parse_data_yaml"]

DATA_YAML_KEYS = ("path", "train", "val", "test", "names", "nc", "kpt_shape")

HEADER = "# YOLO dataset written by annotebook; paths are relative to this file's folder\n"

_TOP_KEY = re.compile(r"""^(?:'([^']*)'|"([^"]*)"|([^\s#'"\-][^:#]*?))\s*:(?:\s|$)""")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """``safe_load`` (libyaml's parser where PyYAML has it) with YAML 1.2 booleans: a class named ``no`` stays
    the text ``no``."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), None)


def parse_data_yaml(text: str, file: str, keys: Iterable[str] = DATA_YAML_KEYS) -> dict[str, Any]:
    """The top-level ``keys`` present in a data.yaml text, with their values."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        words = ", ".join(str(w) for w in (getattr(exc, "context", None), getattr(exc, "problem", None)) if w)
        raise FormatError(f"not valid YAML: {words or exc}", file=file, line=line, field=_key_at(text, line)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        first = next((x.strip() for x in text.split("\n") if x.strip() and not x.lstrip().startswith("#")), "")
        raise FormatError("expected 'key: value' lines at the top level", file=file, line=1, field=first[:40])
    wanted = set(keys)
    return {str(k): v for k, v in data.items() if str(k) in wanted}


def _key_at(text: str, line: int | None) -> str | None:
    """The top-level key whose block holds ``line`` (1-based), for naming where an error is."""
    if line is None:
        return None
    for row in reversed(text.split("\n")[:line]):
        found = _TOP_KEY.match(row)
        if found:
            return next(g for g in found.groups() if g is not None).strip()
    return None


def dump_data_yaml(splits: dict[str, list[str]], names: dict[int, str]) -> str:
    """A data.yaml: one key per split (a folder, or a list of folders), then ``nc`` and ``names`` as a map, in
    YAML's block style (one class a line).

    >>> print(dump_data_yaml({"train": ["images/train"]}, {0: "no"}), end="")
    # YOLO dataset written by annotebook; paths are relative to this file's folder
    train: images/train
    nc: 1
    names:
      0: 'no'
    """
    data: dict[str, Any] = {key: dirs[0] if len(dirs) == 1 else list(dirs) for key, dirs in splits.items()}
    data["nc"] = len(names)
    data["names"] = dict(sorted(names.items()))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter where PyYAML has it: 10x faster
    return HEADER + yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1 << 16)
