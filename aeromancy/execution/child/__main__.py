"""``python -m aeromancy.execution.child REQUEST_PATH EVENTS_FD``: one task run."""

from aeromancy.execution.child.runtime import main

main()
