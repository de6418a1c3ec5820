"""Where task runs execute: the seam a Dask backend plugs into later.

The executor decides what must run and in which order; a backend runs each
:class:`~aeromancy.execution.task_run.TaskRequest` it is handed and answers with a
future of its :class:`~aeromancy.execution.outcomes.TaskResult`. ``LocalBackend`` runs
each request as a :class:`~aeromancy.execution.task_run.TaskRun` on a thread of its own,
whose task function runs in a fresh child process.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from aeromancy.execution.outcomes import TaskResult
from aeromancy.execution.process import ChildProcesses
from aeromancy.execution.task_run import RunServices, TaskRequest, TaskRun


class Backend(Protocol):
    """Runs task requests; at most ``jobs`` at once."""

    def submit(self, request: TaskRequest) -> Future[TaskResult]:
        """Start running ``request``; the future never raises for the task's own errors."""

    def stop(self) -> None:
        """Stop every running task at once (Ctrl-C): nothing of theirs is published."""

    def close(self) -> None:
        """Release what the backend holds, after the last future has settled."""


class LocalBackend:
    """Each task run on a thread of this process, its function in a child process.

    ``children`` starts the task processes; whoever made it closes it.
    """

    def __init__(self, services: RunServices, children: ChildProcesses, jobs: int) -> None:
        self.services = services
        self.children = children
        self._pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="task")

    def submit(self, request: TaskRequest) -> Future[TaskResult]:
        return self._pool.submit(TaskRun(self.services, request, self.children).execute)

    def stop(self) -> None:
        self.children.stop_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
