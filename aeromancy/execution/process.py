"""Starting a task's child process, relaying what it says, and naming how it ended.

Each child is a fresh ``python -u -m aeromancy.execution.child`` of the project's
interpreter, in its own session (a Ctrl-C at the terminal reaches only ``aeromancy
run``, which then stops every child), with stdin from /dev/null. The child finds
Aeromancy through a temporary directory first on its ``PYTHONPATH`` that holds only a
link to this process's ``aeromancy`` package: none of Aeromancy's dependencies become
importable, and if the project's environment has its own Aeromancy, this one wins.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aeromancy
from aeromancy.execution.child.protocol import RESULT_EVENT, LineSplitter
from aeromancy.execution.output import OutputRelay, Stream

Event = dict[str, Any]
# After the child exits, how long to wait for processes it left holding its pipes.
DRAIN_SECONDS = 0.5
STOP_GRACE_SECONDS = 3.0
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Resources:
    """What the task's process used: wall time, CPU time, peak resident memory."""

    wall_s: float
    cpu_user_s: float
    cpu_system_s: float
    max_rss_bytes: int


@dataclass(frozen=True)
class ChildExit:
    """How one child ended: its exit code (negative: killed by that signal), its
    ``result`` event (None when it sent none), and what it used."""

    returncode: int
    result: Event | None
    resources: Resources

    def cause(self, task: str) -> str | None:
        """Return why the task failed when the process, not the function, ended it."""
        if self.result is not None and self.returncode == 0:
            return None
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"task {task} killed by {name}"
        return f"task {task} exited with code {self.returncode} before its function returned"


def _peak_rss(result: Event | None, usage: Any) -> int:
    """Return the child's own peak RSS when it reported one, else wait4's (an upper
    bound: it includes the parent's footprint at the fork, see child.runtime)."""
    reported = (result or {}).get("peak_rss_bytes")
    if isinstance(reported, int):
        return reported
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


class ChildProcesses:
    """Starts task children with one interpreter; ``stop_all`` ends every live one."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.stopped = False
        self._shim = Path(tempfile.mkdtemp(prefix="aeromancy-child-path-"))
        package = Path(aeromancy.__file__).resolve().parent
        (self._shim / "aeromancy").symlink_to(package, target_is_directory=True)
        self._live: set[int] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Remove the import shim (children still running keep what they imported)."""
        shutil.rmtree(self._shim, ignore_errors=True)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(self._shim), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def run(
        self,
        request_path: Path,
        cwd: Path,
        relay: OutputRelay,
        on_event: Callable[[Event], None],
    ) -> ChildExit:
        """Run one child to its end, relaying output and events; return how it ended."""
        read_events, write_events = os.pipe()
        argv = [self.python, "-u", "-m", "aeromancy.execution.child"]
        started = time.monotonic()
        try:
            with self._lock:
                process = subprocess.Popen(
                    [*argv, str(request_path), str(write_events)],
                    cwd=cwd,
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(write_events,),
                    start_new_session=True,
                )
                self._live.add(process.pid)
                if self.stopped:
                    _kill_group(process.pid, signal.SIGKILL)
        finally:
            os.close(write_events)
        try:
            result = _pump(process, read_events, relay, on_event)
            _kill_group(process.pid, signal.SIGKILL)  # whatever the task left running
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            os.close(read_events)
            with self._lock:
                self._live.discard(process.pid)
        process.returncode = os.waitstatus_to_exitcode(status)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        resources = Resources(
            wall_s=round(time.monotonic() - started, 6),
            cpu_user_s=round(usage.ru_utime, 6),
            cpu_system_s=round(usage.ru_stime, 6),
            max_rss_bytes=_peak_rss(result, usage),
        )
        return ChildExit(process.returncode, result, resources)

    def stop_all(self) -> None:
        """Stop every live child (SIGTERM, SIGKILL after a grace period); start no more."""
        with self._lock:
            self.stopped = True
            live = set(self._live)
        for pid in live:
            _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                if not self._live:
                    return
            time.sleep(0.02)
        with self._lock:
            for pid in self._live:
                _kill_group(pid, signal.SIGKILL)


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _pidfd(pid: int) -> int | None:
    """Return a descriptor that becomes readable when ``pid`` exits (Linux), else None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _pump(
    process: subprocess.Popen[bytes],
    events_fd: int,
    relay: OutputRelay,
    on_event: Callable[[Event], None],
) -> Event | None:
    """Relay output and events until the child's pipes close; return its result event.

    The pipes stay open while a process the task started holds them; once the child
    itself has exited, they are read for at most ``DRAIN_SECONDS`` more.
    """
    if process.stdout is None or process.stderr is None:
        raise ValueError("the child's stdout and stderr must be pipes")
    pump = _Pump(relay, on_event)
    pump.add(process.stdout.fileno(), "stdout")
    pump.add(process.stderr.fileno(), "stderr")
    pump.add(events_fd, None)
    exit_fd = _pidfd(process.pid)
    try:
        pump.run(exit_fd)
    finally:
        pump.selector.close()
        if exit_fd is not None:
            os.close(exit_fd)
        relay.close()
    return pump.result


class _Pump:
    """One child's pipes in a selector: output to the relay, events to their handler."""

    def __init__(self, relay: OutputRelay, on_event: Callable[[Event], None]) -> None:
        self.selector = selectors.DefaultSelector()
        self.relay = relay
        self.on_event = on_event
        self.splitter = LineSplitter()
        self.result: Event | None = None
        self.streams: dict[int, Stream | None] = {}

    def add(self, fd: int, stream: Stream | None) -> None:
        """Read ``fd``: a stream of the task's output, or (None) the event pipe."""
        self.streams[fd] = stream
        self.selector.register(fd, selectors.EVENT_READ)

    def run(self, exit_fd: int | None) -> None:
        if exit_fd is not None:
            self.selector.register(exit_fd, selectors.EVENT_READ)
        exited = False
        while any(fd in self.streams for fd in self.selector.get_map()):
            ready = self.selector.select(DRAIN_SECONDS if exited else None)
            if not ready:
                return  # the child is gone; what it left behind holds the pipes
            for key, _ in ready:
                if key.fd == exit_fd:
                    exited = True
                    self.selector.unregister(exit_fd)
                else:
                    self.read(key.fd)

    def read(self, fd: int) -> None:
        data = os.read(fd, _CHUNK)
        stream = self.streams[fd]
        if not data:
            self.selector.unregister(fd)
        elif stream is not None:
            self.relay.feed(stream, data)
        else:
            for event in self.splitter.feed(data):
                if event.get("event") == RESULT_EVENT:
                    self.result = event
                else:
                    self.on_event(event)
