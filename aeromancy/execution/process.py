"""Starting a task's process, relaying what it says, and naming how it ended.

Each task run is a process of the project's interpreter of its own: forked by the
run's fork server (``execution/forkserver.py``: one per ``ChildProcesses``, which has
imported the child runtime once), or, where there is none (``AEROMANCY_FORK_SERVER=0``,
not Linux, the server failed), a fresh ``python -u -m aeromancy.execution.child run``.
Either way it is in a session of its own (a Ctrl-C at the terminal reaches only
``aeromancy run``, which then stops every child), stdin from /dev/null, stdout and
stderr on pipes; it dies with the process that started it. The child finds Aeromancy
through a temporary directory first on its ``PYTHONPATH`` that holds only a link to
this process's ``aeromancy`` package: none of Aeromancy's dependencies become
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aeromancy
from aeromancy.execution import forkserver
from aeromancy.execution.child.protocol import RESULT_EVENT, LineSplitter
from aeromancy.execution.forkserver import ForkServer, ForkServerError, Reaped
from aeromancy.execution.output import OutputRelay, Stream

Event = dict[str, Any]
# After the child exits, how long to wait for processes it left holding its pipes.
DRAIN_SECONDS = 0.5
STOP_GRACE_SECONDS = 3.0
_CHUNK = 1 << 16
Reaper = Callable[[], Reaped]


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


def _peak_rss(result: Event | None, reaped: Reaped) -> int:
    """Return the child's own peak RSS when it reported one, else wait4's (an upper
    bound: it includes the parent's footprint at the fork, see child.runtime)."""
    reported = (result or {}).get("peak_rss_bytes")
    if isinstance(reported, int):
        return reported
    return reaped.maxrss_kib * (1 if sys.platform == "darwin" else 1024)


class ChildProcesses:
    """Starts task children with one interpreter; ``stop_all`` ends every live one.

    ``fork_server`` None: use one where ``forkserver.enabled()`` says so.
    """

    def __init__(self, python: str, fork_server: bool | None = None) -> None:
        self.python = python
        self.stopped = False
        self._shim = Path(tempfile.mkdtemp(prefix="aeromancy-child-path-"))
        package = Path(aeromancy.__file__).resolve().parent
        (self._shim / "aeromancy").symlink_to(package, target_is_directory=True)
        self._live: set[int] = set()
        self._lock = threading.Lock()
        self._forking = forkserver.enabled() if fork_server is None else fork_server
        self._server: ForkServer | None = None

    def close(self) -> None:
        """End the fork server and remove the import shim (children still running keep
        what they imported)."""
        with self._lock:
            server, self._server, self._forking = self._server, None, False
        if server is not None:
            server.close()
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
        on_start: Callable[[int], None] | None = None,
    ) -> ChildExit:
        """Run one child to its end, relaying output and events; return how it ended.

        After ``stop_all`` no child starts: the answer is a child killed at its start.
        ``on_start`` is told the child's pid (its process group) once it exists.
        """
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, events
        started = time.monotonic()
        try:
            with self._lock:
                if self.stopped:
                    raise _Stopped
                pid, reap = self._start(request_path, cwd, [w for _, w in pipes])
                self._live.add(pid)
                if on_start is not None:
                    on_start(pid)
        except BaseException as exc:
            for read, _ in pipes:
                os.close(read)
            if isinstance(exc, _Stopped):
                return ChildExit(-signal.SIGKILL, None, Resources(0.0, 0.0, 0.0, 0))
            raise
        finally:
            for _, write in pipes:
                os.close(write)
        (out, _), (err, _), (events, _) = pipes
        try:
            result = _pump(pid, {out: "stdout", err: "stderr", events: None}, relay, on_event)
            kill_group(pid, signal.SIGKILL)  # whatever the task left running
            reaped = reap()
        finally:
            for read, _ in pipes:
                os.close(read)
            with self._lock:
                self._live.discard(pid)
        resources = Resources(
            wall_s=round(time.monotonic() - started, 6),
            cpu_user_s=round(reaped.utime, 6),
            cpu_system_s=round(reaped.stime, 6),
            max_rss_bytes=_peak_rss(result, reaped),
        )
        return ChildExit(os.waitstatus_to_exitcode(reaped.status), result, resources)

    def _start(self, request: Path, cwd: Path, fds: Sequence[int]) -> tuple[int, Reaper]:
        """Start the task's process (forked, else spawned); return its pid and reaper.

        Called with ``_lock`` held.
        """
        server = self._fork_server(cwd)
        if server is not None:
            try:
                pid = server.fork(request, cwd, fds)
            except ForkServerError:
                self._drop_server()
            else:
                return pid, lambda: _reap_forked(server, pid)
        return self._spawn(request, cwd, fds)

    def _fork_server(self, cwd: Path) -> ForkServer | None:
        """Return the fork server for children in ``cwd``, started on first use."""
        if not self._forking:
            return None
        if self._server is None:
            try:
                self._server = ForkServer(self.python, self.environment(), cwd)
            except ForkServerError:
                self._forking = False  # e.g. this Python cannot run it: spawn from now on
                return None
        return self._server if self._server.cwd == cwd else None

    def _drop_server(self) -> None:
        server, self._server, self._forking = self._server, None, False
        if server is not None:
            threading.Thread(target=server.close, daemon=True).start()

    def _spawn(self, request: Path, cwd: Path, fds: Sequence[int]) -> tuple[int, Reaper]:
        stdout, stderr, events = fds
        argv = [self.python, "-u", "-m", "aeromancy.execution.child", "run"]
        process = subprocess.Popen(
            [*argv, str(request), str(events), str(os.getpid())],
            cwd=cwd,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(events,),
            start_new_session=True,
        )

        def reap() -> Reaped:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return Reaped(status, usage.ru_utime, usage.ru_stime, usage.ru_maxrss)

        return process.pid, reap

    def stop_all(self) -> None:
        """Stop every live child (SIGTERM, SIGKILL after a grace period); start no more."""
        with self._lock:
            self.stopped = True

        def live() -> set[int]:
            with self._lock:
                return set(self._live)

        stop_process_groups(live)


class _Stopped(Exception):
    """No child starts after ``stop_all``."""


def _reap_forked(server: ForkServer, pid: int) -> Reaped:
    """Return how the forked ``pid`` ended; a fork server that died took it along
    (its children get SIGKILL when it dies)."""
    try:
        return server.reap(pid)
    except ForkServerError:
        return Reaped(int(signal.SIGKILL), 0.0, 0.0, 0)


def stop_process_groups(live: Callable[[], set[int]]) -> None:
    """SIGTERM the process group of each pid ``live()`` gives; SIGKILL those still
    live after the grace period (``live`` is asked again as they go)."""
    for pid in live():
        kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not live():
            return
        time.sleep(0.02)
    for pid in live():
        kill_group(pid, signal.SIGKILL)


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid``, if it is still there."""
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
    pid: int,
    fds: Mapping[int, Stream | None],
    relay: OutputRelay,
    on_event: Callable[[Event], None],
) -> Event | None:
    """Relay output and events until the child's pipes close; return its result event.

    ``fds`` are the read ends: the task's stdout and stderr, and (None) its event pipe.
    The pipes stay open while a process the task started holds them; once the child
    itself has exited, they are read for at most ``DRAIN_SECONDS`` more.
    """
    pump = _Pump(relay, on_event)
    for fd, stream in fds.items():
        pump.add(fd, stream)
    exit_fd = _pidfd(pid)
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
