"""One switch shared by readers and remote listings: no cyclic garbage collection while a big table is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; it runs as usual afterwards (also after an error).

    Parsing 200,000 COCO annotations or listing 50,000 remote ones makes close to a million dicts and lists, none
    of them in a cycle; the collector would walk them again and again as they pile up (a third of a COCO load,
    more than half of a Nexus listing).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
