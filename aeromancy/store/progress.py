"""Rich progress bars for transfers a person waits for (a start and an end line when not
a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from aeromancy.long_steps import plain_step, size_text
from aeromancy.store.backend import ProgressCallback

#: Transfers smaller than this finish in a moment on any link; no bar for them.
MIN_BYTES_FOR_BAR = 16 << 20


def _ignore(_count: int) -> None:
    return None


@contextmanager
def transfer_progress(description: str, total_bytes: int) -> Iterator[ProgressCallback]:
    """Yield a callback advancing a byte progress bar on stderr (a no-op when quiet)."""
    console = Console(stderr=True)
    if total_bytes < MIN_BYTES_FOR_BAR:
        yield _ignore
        return
    if not console.is_terminal:
        with plain_step(console, f"{description} ({size_text(total_bytes)})"):
            yield _ignore
        return
    with byte_bar(console, description, total_bytes) as advance:
        yield advance


@contextmanager
def byte_bar(console: Console, description: str, total_bytes: int) -> Iterator[ProgressCallback]:
    """Yield a callback advancing a transient rich bar of ``total_bytes`` on ``console``.

    Progress.advance takes rich's internal lock, so transfer threads may call it.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total_bytes)
        yield lambda count: progress.advance(task, count)
