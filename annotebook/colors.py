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

__all__ = ["label_color"]


def label_color(label: str, labels: pd.DataFrame | None = None) -> str:
    """The ``#rrggbb`` colour of ``label``: the labels table's where it has one, else one from the text.

    The derived colour hashes the label with SHA-1 (not ``hash()``, which changes per process), so it is the
    same in every call, process and frame.

    >>> label_color("cat", pd.DataFrame({"name": ["cat"], "color": ["#112233"]}))
    '#112233'
    """
    if labels is not None and len(labels) and {"name", "color"} <= set(labels.columns):
        given = labels.loc[labels["name"] == label, "color"].dropna()
        if len(given):
            return str(given.iloc[0])
    digest = hashlib.sha1(label.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    saturation = 0.55 + 0.35 * digest[2] / 255.0
    value = 0.70 + 0.25 * digest[3] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
