"""The XML text helpers write what `xml.sax.saxutils` writes (the formats avoid importing it: it pulls in urllib)."""

from __future__ import annotations

import subprocess
import sys
from xml.sax import saxutils

import pytest

from annotebook.formats._xml_text import escape, quoteattr

TEXTS = ["", "cat", "a < b & c > d", "&amp;", 'say "hi"', "it's", "both ' and \"", "tab\there\nnew\rline", "猫 🦌"]


@pytest.mark.parametrize("text", TEXTS)
def test_same_as_saxutils(text: str) -> None:
    assert escape(text) == saxutils.escape(text)
    assert quoteattr(text) == saxutils.quoteattr(text)


def test_importing_the_formats_does_not_import_saxutils() -> None:
    code = "import sys, annotebook.formats._builtin; print('xml.sax.saxutils' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
