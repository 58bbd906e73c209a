"""Guards of the first steps: which rows ``anns.annot.delete(...)`` means, and column names that look like typos.

``delete`` takes a boolean mask aligned with the frame or a list of row ids; a scalar (a string, ``True``, a
number) would broadcast to every row and empty the dataset on the next push, so it is refused. A column the
contract does not know whose name is one typo away from a contract column (``lable``) is named before a diff or
push says "0 updated" about an edit that went nowhere.

>>> import annotebook as ab
>>> anns = ab.annotations_frame([{"dataset": "d", "asset": "a", "id": "1", "label": "cat", "kind": "tag"}])
>>> rows_to_delete(anns, ["1"]).tolist()
[True]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .errors import ValidationError

__all__ = ["check_column_typos", "rows_to_delete"]


def rows_to_delete(frame: pd.DataFrame, rows: Any) -> np.ndarray:
    """A boolean array over ``frame``'s rows: ``rows`` as a mask aligned with the frame, or as a list of ids."""
    if isinstance(rows, (str, bytes, bool, int, float, np.generic)) or rows is None:
        raise TypeError(
            f"delete() takes a boolean mask of the frame's rows (anns.label == 'noise') or a list of row ids, "
            f"not {rows!r}: a single value would select every row"
        )
    if isinstance(rows, pd.Series) and pd.api.types.is_bool_dtype(rows.dtype):
        if not rows.index.equals(frame.index):
            if not (rows.index.is_unique and frame.index.is_unique and rows.index.isin(frame.index).all()):
                raise ValueError("the mask's index is not the frame's: build it from this frame (anns.label == ...)")
            rows = rows.reindex(frame.index, fill_value=False)
        return rows.fillna(False).to_numpy(dtype=bool)
    values = np.asarray(list(rows) if isinstance(rows, Iterable) else rows, dtype=object)
    if len(values) and all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != len(frame):
            raise ValueError(f"the mask has {len(values)} values for a frame of {len(frame)} rows")
        return values.astype(bool)
    ids = [str(v) for v in values]
    known = set(frame["id"].dropna().astype(str))
    missing = [i for i in ids if i not in known]
    if missing:
        raise KeyError(f"no row with id {missing[0]!r} in this frame ({len(missing)} of {len(ids)} ids not found)")
    return frame["id"].astype(str).isin(ids).to_numpy(dtype=bool)


def _one_typo(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one letter swapped with its neighbour, replaced, added or dropped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        return len(diff) == 1 or swapped
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def check_column_typos(frame: pd.DataFrame) -> None:
    """Refuse a column whose name is one typo from a contract column (``lable`` for ``label``): edits to it
    would go nowhere while ``push`` reports success. A plural (``labels``) or a suffixed name is left alone."""
    from .schema import ANNOTATION_COLUMNS

    for column in frame.columns:
        if not isinstance(column, str) or column in ANNOTATION_COLUMNS or column == "load" or len(column) < 4:
            continue
        near = [c for c in ANNOTATION_COLUMNS if _one_typo(column, c) and column != f"{c}s"]
        if near:
            raise ValidationError(
                f"column {column!r} is not one of the table's columns; did you mean {near[0]!r}? "
                f"Edits to {column!r} are not pushed: write them into {near[0]!r} and drop {column!r} "
                f"(del anns[{column!r}])"
            )
