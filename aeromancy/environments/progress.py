"""Progress of saving and loading images: a rich bar on a terminal, else two lines.

Image transfers take seconds to minutes, so a log (CI, a pipe) gets one line when
one starts and one when it ends, with the bytes and the time taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from aeromancy.store.backend import ProgressCallback
from aeromancy.store.progress import byte_bar


def megabytes(count: int) -> str:
    """Return ``count`` bytes as megabytes for a message (``12.3 MB``)."""
    return f"{count / 1e6:.1f} MB"


class Transfer:
    """One transfer in progress: ``advance`` it by bytes; ``note`` ends its last line."""

    def __init__(self, advance: ProgressCallback) -> None:
        self._advance = advance
        self._lock = threading.Lock()
        self.moved = 0
        self.note = ""

    def advance(self, count: int) -> None:
        """Count ``count`` more bytes moved (safe from several threads)."""
        with self._lock:
            self.moved += count
        self._advance(count)


@contextmanager
def image_progress(console: Console, description: str, total: int) -> Iterator[Transfer]:
    """Yield the :class:`Transfer` of ``total`` bytes labelled ``description``.

    On a terminal a rich bar shows it; otherwise one line starts it and one ends it.
    """
    started = time.monotonic()
    if not console.is_terminal:
        _line(console, f"{description} ({megabytes(total)}) ...")
        transfer = Transfer(_ignore)
        yield transfer
        _line(console, f"{description}: done in {time.monotonic() - started:.1f} s{transfer.note}")
        return
    with byte_bar(console, description, total) as advance:
        transfer = Transfer(advance)
        yield transfer
    _line(console, f"{description}: done in {time.monotonic() - started:.1f} s{transfer.note}")


def _line(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _ignore(_count: int) -> None:
    return None
