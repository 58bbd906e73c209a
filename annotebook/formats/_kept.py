"""What each format keeps of the optional columns, and the one warning for what a write would lose (issue 16).

A round trip keeps what a format can hold, with its type; a field it cannot hold is named in a `FieldNotKept`
warning when the frame is written, never dropped silently. The table (each format's docstring shows its row):

| format | score | split | status | author | attributes (types kept) |
| --- | --- | --- | --- | --- | --- |
| coco | yes | no | no | no | any JSON value |
| yolo | no | yes (folders) | no | no | none |
| yolo_keras | no | no | no | no | none |
| voc | no | no (ImageSets only from a devkit) | no | no | text |
| csv_four_corner, csv_width_height | no | no | no | no | none |
| vi_jsonl | no | no | no | no | none |
| labelstudio | no | no | no | no | text, numbers |
| superannotate | yes | no | no | yes | text |

A format registered without a row here (a new one) warns about nothing: add its row to `KEPT`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

__all__ = ["KEPT", "FieldNotKept", "Kept", "warn_not_kept"]

OPTIONAL = ("score", "split", "status", "author")


class FieldNotKept(UserWarning):
    """A write drops (or retypes) a field the format cannot hold; the message names the field and the rows."""


@dataclass(frozen=True)
class Kept:
    """The optional columns a format writes and reads back, and the attribute value types it keeps."""

    columns: tuple[str, ...] = ()
    attribute_types: tuple[type, ...] = ()


_TEXT, _NUMBERS = (str,), (str, int, float)
KEPT: dict[str, Kept] = {
    "coco": Kept(("score",), (str, int, float, bool, list, dict)),
    "yolo": Kept(("split",)),
    "yolo_keras": Kept(),
    "voc": Kept((), _TEXT),
    "csv_four_corner": Kept(),
    "csv_width_height": Kept(),
    "vi_jsonl": Kept(),
    "labelstudio": Kept((), _NUMBERS),
    "superannotate": Kept(("score", "author"), _TEXT),
}


def _kind(v: object) -> str:
    return "boolean" if isinstance(v, bool) else "number" if isinstance(v, int | float) else type(v).__name__


def warn_not_kept(format: str, anns: pd.DataFrame) -> None:
    """Warn, naming each field, about what writing ``anns`` in ``format`` will not read back as it is."""
    kept = KEPT.get(format)
    if kept is None or not len(anns):
        return
    lost = []
    for col in OPTIONAL:
        if col in anns.columns and col not in kept.columns and (n := int(anns[col].notna().sum())):
            lost.append(f"{col} ({n} row{'s' if n > 1 else ''})")
    retyped: dict[str, str] = {}
    dropped = 0
    if "attributes" in anns.columns:
        for attrs in anns["attributes"].dropna():
            if not isinstance(attrs, dict) or not attrs:
                continue
            if not kept.attribute_types:
                dropped += 1
                continue
            for k, v in attrs.items():
                if v is not None and type(v) not in kept.attribute_types:
                    retyped.setdefault(str(k), _kind(v))
    if dropped:
        lost.append(f"attributes ({dropped} rows)")
    if retyped:
        shown = ", ".join(f"{k} ({t})" for k, t in list(retyped.items())[:8])
        lost.append(f"the types of attributes {shown}, which read back as text")
    if lost:
        warnings.warn(f"{format} does not keep {'; '.join(lost)}", FieldNotKept, stacklevel=3)
