"""What is the same for every task of one ``aeromancy run``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aeromancy.identity import RunIdentity
from aeromancy.records import new_run_id
from aeromancy.store.manifest import Namespace

INVOCATION_ENV = "AEROMANCY_INVOCATION"


def invocation_id() -> str:
    """Return the id grouping this ``aeromancy run``: the launcher's, else a new one."""
    return os.environ.get(INVOCATION_ENV) or new_run_id()


@dataclass(frozen=True)
class Invocation:
    """What is the same for every task of one ``aeromancy run``."""

    project: str
    root: Path
    tasks: str
    namespace: Namespace
    identity: RunIdentity
    environment_key: str
    group: str
    tags: tuple[str, ...] = ()
    force: bool = False
    jobs: int = 1
