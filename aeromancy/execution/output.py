"""A task's stdout and stderr: shown as they arrive, and kept (capped) for its run record.

With ``-j 1`` the bytes reach the terminal as written; with more jobs each line is
prefixed ``[task] `` so parallel tasks stay readable (a line shows once it is complete).
The log keeps both streams in arrival order; past ``MAX_LOG_BYTES`` it keeps the first
half and the last half, with a line saying how much was left out.
"""

from __future__ import annotations

import codecs
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

Stream = Literal["stdout", "stderr"]
# Where shown output goes: (stream, text). The default writes to sys.stdout/sys.stderr.
OutputSink = Callable[[Stream, str], None]
MAX_LOG_BYTES = 16 << 20

_terminal_lock = threading.Lock()


def terminal_sink(stream: Stream, text: str) -> None:
    """Write ``text`` to this process's stdout or stderr (as they are when called)."""
    target = sys.stdout if stream == "stdout" else sys.stderr
    with _terminal_lock:
        target.write(text)
        target.flush()


class CappedLog:
    """A log file that keeps at most ``limit`` bytes: the head, and the tail in memory."""

    def __init__(self, path: Path, limit: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.size = 0
        self._file = path.open("wb")
        self._tail = bytearray()

    def write(self, data: bytes) -> None:
        room = max(0, self.head_limit - self.size)
        self._file.write(data[:room])
        self._tail += data[room:]
        del self._tail[: max(0, len(self._tail) - self.tail_limit)]
        self.size += len(data)

    def close(self) -> int:
        """Finish the file; return the number of bytes the task wrote."""
        left_out = self.size - self.head_limit - len(self._tail)
        if left_out > 0:
            self._file.write(f"\n[... {left_out} bytes of output not kept ...]\n".encode())
        self._file.write(self._tail)
        self._file.close()
        return self.size


class OutputRelay:
    """Takes a child's output chunks: shows them through ``sink`` and appends them to ``log``."""

    def __init__(self, sink: OutputSink, log: CappedLog, prefix: str | None) -> None:
        self.sink = sink
        self.log = log
        self.prefix = prefix
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in _STREAMS}
        self._partial: dict[Stream, str] = {s: "" for s in _STREAMS}

    def feed(self, stream: Stream, data: bytes) -> None:
        self.log.write(data)
        text = self._decoders[stream].decode(data)
        if self.prefix is None:
            if text:
                self.sink(stream, text)
            return
        *lines, self._partial[stream] = (self._partial[stream] + text).split("\n")
        if lines:
            self.sink(stream, "".join(f"{self.prefix}{line}\n" for line in lines))

    def close(self) -> None:
        """Show what is left of unterminated lines."""
        for stream in _STREAMS:
            rest = self._partial[stream] + self._decoders[stream].decode(b"", final=True)
            if rest:
                self.sink(stream, f"{self.prefix or ''}{rest}\n" if self.prefix else rest)


_STREAMS: tuple[Stream, ...] = ("stdout", "stderr")
