"""How the contract suite picks, edits and adds the rows of one kind, in a way every platform of that kind accepts.

Plain pandas on an annotations frame, no fixtures: the test process and the subprocess driver (`driver.py`) both
use it, so a row edited in a subprocess can be looked for in the test. An edit returns the row's *content* (a dict
of the columns in `CONTENT_KEYS`), which `count` finds again in any later load whatever id the platform gave it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from typing import Any

import pandas as pd

__all__ = [
    "CONTENT_KEYS",
    "EDITS",
    "BoxEdits",
    "Content",
    "Edits",
    "GroundingEdits",
    "content_of",
    "count",
    "ids_of",
    "live",
]

#: what identifies an edited row in a later load (ids change on platforms that re-id rows on write)
CONTENT_KEYS = ("asset", "kind", "label", "text", "x0", "y0", "x1", "y1")
Content = dict[str, Any]


def live(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows not flagged deleted."""
    return frame[~frame["deleted"].to_numpy(dtype=bool)]


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def content_of(frame: pd.DataFrame, row_id: str) -> Content:
    """The content of the row ``row_id`` of ``frame``."""
    (row,) = frame[frame["id"] == row_id].to_dict("records")
    return {k: _cell(row[k]) for k in CONTENT_KEYS}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def ids_of(frame: pd.DataFrame, content: Content) -> list[str]:
    """The ids of the live rows of ``frame`` that hold ``content``."""
    rows = live(frame)[["id", *CONTENT_KEYS]].to_dict("records")
    return [str(r["id"]) for r in rows if all(_same(_cell(r[k]), v) for k, v in content.items())]


def count(frame: pd.DataFrame, content: Content) -> int:
    """How many live rows of ``frame`` hold ``content``."""
    return len(ids_of(frame, content))


def moved_x1(x0: float, variant: int) -> float:
    """A right edge in (x0, 1] that differs for every variant (the golden ratio spreads them) and from the load's."""
    share = 0.2 + 0.7 * ((variant * 0.6180339887498949) % 1.0)
    return round(x0 + (1.0 - x0) * share, 6)


class Edits:
    """Rows of one ``kind``: which can be edited, how an edit moves them, how a new one is added."""

    kind = ""

    def __init__(self) -> None:
        self._added = itertools.count()

    def candidates(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The live rows of this kind, in the frame's order."""
        rows = live(frame)
        return rows[(rows["kind"] == self.kind).fillna(False).to_numpy(dtype=bool)]

    def pick(self, frame: pd.DataFrame, not_on: Collection[str] = ()) -> str:
        """The id of the first editable row whose asset is not in ``not_on``."""
        rows = self.candidates(frame)
        rows = rows[~rows["asset"].isin(list(not_on))]
        if rows.empty:
            raise LookupError(f"no {self.kind} row to edit outside assets {sorted(not_on)}")
        return str(rows["id"].iloc[0])

    def edit(self, frame: pd.DataFrame, row_id: str, variant: int) -> Content:
        """Move the row's right edge, in place, to a place of its own for ``variant``; returns the row's content."""
        at = frame["id"] == row_id
        frame.loc[at, "x1"] = moved_x1(float(frame.loc[at, "x0"].iloc[0]), variant)
        return content_of(frame, row_id)

    def new_box(self) -> tuple[float, float, float, float]:
        """A box no earlier add of this object used."""
        k = next(self._added) % 40
        return (0.1 + 0.01 * k, 0.1, 0.4 + 0.01 * k, 0.45)

    def add(self, frame: pd.DataFrame) -> str:
        """Add one new row the platform accepts, in place; returns its client id."""
        raise NotImplementedError


class BoxEdits(Edits):
    """Box rows (local store, Nexus): an edit moves x1; an add is `add_box` beside the first box."""

    kind = "box"

    def candidates(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = super().candidates(frame)
        return rows[(rows["rotation"].fillna(0) == 0).to_numpy(dtype=bool)]

    def add(self, frame: pd.DataFrame) -> str:
        first = self.candidates(frame).iloc[0]
        return str(frame.annot.add_box(str(first["asset"]), str(first["label"]), self.new_box()))


class GroundingEdits(Edits):
    """Grounded phrases (Vi): an edit moves the phrase's box; an add grounds the last word of a caption."""

    kind = "grounding"

    def add(self, frame: pd.DataFrame) -> str:
        rows = live(frame)
        caption = rows[rows["kind"] == "caption"].iloc[0]
        text = str(caption["text"])
        phrase = text.rsplit(" ", 1)[-1]
        start = text.rindex(phrase)
        label = self.candidates(frame)["label"].iloc[0]  # a tag the dataset has: Vi creates none
        x0, y0, x1, y1 = self.new_box()
        record = {
            "asset": caption["asset"], "kind": "grounding", "label": label, "text": phrase, "parent": caption["id"],
            "span_start": start, "span_end": start + len(phrase), "x0": x0, "y0": y0, "x1": x1, "y1": y1,
        }  # fmt: skip
        return frame.annot.add_rows(frame.annot.new_rows([record]))[0]


#: by the kind of row a platform edits (a platform's fixture names one; the driver gets its name)
EDITS: dict[str, type[Edits]] = {"box": BoxEdits, "grounding": GroundingEdits}
