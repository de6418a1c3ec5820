"""A task process never outlives the process that started it.

On Linux a child asks the kernel for SIGKILL when its parent ends
(``prctl(PR_SET_PDEATHSIG)``), then checks that its parent is still the one that
started it: a parent that died in between left it with another one already. Elsewhere
only that check is made. Stdlib only: this runs in the project's environment.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
# The exit status of a child whose parent was gone before it could ask to follow it.
ORPHANED_STATUS = 70


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent ends; exit now if ``parent_pid`` is not the parent."""
    prctl = libc_prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(ORPHANED_STATUS)


@functools.cache
def libc_prctl() -> Any:
    """Return libc's ``prctl`` (looked up once), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
