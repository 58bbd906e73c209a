"""A griffe extension for the API reference: interactive examples (``>>>`` lines and the output under them) that a
docstring holds outside an ``Examples`` section are fenced as ``pycon`` code, so they render as code and their
brackets are never read as Markdown links."""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """``text`` with each run of doctest lines (a ``>>>`` line, its ``...`` continuations and output) fenced.

    A fence already open (a docstring's own ```` ```python ```` block) is left alone.
    """
    out: list[str] = []
    inside, indent, fence = False, "", False
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fence = not fence
        if not inside and not fence and stripped.startswith(">>>"):
            inside, indent = True, line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring (griffe calls this for each object it loads)."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
