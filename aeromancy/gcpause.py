"""Pausing Python's cyclic garbage collector while a large graph or index is built.

Building a graph of 50,000 tasks allocates millions of objects that all stay alive.
The collector, triggered every few hundred allocations, walks the older generations
again and again, which made loading 5x the tasks cost 10x the time. Nearly nothing
made while building is garbage, so collection waits until the build is done; the
collector then runs as usual (reference counting frees everything else meanwhile).

A command that ends once its output is printed (``aeromancy list``) pauses it for
its whole body with ``freeze=True``: what it built is then frozen, never walked again,
not even by the collection at the interpreter's exit (each walks every object built). Cycles
made in the block are not collected then, which only a long-lived process would mind.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Disable the cyclic collector for the block; re-enable it if it was enabled.

    With ``freeze``, every object alive when the block ends is frozen first.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
