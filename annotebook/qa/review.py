"""`Review`: the editor walking a findings (or suspects) table, asset by asset, worst first.

The queue is `worklist(findings)`: one item per asset. For each item the editor opens the asset with the finding's
own row selected (``ids[0]``) and shows the reasons above the canvas, with the progress ("12 / 140") and four
buttons (keys in the canvas, in brackets):

- accept (``c``): the annotations are right as they are; the asset gets the accepted status; next.
- fix (``e``): the user has edited the asset (or does so now, then presses fix); the asset gets the
  accepted status; next. The edits themselves land in the frame as every editor edit does.
- skip (``s``): no decision, no status; next.
- add (``i``, missing-region suspects of `mistakes` only): adds the proposed box with its predicted label,
  selected, so it can be adjusted before accept / fix.

The status goes into the assets frame given as ``assets=`` (as the editor's status field does); without one no
status is set. Push it with ``assets.annot.push()`` after the annotations' ``anns.annot.push()``. The accepted
status per backend: ``"complete"`` on Pictograph (its approve review action), ``"Completed"`` elsewhere (the local
store and SuperAnnotate's system workflow); Nexus and Vi keep no status and Clarifai's are read only (leave
``assets=`` out there), and ``status=`` overrides the value.

``review.decisions`` is a DataFrame (asset, id, decision) of what the user did, in order.

>>> review = anns.annot.review(findings, assets=assets)   # doctest: +SKIP
>>> review.decisions.decision.value_counts()               # doctest: +SKIP
"""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .worklist import worklist

__all__ = ["ACCEPTED", "Review"]

#: the status an accepted (or fixed) asset gets, by backend name; any other backend: ``DEFAULT_ACCEPTED``
ACCEPTED = {"pictograph": "complete"}
DEFAULT_ACCEPTED = "Completed"
DECISIONS = ("accept", "fix", "skip")


def _backend_name(frame: pd.DataFrame) -> str | None:
    try:
        conn, _ = frame.annot._traced()
        return str(conn.backend.name)
    except Exception:  # an untraced frame has no backend: the default status
        return None


def _missing_boxes(findings: pd.DataFrame) -> dict[str, list[tuple[str | None, tuple[float, ...]]]]:
    """Per asset, the boxes to add: suspects without a row (``id`` empty) that carry a box x0..y1 and a label."""
    if not {"x0", "y0", "x1", "y1"} <= set(findings.columns):
        return {}
    xy = findings[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float, na_value=np.nan)
    has = np.isfinite(xy).all(axis=1) & findings["id"].isna().to_numpy(dtype=bool)
    labels = findings["label"] if "label" in findings.columns else pd.Series(None, index=findings.index)
    out: dict[str, list[tuple[str | None, tuple[float, ...]]]] = {}
    for asset, label, box in zip(findings["asset"][has], labels[has], xy[has].tolist(), strict=True):
        out.setdefault(str(asset), []).append((label if isinstance(label, str) else None, tuple(box)))
    return out


class Review:
    """The editor on ``findings``' assets (`worklist` order) with accept / fix / skip (/ add) and the progress.

    ``frame``: the annotations frame (edits land there); ``assets``: an assets frame that receives the statuses;
    ``status``: the accepted status (by default per backend, see `ACCEPTED`); other options go to the `Editor`.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        findings: pd.DataFrame,
        assets: pd.DataFrame | None = None,
        labels: pd.DataFrame | None = None,
        *,
        status: str | None = None,
        **options: Any,
    ):
        from ..widgets.editor import Editor

        if not len(findings):
            raise ValueError("no findings to review: the table is empty")
        self.frame = frame
        self.items = worklist(findings)
        self._missing = _missing_boxes(findings)
        self.status = status or ACCEPTED.get(_backend_name(frame) or "", DEFAULT_ACCEPTED)
        self.editor = Editor(frame, target=self.items["asset"].astype(str).tolist(), assets=assets, labels=labels,
                             **options)  # fmt: skip
        self._rows: list[dict[str, Any]] = []
        self.position = 0
        self._progress = widgets.HTML()
        self._progress.add_class("annotebook-review-progress")
        self._reason = widgets.HTML()
        self._reason.add_class("annotebook-review-reason")

        def button(name: str, icon: str, tip: str, action: Any) -> widgets.Button:
            b = widgets.Button(description=name, icon=icon, tooltip=tip, layout=widgets.Layout(width="auto"))
            b.add_class(f"annotebook-review-{name}")
            b.on_click(lambda _: action())
            return b

        self.accept_button = button("accept", "check", "keep as is, next (c)", lambda: self.decide("accept"))
        self.fix_button = button("fix", "pencil", "edited: keep the edits, next (e)", lambda: self.decide("fix"))
        self.skip_button = button("skip", "forward", "no decision, next (s)", lambda: self.decide("skip"))
        self.add_button = button("add", "plus", "add the proposed box (i)", self.add_proposed)
        bar = widgets.HBox(
            [self._progress, self.accept_button, self.fix_button, self.skip_button, self.add_button],
            layout=widgets.Layout(align_items="center"),
        )
        self.editor.extra.children = [bar, self._reason]
        self.editor.canvas.on_key_down(self._key)
        self.show()

    # -- the queue ----------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.position >= len(self.items)

    @property
    def decisions(self) -> pd.DataFrame:
        """What the user did, in order: asset, id (the finding's row), decision (accept / fix / skip)."""
        out = pd.DataFrame(self._rows, columns=["asset", "id", "decision"])
        return out.astype({"asset": "str", "id": "str", "decision": pd.CategoricalDtype(list(DECISIONS))})

    def _item(self) -> pd.Series:
        return self.items.iloc[self.position]

    def show(self) -> None:
        """Open the current item: its asset, its finding's row selected, its reasons and the progress shown."""
        total = len(self.items)
        if self.done:
            self._progress.value = f"<b>{total} / {total}</b> reviewed"
            self._reason.value = "<i>every finding reviewed</i>"
            for b in (self.accept_button, self.fix_button, self.skip_button, self.add_button):
                b.disabled = True
            return
        item = self._item()
        asset = str(item["asset"])
        live = self.frame.loc[~self.frame["deleted"].to_numpy(dtype=bool, na_value=False), "id"]
        ids = [i for i in item["ids"] if i in set(live.astype(str))]  # a row deleted since: the asset alone
        if ids:
            self.editor.select_row(ids[0])
        else:
            self.editor.open_asset(asset)
        self._progress.value = f"<b>{self.position + 1} / {total}</b>"
        reasons = "".join(f"<li>{escape(str(d))}</li>" for d in item["details"])
        self._reason.value = f"<ul style='margin:2px 0'>{reasons}</ul>"
        self.add_button.layout.display = None if self._missing.get(asset) else "none"

    def decide(self, decision: str) -> None:
        """Record ``decision`` (accept / fix / skip) for the current item, set the status, and go to the next."""
        if decision not in DECISIONS:
            raise ValueError(f"a decision is one of {DECISIONS}, not {decision!r}")
        if self.done:
            return
        item = self._item()
        if self.editor.state.asset != str(item["asset"]):
            self.editor.open_asset(str(item["asset"]))
        if decision != "skip" and self.editor.panel.can_set_status:
            self.editor.run(lambda: self.editor.state.set_status(self.status))
        first = item["ids"][0] if len(item["ids"]) else None
        self._rows.append({"asset": str(item["asset"]), "id": first, "decision": decision})
        self.position += 1
        self.show()

    def add_proposed(self) -> None:
        """Add the current asset's proposed boxes (missing-region suspects) with their predicted labels."""
        from ..widgets.regions import Region

        if self.done:
            return
        asset = str(self._item()["asset"])
        todo = self._missing.pop(asset, [])
        state = self.editor.state

        def add() -> None:
            if state.asset != asset:
                state.open(asset)
            w, h = state.info.width, state.info.height
            for label, (x0, y0, x1, y1) in todo:
                landed = state.add(Region("", "box", label, box=(x0 * w, y0 * h, x1 * w, y1 * h)))
                state.select(landed.id)

        self.editor.run(add)
        self.add_button.layout.display = "none"

    def _key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        """c accept, e fix, s skip, i add: letters the editor leaves free."""
        action = {"c": lambda: self.decide("accept"), "e": lambda: self.decide("fix"),
                  "s": lambda: self.decide("skip"), "i": self.add_proposed}.get(key.lower())  # fmt: skip
        if action is not None and not (ctrl or meta or shift):
            action()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.editor)
