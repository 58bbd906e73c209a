"""The colour of a label, shared by pictures, the editor and the writers of formats that store colours.

It lives apart from `annotebook.render` so that a format module (SuperAnnotate's ``classes.json`` carries a colour
per class) can colour a label as pictures do without importing the drawing code.

>>> label_color("cat") == label_color("cat")
True
"""

from __future__ import annotations

import colorsys
import hashlib

import pandas as pd

__all__ = ["NO_LABEL", "label_color"]

HUE_STEPS = 24  # hues tried for a label the labels table does not know


#: the text whose colour a row without a label is drawn in, everywhere
NO_LABEL = "(no label)"


def label_color(label: str | None, labels: pd.DataFrame | None = None) -> str:
    """The ``#rrggbb`` colour of ``label``: the labels table's where it has one, else one from the text; a missing
    label (None, NaN) has the colour of `NO_LABEL`.

    The derived colour hashes the label with SHA-1 (not ``hash()``, which changes per process), so it is the
    same in every call, process and frame. A label the table does not know (a typo, say) gets the hue farthest
    from every colour the table gives, so it never passes for a real label in a picture or a chart.

    >>> label_color("cat", pd.DataFrame({"name": ["cat"], "color": ["#112233"]}))
    '#112233'
    >>> label_color(None) == label_color(float("nan")) == label_color(NO_LABEL)
    True
    """
    if not isinstance(label, str):
        label = NO_LABEL
    known: list[str] = []
    if labels is not None and len(labels) and {"name", "color"} <= set(labels.columns):
        given = labels.loc[labels["name"] == label, "color"].dropna()
        if len(given):
            return str(given.iloc[0])
        known = [str(c) for c in labels["color"].dropna().tolist() if _hue(str(c)) is not None]
    digest = hashlib.sha1(label.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    saturation = 0.55 + 0.35 * digest[2] / 255.0
    value = 0.70 + 0.25 * digest[3] / 255.0
    if known:
        taken = [h for h in (_hue(c) for c in known) if h is not None]
        candidates = [(hue + k / HUE_STEPS) % 1.0 for k in range(HUE_STEPS)]
        hue = max(candidates, key=lambda h: min(min(abs(h - t), 1 - abs(h - t)) for t in taken))
        saturation, value = max(saturation, 0.8), 0.9
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _hue(color: str) -> float | None:
    """The hue of a ``#rrggbb`` colour (None for another form, or a grey)."""
    text = color.strip().lstrip("#")
    if len(text) != 6:
        return None
    try:
        r, g, b = (int(text[i : i + 2], 16) / 255 for i in (0, 2, 4))
    except ValueError:
        return None
    h, s, _ = colorsys.rgb_to_hsv(r, g, b)
    return h if s > 0.15 else None
