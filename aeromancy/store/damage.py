"""Skipping what the store holds but cannot be read: one warning line per thing, once.

Listings (runs, lineage, artifacts, planning a run) must not fall over because one
run record or manifest is corrupt: they leave it out and say which, on stderr.
"""

from __future__ import annotations

import sys
import threading

_warned: set[str] = set()
_lock = threading.Lock()


def skip(what: str, reason: object) -> None:
    """Print ``warning: skipping WHAT: REASON`` on stderr, once per ``what`` per process."""
    with _lock:
        if what in _warned:
            return
        _warned.add(what)
    text = str(reason).replace("\n", " ")
    sys.stderr.write(f"warning: skipping {what}: {text}\n")
    sys.stderr.flush()
