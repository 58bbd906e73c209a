"""Helpers every format shares to build and complete canonical tables."""

from __future__ import annotations

import pandas as pd

from .. import schema

__all__ = ["complete_labels"]


def complete_labels(labels: pd.DataFrame | None, anns: pd.DataFrame) -> pd.DataFrame:
    """The labels table with every label used in ``anns`` present; new labels get the next free ``index``."""
    table = schema.labels_frame(labels)
    used = [str(x) for x in pd.unique(anns["label"].dropna())]
    missing = [name for name in used if name not in set(table["name"])]
    if missing:
        top = table["index"].max()
        start = 0 if pd.isna(top) else int(top) + 1
        dataset = anns["dataset"].dropna().iloc[0] if anns["dataset"].notna().any() else None
        extra = schema.labels_frame(
            [{"dataset": dataset, "name": n, "index": start + i} for i, n in enumerate(missing)]
        )
        table = pd.concat([table, extra], ignore_index=True) if len(table) else extra
    return table
