"""The parent's end of the fork server (``execution/child/zygote.py`` is the other end).

One fork server per :class:`~aeromancy.execution.process.ChildProcesses`, started on the
first task run, of the same interpreter, environment and directory a spawned child would
have. Requests from the parent's task threads are one exchange at a time (a lock): a
fork is answered at once, and a reap is asked for only once the task process has ended.
Linux only; ``AEROMANCY_FORK_SERVER=0`` turns it off (every task run is then spawned).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeromancy.errors import InfrastructureError

FORK_SERVER_ENV = "AEROMANCY_FORK_SERVER"
# Under heavy load an interpreter start takes seconds; a reply takes milliseconds.
START_TIMEOUT_S = 120.0
REPLY_TIMEOUT_S = 60.0
_MAX_REPLY = 1 << 16


class ForkServerError(InfrastructureError):
    """The fork server could not be started, refused a request, or is gone (the caller
    then spawns the task's process instead)."""


@dataclass(frozen=True)
class Reaped:
    """How a forked task process ended: its wait status and what it used."""

    status: int
    utime: float
    stime: float
    maxrss_kib: int


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when task runs should be forked: Linux, and not turned off."""
    environ = os.environ if environ is None else environ
    if environ.get(FORK_SERVER_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


class ForkServer:
    """A running fork server: ``fork`` a task process, ``reap`` it, ``close`` it."""

    def __init__(self, python: str, env: Mapping[str, str], cwd: Path) -> None:
        """Start the fork server and wait until it is ready. Raises ForkServerError."""
        self.cwd = cwd
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        self._lock = threading.Lock()
        try:
            self._process = subprocess.Popen(
                [python, "-u", "-m", "aeromancy.execution.child", "zygote", str(theirs.fileno())],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise ForkServerError(f"cannot start the fork server: {exc}") from exc
        finally:
            theirs.close()
        try:
            ready = self._receive(START_TIMEOUT_S)
        except ForkServerError:
            self.close()
            raise
        self.pid = int(ready["pid"])

    def fork(self, request: Path, cwd: Path, fds: Sequence[int]) -> int:
        """Fork a task process for ``request`` with ``fds`` as its stdout, stderr and
        event pipe; return its pid. Raises ForkServerError."""
        message = {"op": "fork", "request": str(request), "cwd": str(cwd)}
        return int(self._exchange(message, fds)["pid"])

    def reap(self, pid: int) -> Reaped:
        """Wait for the ended task process ``pid``; return how it ended."""
        reply = self._exchange({"op": "reap", "pid": pid}, ())
        return Reaped(
            int(reply["status"]),
            float(reply["utime"]),
            float(reply["stime"]),
            int(reply["maxrss_kib"]),
        )

    def close(self) -> None:
        """End the fork server (it kills any task process still running) and wait for it."""
        with contextlib.suppress(OSError):
            self._control.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _exchange(self, message: dict[str, Any], fds: Sequence[int]) -> dict[str, Any]:
        data = json.dumps(message).encode()
        with self._lock:
            try:
                if fds:
                    socket.send_fds(self._control, [data], list(fds))
                else:
                    self._control.send(data)
            except OSError as exc:
                raise ForkServerError(f"the fork server is gone: {exc}") from exc
            return self._receive(REPLY_TIMEOUT_S)

    def _receive(self, timeout: float) -> dict[str, Any]:
        self._control.settimeout(timeout)
        try:
            data = self._control.recv(_MAX_REPLY)
        except OSError as exc:  # socket.timeout included
            raise ForkServerError(f"the fork server did not answer: {exc}") from exc
        if not data:
            raise ForkServerError("the fork server is gone")
        reply: dict[str, Any] = json.loads(data)
        if "error" in reply:
            raise ForkServerError(f"the fork server refused: {reply['error']}")
        return reply
