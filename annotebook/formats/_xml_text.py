"""Text in XML: the two helpers of `xml.sax.saxutils` the writers use, with the same output.

`xml.sax.saxutils` imports `urllib.request`, and with it `http.client`, `email` and `ssl`: 2.5 MB and some 13 ms
that every ``import annotebook`` would pay for three string replacements.

>>> escape("a < b & c")
'a &lt; b &amp; c'
>>> print(quoteattr('say "hi"'))
'say "hi"'
"""

from __future__ import annotations

__all__ = ["escape", "quoteattr"]


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities (`xml.sax.saxutils.escape`)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def quoteattr(text: str) -> str:
    """An attribute value, escaped and quoted (`xml.sax.saxutils.quoteattr`): newlines and tabs as character
    references, in double quotes unless it holds one and no single quote."""
    text = escape(text).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"{}"'.format(text.replace('"', "&quot;"))
