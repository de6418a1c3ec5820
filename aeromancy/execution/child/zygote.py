"""The fork server: one process of the project's Python that forks each task's process.

``python -u -m aeromancy.execution.child zygote CONTROL_FD``. It imports the child
runtime once (never the task module: see "The fork server" in docs/tasks.md), then
serves the parent over ``CONTROL_FD``, a Unix datagram-like socket (SOCK_SEQPACKET),
one JSON message per packet, each answered by one reply:

- ``{"op": "fork", "request": PATH, "cwd": DIR}`` with the task's stdout, stderr and
  event pipe as three descriptors (SCM_RIGHTS): forks a task process; ``{"pid": N}``.
- ``{"op": "reap", "pid": N}`` once the parent saw the task end: waits for it;
  ``{"pid": N, "status": WAIT_STATUS, "utime": S, "stime": S, "maxrss_kib": K}``.

A refused request is answered ``{"error": "..."}``. The fork server is single-threaded
and refuses to fork otherwise. When the parent's end closes (it exited, or was killed)
it kills every task process it started, with their process groups, and exits.
Stdlib only: this runs in the project's environment.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from aeromancy.execution.child import runtime
from aeromancy.execution.child.lifetime import die_with_parent, libc_prctl

MAX_MESSAGE = 1 << 16
FDS_PER_FORK = 3  # stdout, stderr, events


def main(argv: list[str]) -> NoReturn:
    """Serve the parent on the control socket ``argv[0]`` until it goes away."""
    control = socket.socket(fileno=int(argv[0]))
    libc_prctl()  # loaded once here, not in every fork
    gc.freeze()  # what is imported now stays put: forks share those pages
    Zygote(control).serve()


class Zygote:
    """The loop: fork on request, reap on request, kill everything when the parent goes."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.pid = os.getpid()
        self.live: set[int] = set()

    def serve(self) -> NoReturn:
        self.reply(ready=True, pid=self.pid)
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.control, MAX_MESSAGE, FDS_PER_FORK)
            except OSError:
                data, fds = b"", []
            if not data:
                self.shutdown()
            try:
                message = json.loads(data)
                if message.get("op") == "fork":
                    self.fork(message, fds)
                elif message.get("op") == "reap":
                    self.reap(int(message["pid"]))
                else:
                    self.reply(error=f"unknown request {message.get('op')!r}")
            except (ValueError, KeyError, TypeError, OSError) as exc:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self.reply(error=f"{type(exc).__name__}: {exc}")

    def fork(self, message: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != FDS_PER_FORK:
            raise ValueError(f"a fork request carries {FDS_PER_FORK} descriptors, not {len(fds)}")
        threads = native_threads()
        if threads != 1:
            raise OSError(f"the fork server runs {threads} threads; it forks only with one")
        pid = os.fork()
        if pid == 0:
            become_task(message, fds, self.control, self.pid)
        for fd in fds:
            os.close(fd)
        self.live.add(pid)
        self.reply(pid=pid)

    def reap(self, pid: int) -> None:
        if pid not in self.live:
            raise KeyError(f"pid {pid} is not a task process of this fork server")
        _, status, usage = os.wait4(pid, 0)
        self.live.discard(pid)
        self.reply(
            pid=pid,
            status=status,
            utime=usage.ru_utime,
            stime=usage.ru_stime,
            maxrss_kib=usage.ru_maxrss,
        )

    def reply(self, **fields: Any) -> None:
        self.control.send(json.dumps(fields).encode())

    def shutdown(self) -> NoReturn:
        """The parent is gone: kill every task process and its group, reap them, exit."""
        for pid in self.live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid in self.live:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)


def native_threads() -> int:
    """Return the number of threads of this process, native ones included (Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 1
    for line in status.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 1


def become_task(
    message: dict[str, Any], fds: list[int], control: socket.socket, zygote: int
) -> NoReturn:
    """In the forked process: set it up as a fresh task process and run the request.

    Never returns to the fork server's loop, whatever happens.
    """
    try:
        control.close()
        os.setsid()  # its own session and process group, as a spawned child
        die_with_parent(zygote)
        stdout, stderr, events = fds
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
            os.close(source)
        os.set_inheritable(events, False)
        os.chdir(message["cwd"])
        runtime.reset_peak_rss()
        sys.argv = [sys.argv[0], "run", message["request"], str(events)]
        runtime.serve(Path(message["request"]), events)
    except SystemExit as exc:
        os._exit(runtime.exit_status(exc.code))
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    os._exit(1)
