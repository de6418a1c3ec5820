"""Environment capture for run records. Minimal until the tracking issue completes it."""

from __future__ import annotations

import platform
import socket
import sys
from typing import Any


def capture_environment() -> dict[str, Any]:
    """Return what describes the machine and interpreter this process runs on."""
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "host": socket.gethostname(),
    }
