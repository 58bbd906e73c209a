"""The inline editor and the gallery: `Editor` (``anns.annot.edit()``) and `Browser` (``anns.annot.browse()``).

ipywidgets and ipycanvas load only when `Editor` or `Browser` is first used; `EditorState` and the pure modules
(`state`, `tools`, `viewport`, `shapes`, `regions`, `sink`) import neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .editor import Editor
    from .gallery import Browser
    from .state import EditorState

__all__ = ["Browser", "Editor", "EditorState"]


def __getattr__(name: str) -> Any:
    if name == "Editor":
        from .editor import Editor

        return Editor
    if name == "Browser":
        from .gallery import Browser

        return Browser
    if name == "EditorState":
        from .state import EditorState

        return EditorState
    raise AttributeError(f"module 'annotebook.widgets' has no attribute {name!r}")
