"""The inline editor and the gallery: `Editor` (``anns.annot.edit()``) and `Browser` (``anns.annot.browse()``).

ipywidgets and ipycanvas load only when `Editor` or `Browser` is first used; `EditorState` and the pure modules
(`state`, `tools`, `keys`, `viewport`, `shapes`, `regions`, `sink`, `drawing`) import neither. `chrome` holds the
label list, the region list and the "?" overlay; `panel` the selected region's and the asset's fields.

Every edit the editor makes reaches the frame through one function, `EditorState.write_edit` (do, undo and redo
alike), which calls the `Sink`. Code that drives the editor (a review queue) opens it on an ordered list of assets
(``Editor(frame, target=["a", "b"])``), selects a row by id (``editor.select_row(id)``), adds its own controls
to ``editor.extra`` and hears every change through ``editor.on_change(fn)``.
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
