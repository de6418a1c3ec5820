"""The host-side launcher: git gate, lockfile gate, image build and container run.

Until the container issue lands, tracked runs are refused with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path

from aeromancy.errors import UsageError
from aeromancy.run_options import RunOptions
from aeromancy.settings import Settings

IN_CONTAINER_ENV = "AEROMANCY_IN_CONTAINER"
INVOCATION_ENV = "AEROMANCY_INVOCATION"


def inside_container() -> bool:
    """Return True when this process is the launcher's tracked run inside its container."""
    return os.environ.get(IN_CONTAINER_ENV) == "1" and Path("/.dockerenv").exists()


def launch_tracked_run(settings: Settings, options: RunOptions) -> int:
    """Build the image and run the graph in a container; return the container's exit code."""
    raise UsageError(
        "tracked runs need the container launcher, which this version does not have yet",
        "use `aeromancy run --dev` to run on the host",
    )
