"""``python -m aeromancy.execution.child ENTRY ARGS...``: what runs in the project's Python.

Entries (each imported only when used):

- ``run REQUEST_PATH EVENTS_FD PARENT_PID``: one task run in this fresh process;
- ``zygote CONTROL_FD``: the fork server, which forks one process per task run.
"""

from __future__ import annotations

import importlib
import sys

# entry name -> (module, function); the function takes the arguments after the name.
ENTRIES = {
    "run": ("aeromancy.execution.child.runtime", "main"),
    "zygote": ("aeromancy.execution.child.zygote", "main"),
}


def dispatch(argv: list[str]) -> None:
    """Call the entry ``argv[0]`` with the rest of ``argv``."""
    if not argv or argv[0] not in ENTRIES:
        names = ", ".join(sorted(ENTRIES))
        raise SystemExit(f"aeromancy child: the first argument must be one of {names}")
    module, function = ENTRIES[argv[0]]
    getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    dispatch(sys.argv[1:])
