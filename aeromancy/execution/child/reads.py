"""The files of the project tree a task opens for reading, seen by an audit hook.

Every Python-level open (``open``, ``io.open``, ``os.open``, and so every library that
reads through them: pandas, numpy, yaml, csv) raises the ``open`` audit event, which the
hook records when the open is read-only. Files read by native code (a C library calling
``fopen``) raise no event; tasks declare those with ``@task(files=[...])``.

What is not a file dependency: files outside the project root, files opened for writing,
anything under the task run's scratch folder (its workdir and inputs), Python code and
compiled modules (the code identity covers project code), the project's virtualenv and
``.git``. Stdlib only: this runs in the project's environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pyd")
SKIPPED_PARTS = ("__pycache__", ".git", ".venv", "site-packages")


class ReadRecorder:
    """Collects the absolute paths opened read-only while ``active``."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.active = False

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook: record a read-only open of a named file."""
        if event != "open" or not self.active:
            return
        path, mode, flags = (*args, None, None, None)[:3]
        if not isinstance(path, (str, bytes, os.PathLike)) or not _read_only(mode, flags):
            return
        try:
            self.paths.add(os.path.abspath(os.fsdecode(path)))
        except (TypeError, ValueError):
            return

    def dependencies(self, root: str, excluded: Iterable[str]) -> list[str]:
        """Return the recorded files under ``root`` that count, relative POSIX paths, sorted."""
        root = os.path.realpath(root)
        skip = [os.path.realpath(p) for p in (*excluded, sys.prefix, sys.exec_prefix)]
        found = set()
        for raw in self.paths:
            path = os.path.realpath(raw)
            if not _under(path, root) or any(_under(path, s) for s in skip):
                continue
            relative = os.path.relpath(path, root)
            parts = relative.split(os.sep)
            if path.endswith(CODE_SUFFIXES) or any(p in SKIPPED_PARTS for p in parts):
                continue
            if os.path.isfile(path):
                found.add("/".join(parts))
        return sorted(found)


def _read_only(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return not any(c in mode for c in "wax+")
    if isinstance(flags, int):
        return flags & os.O_ACCMODE == os.O_RDONLY
    return False


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)
