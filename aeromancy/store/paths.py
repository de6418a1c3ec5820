"""Path safety: which files a push takes, and which relative paths a manifest may hold.

A pushed directory contributes its regular files at relative, normalised POSIX
paths. Nothing may escape it: ``..`` and absolute paths are refused, and so are
symlinks whose target lies outside the directory, and a pushed path that is itself a
link (its target is not what was saved). Empty directories are dropped.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from aeromancy.errors import InvalidName, UsageError
from aeromancy.store.backend import FilePath


@dataclass(frozen=True)
class SourceFile:
    """A file about to be pushed: its path inside the artifact and on disk."""

    path: str
    #: The file on disk: a str when collected here (no Path object per file).
    local: FilePath
    size: int
    #: What ``stat`` said of it when it was collected (None when not collected here):
    #: its state before any byte of it was read.
    info: os.stat_result | None = field(default=None, compare=False, repr=False)


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a relative, normalised POSIX path; raise InvalidName if not."""
    if _plainly_relative(path):
        return path
    problem = path_problem(path)
    if problem:
        raise InvalidName(
            f"artifact file path {path!r} {problem}",
            "paths inside an artifact are relative, normalised and stay inside it",
        )
    return path


def path_problem(path: str) -> str | None:
    """Return what makes ``path`` no relative, normalised POSIX path, or None."""
    pure = PurePosixPath(path)
    if not path or path in (".", "/"):
        return "is empty"
    if pure.is_absolute() or path.startswith("\\") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    if ".." in pure.parts:
        return "contains '..'"
    if str(pure) != path or "." in pure.parts or "\\" in path or "\x00" in path:
        return "is not normalised"
    return None


def _plainly_relative(path: str) -> bool:
    """Return True for exactly the paths :func:`path_problem` finds nothing wrong with
    (a test of the string, no path object: a pull checks each of its files)."""
    return (
        path[1:2] != ":"
        and "\\" not in path
        and "\x00" not in path
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def collect_files(source: Path) -> list[SourceFile]:
    """Return the files a push of ``source`` takes, sorted by path.

    A file gives one entry named by its basename; a directory gives its files
    recursively. Raises UsageError when ``source`` is missing or holds no files,
    InvalidName when a symlink leads outside it.
    """
    try:
        source.lstat()
    except FileNotFoundError:
        pass  # said below
    except OSError as exc:  # EACCES: a folder on the way is not searchable
        raise UsageError(
            f"cannot read {source}: {exc.strerror or exc}", "make it readable, or push another path"
        ) from exc
    if source.is_symlink():
        raise InvalidName(
            f"{source} is a symbolic link (to {os.path.realpath(source)})",
            "push or save the file or directory it points to, not the link",
        )
    if not source.exists():
        raise UsageError(f"{source} does not exist", "give the path of a file or directory")
    if source.is_file():
        _check_readable(source, str(source))
        info = source.stat()
        return [SourceFile(check_relative_path(source.name), source, info.st_size, info)]
    if not source.is_dir():
        raise UsageError(f"{source} is not a regular file or directory", "push a file or a folder")
    root_real = os.path.realpath(source)
    walked = _walk(source, "", root_real, root_real, frozenset({root_real}))
    files = sorted(walked, key=lambda f: f.path)
    if not files:
        raise UsageError(f"{source} holds no files", "push a directory with at least one file")
    return files


def _inside(path_real: str, root_real: str) -> bool:
    return path_real == root_real or path_real.startswith(root_real.rstrip(os.sep) + os.sep)


def _walk(
    directory: Path, rel: str, real: str, root_real: str, ancestors: frozenset[str]
) -> list[SourceFile]:
    """Return the files under ``directory``; ``real`` is its path with links resolved,
    ``ancestors`` the resolved directories on the way down from ``root_real``."""
    found: list[SourceFile] = []
    try:
        with os.scandir(directory) as scanned:
            entries = list(scanned)
    except OSError as exc:
        raise UsageError(
            f"cannot read the directory {directory}: {exc.strerror or exc}",
            "make it readable, or remove it before pushing",
        ) from exc
    for entry in entries:
        rel_path = f"{rel}/{entry.name}" if rel else entry.name
        if "\\" in entry.name or rel_path[1:2] == ":":
            check_relative_path(rel_path)  # says what is wrong; scandir gives no '.' or '..'
        _add_entry(entry, rel_path, real, root_real, ancestors, into=found)
    return found


def _add_entry(
    entry: os.DirEntry[str],
    rel_path: str,
    parent_real: str,
    root_real: str,
    ancestors: frozenset[str],
    *,
    into: list[SourceFile],
) -> None:
    """Add the files ``entry`` gives to ``into``: itself, or those under it."""
    link = entry.is_symlink()
    if link:
        real = os.path.realpath(entry.path)
        if not _inside(real, root_real):
            raise InvalidName(
                f"symlink {rel_path} points outside the pushed directory (to {real})",
                "replace the link with a copy of its target, or push the target itself",
            )
    try:
        info = os.stat(entry.path) if link else entry.stat(follow_symlinks=False)
    except FileNotFoundError as exc:
        if not link:
            raise UsageError(f"{rel_path} vanished while it was listed", "push again") from exc
        raise UsageError(
            f"symlink {rel_path} is broken", "remove it or point it at an existing file"
        ) from exc
    except OSError as exc:  # ELOOP: links that point at each other; EACCES...
        raise UsageError(
            f"cannot read {rel_path}: {exc.strerror or exc}", "fix or remove it before pushing"
        ) from exc
    if stat.S_ISREG(info.st_mode):
        _check_readable(entry.path, rel_path, info)
        into.append(SourceFile(rel_path, entry.path, info.st_size, info))
        return
    if stat.S_ISDIR(info.st_mode):
        # A link is resolved; anything else is where its (resolved) parent says.
        if not link:
            real = f"{parent_real.rstrip(os.sep)}/{entry.name}"
        if real in ancestors:
            raise InvalidName(f"symlink {rel_path} makes a loop", "remove the looping link")
        into.extend(_walk(Path(entry.path), rel_path, real, root_real, ancestors | {real}))
        return
    raise UsageError(
        f"{rel_path} is not a regular file (socket, fifo or device)", "remove it before pushing"
    )


@functools.cache
def _euid() -> int:
    """Return this process's effective user id (asked once: a push asks it per file)."""
    return os.geteuid()


def _check_readable(path: str | Path, shown: str, info: os.stat_result | None = None) -> None:
    """Refuse a file this process may not read, before any blob of the push is written.

    A file this process owns with its owner's read bit set (``info``, its stat) is
    readable without asking the kernel again; any other is checked with access(2).
    """
    if info is not None and info.st_mode & stat.S_IRUSR and info.st_uid == _euid():
        return
    if not os.access(path, os.R_OK):
        raise UsageError(
            f"cannot read {shown}: permission denied",
            "make it readable, or remove it before pushing",
        )
