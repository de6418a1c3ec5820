"""Stopping a task run on a worker when its future is cancelled (Ctrl-C on the host).

Dask's ``cancel`` does not interrupt the worker thread running a task: the thread
runs on, and so would the task's process. So each task run on a worker watches its
own key in the worker's state while it runs (:func:`watch_cancel`): once the
scheduler has released it (the host cancelled the future, or its client went away),
the task's process group gets SIGTERM, then SIGKILL after a grace period, and the run
ends as a local run stopped by Ctrl-C does: nothing published, no record written.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.execution.process import (
    ChildExit,
    Resources,
    kill_group,
    stop_process_groups,
)

if TYPE_CHECKING:
    from aeromancy.execution.output import OutputRelay
    from aeromancy.execution.process import ChildProcesses, Event

#: How often a running task run looks whether its future was cancelled.
POLL_S = 0.2
#: Worker states of a task that nobody wants any more.
_GONE = frozenset({"cancelled", "released", "forgotten"})


class StoppableChildren:
    """The worker's shared task processes, seen by one task run that can be stopped alone.

    Quacks like :class:`~aeromancy.execution.process.ChildProcesses` as far as
    :class:`~aeromancy.execution.task_run.TaskRun` uses it (``run``, ``stopped``).
    """

    def __init__(self, shared: ChildProcesses) -> None:
        self.shared = shared
        self.stopped = False
        self._pids: set[int] = set()
        self._lock = threading.Lock()

    def run(
        self,
        request_path: Path,
        cwd: Path,
        relay: OutputRelay,
        on_event: Callable[[Event], None],
    ) -> ChildExit:
        """Run the task's child as the shared processes do, unless stopped already."""
        if self.stopped:
            return ChildExit(-signal.SIGKILL, None, Resources(0.0, 0.0, 0.0, 0))
        try:
            return self.shared.run(request_path, cwd, relay, on_event, on_start=self._started)
        finally:
            with self._lock:
                self._pids.clear()

    def _started(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)
            stopped = self.stopped
        if stopped:
            kill_group(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop this run's process (SIGTERM, SIGKILL after the grace period)."""
        with self._lock:
            self.stopped = True

        def live() -> set[int]:
            with self._lock:
                return set(self._pids)

        stop_process_groups(live)


@contextlib.contextmanager
def watch_cancel(children: StoppableChildren) -> Iterator[None]:
    """Stop ``children`` as soon as the Dask task running this code is cancelled.

    Outside a Dask task (a test calling the worker function directly) it does nothing.
    """
    found = _current_task()
    if found is None:
        yield
        return
    worker, key = found
    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL_S):
            if _gone(worker, key):
                children.stop()
                return

    thread = threading.Thread(target=watch, name=f"aeromancy-cancel-{key}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _current_task() -> tuple[Any, Any] | None:
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
    except (ImportError, ValueError, AttributeError):
        return None
    return (worker, key) if key is not None else None


def _gone(worker: Any, key: Any) -> bool:
    """Return True when the worker no longer wants the result of task ``key``."""
    task = worker.state.tasks.get(key)
    return task is None or str(task.state) in _GONE
