"""The child side of a task run: the code that runs in the task's own process.

It depends on the standard library only (pinned by tests/execution/test_child_imports.py),
because it runs in the project's environment, where none of Aeromancy's dependencies are
installed. The protocol between parent and child is in docs/architecture.md.
"""
