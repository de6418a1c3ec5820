"""Temporary files and folders named by their owner, so leftovers of dead processes go.

A writer names each temporary thing it makes with its owner tag, ``<pid>@<host>@``.
The next process that looks (a push, a pull, a run) removes those whose owner is on
this host and no longer runs; a live writer's files are never touched. Things of
other hosts (a store shared over NFS, a container's own hostname) cannot be checked
that way and go once they are older than a day.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

#: Past this age a temporary thing belongs to a writer that died, whoever it was.
STALE_SECONDS = 24 * 3600
TASK_DIR_PREFIX = "aeromancy-task-"
_OWNER = re.compile(r"([0-9]+)@([A-Za-z0-9.\-_]+)@")


@functools.cache
def owner() -> str:
    """Return this process's owner tag, ``<pid>@<host>@`` (the last ``@`` ends the host).

    Made once per process (a forked child makes its own): a store names a temporary
    file by it for every file it writes.
    """
    return f"{os.getpid()}@{_host()}@"


os.register_at_fork(after_in_child=owner.cache_clear)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.\-_]", "_", socket.gethostname()) or "localhost"


def abandoned(name: str, mtime: float, max_age: float = STALE_SECONDS) -> bool:
    """Return True when the thing called ``name`` was left by a process that is gone.

    Its owner tag (anywhere in the name) names a dead process of this host, or it is
    older than ``max_age`` seconds.
    """
    if time.time() - mtime > max_age:
        return True
    match = _OWNER.search(name)
    if match is None:
        return False
    pid, host = int(match.group(1)), match.group(2)
    return host == _host() and not alive(pid)


def alive(pid: int) -> bool:
    """Return True when a process with this id runs (one we may not signal counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_files(directory: Path, suffix: str) -> int:
    """Remove abandoned files ending in ``suffix`` directly in ``directory``; return a count."""
    removed = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if entry.name.endswith(suffix) and _entry_abandoned(entry):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _entry_abandoned(entry: os.DirEntry[str]) -> bool:
    try:
        return abandoned(entry.name, entry.stat(follow_symlinks=False).st_mtime)
    except FileNotFoundError:  # another process removed it first
        return False


def task_dir(task: str) -> Path:
    """Make and return a task run's scratch folder in TMPDIR, named by its owner.

    The first call of a process removes the folders of task runs whose process died.
    """
    _sweep_task_dirs_once(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=f"{TASK_DIR_PREFIX}{owner()}-{task}-"))


@functools.cache
def _sweep_task_dirs_once(directory: str) -> None:
    sweep_task_dirs(Path(directory))


def sweep_task_dirs(directory: Path) -> int:
    """Remove the abandoned task folders in ``directory``; return how many."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            ours = entry.name.startswith(TASK_DIR_PREFIX) and _OWNER.search(entry.name)
            if ours and entry.is_dir(follow_symlinks=False) and _entry_abandoned(entry):
                remove_tree(Path(entry.path))
                removed += 1
    return removed


def remove_tree(path: Path) -> None:
    """Delete a scratch tree, first making its read-only directories (inputs) writable.

    Only directories are touched: a file's mode may be shared with the read cache
    (``AEROMANCY_LINK=hardlink``) and must stay.
    """
    for directory, subdirectories, _ in os.walk(path):
        for sub in subdirectories:
            target = os.path.join(directory, sub)
            if not os.path.islink(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)
