"""One line when a long step starts and one when it ends, where no live display shows.

On a terminal rich draws spinners and bars. When stderr is a pipe or a log file (CI,
``2> log``) they draw nothing, and a build that takes minutes looks hung. There
:func:`plain_step` prints ``text ...`` when the step starts and
``text: done in 52.1s (detail)`` (or ``failed after ...``) when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console


@dataclass
class Step:
    """What the end line adds after the time: set ``detail`` (sizes, counts) inside the step."""

    detail: str = ""


def seconds_text(seconds: float) -> str:
    """Return a step's duration as ``4.2s`` or ``3m12s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def size_text(size: int) -> str:
    """Return a byte count as ``812 KiB``, ``45.3 MiB`` or ``1.2 GiB``."""
    if size < 1 << 20:
        return f"{size / 1024:.0f} KiB"
    if size < 1 << 30:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / (1 << 30):.1f} GiB"


@contextmanager
def plain_step(console: Console, text: str) -> Iterator[Step]:
    """Print a start line and an end line for the step when ``console`` is not a terminal."""
    step = Step()
    if console.is_terminal:
        yield step
        return
    console.print(f"{text} ...", markup=False, highlight=False, soft_wrap=True)
    started = time.monotonic()
    try:
        yield step
    except BaseException:
        elapsed = seconds_text(time.monotonic() - started)
        console.print(
            f"{text}: failed after {elapsed}", markup=False, highlight=False, soft_wrap=True
        )
        raise
    end = f"{text}: done in {seconds_text(time.monotonic() - started)}"
    console.print(
        end + (f" ({step.detail})" if step.detail else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
