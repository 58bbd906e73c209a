"""What differs between the pandas versions annotebook supports (2.3 and 3.x), in one place.

Before pandas 3, copy-on-write is off and pandas warns (``SettingWithCopyWarning``) when a value is set on a frame
that was sliced from another: a guess that the user meant to change the parent. annotebook's own writes into a
user's frame (a push's ids and revisions, rows added in place) are meant for that very object (R-9, R-14), so they
run under `writing_into_frame`, which silences that guess for them alone. pandas 3 has no such warning.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd

__all__ = ["PANDAS_3", "writing_into_frame"]

PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def writing_into_frame() -> contextlib.AbstractContextManager[Any]:
    """A context for annotebook's deliberate in-place writes into a user's frame (a no-op on pandas 3)."""
    if PANDAS_3:
        return contextlib.nullcontext()
    return pd.option_context("mode.chained_assignment", None)
