"""The parent/child protocol of a task run: one request file, JSON-lines events on a pipe.

The parent writes the request (``REQUEST_FILENAME``) next to the task's workdir and starts
the task's process (forked by the fork server, or ``python -u -m aeromancy.execution.child
run REQUEST_PATH EVENTS_FD PARENT_PID``) with ``EVENTS_FD`` open. The child writes one
JSON object per line to ``EVENTS_FD``: any number of ``log`` events, then exactly one
``result`` event, then exits 0. A child that exits without a ``result`` event failed, and
its exit status names the cause. Both sides import this module; it needs only the stdlib.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

PROTOCOL = 1
REQUEST_FILENAME = "request.json"
LOG_EVENT = "log"
RESULT_EVENT = "result"
# The traceback a record keeps: the end of it, where the error is.
MAX_ERROR_CHARS = 20_000


def jsonable(value: Any) -> Any:
    """Return a JSON-encodable stand-in for ``value``: numpy-style scalars by ``item()``,
    anything else by ``str``."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


def encode_event(kind: str, **fields: Any) -> bytes:
    """Return one event as a JSON line."""
    document = {"event": kind, **fields}
    return json.dumps(document, default=jsonable, separators=(",", ":")).encode() + b"\n"


class EventWriter:
    """The child's end of the event pipe; safe to use from the task's threads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()

    def send(self, kind: str, **fields: Any) -> None:
        """Write one event, whole (a pipe may take a long line in several writes)."""
        data = memoryview(encode_event(kind, **fields))
        with self._lock:
            while data:
                data = data[os.write(self.fd, data) :]


class LineSplitter:
    """The parent's reassembly of event lines from the chunks a pipe delivers."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Return the events completed by ``chunk``; undecodable lines are dropped."""
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events
