"""Writing a version's files under a destination directory (DEST), safely.

- **Never through a link.** Every directory below DEST is opened relative to its
  parent with ``O_NOFOLLOW``, so a symbolic link inside DEST (there before the pull,
  or planted during it) is refused, never followed out of DEST.
- **Never a partial file under a real name.** Each file is written under a
  temporary name in its own directory (``.NAME.<pid>@<host>@-<hex>.aeromancy-part``) and
  renamed to NAME only when complete, by a rename that refuses to replace (else a
  link): it fails if NAME appeared meanwhile, so nothing is overwritten.
- **A re-pull completes a killed pull.** A file that already holds the right bytes is
  kept; temporary files of pulls whose process is gone are removed; any other file
  in the way is refused (exit 2) before anything is written.
- **New inodes.** Each file is a reflink or a copy of the verified cache entry
  (:mod:`.copying`), mode 0444; a hard link only with ``AEROMANCY_LINK=hardlink``.

A write that fails removes the files and directories this pull had made.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aeromancy.errors import InfrastructureError, UsageError
from aeromancy.leftovers import abandoned, owner
from aeromancy.store.copying import clone_or_copy, hard_links_wanted
from aeromancy.store.diskerrors import write_failed, writing
from aeromancy.store.hashing import sha256_file
from aeromancy.store.noreplace import rename_noreplace

READ_ONLY = 0o444
#: Fills one empty temporary file (a descriptor open for reading and writing) with a
#: file's bytes and checks them, raising (StoreDamaged, ...) when they are wrong.
FillFile = Callable[[int], None]
_OTHER_DISK = "pull into a directory on another disk"
PART_SUFFIX = ".aeromancy-part"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Errors of link(2) that mean "this filesystem has no hard links": rename instead.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


@dataclass(frozen=True)
class Wanted:
    """One file a pull must leave under DEST: its relative path, size and sha256."""

    path: str
    size: int
    sha256: str


def files_to_write(dest: Path, wanted: list[Wanted]) -> list[Wanted]:
    """Return the files of ``wanted`` not yet correct under ``dest``; write nothing.

    Raises UsageError when a link or a non-directory stands where a directory must
    go, or when a file with other bytes is in the way.
    """
    missing: list[Wanted] = []
    clashes: list[str] = []
    directories: dict[str, bool] = {"": True}  # relative directory -> exists (checked)
    for item in wanted:
        if not _directory_exists(dest, item.path.rpartition("/")[0], directories):
            missing.append(item)
            continue
        target = dest / item.path
        state = _existing(target, item)
        if state == "absent":
            missing.append(item)
        elif state == "different":
            clashes.append(str(target))
    if clashes:
        raise UsageError(
            f"{clashes[0]} already exists ({len(clashes)} file(s) would be overwritten)",
            "pull into an empty or new directory",
        )
    return missing


def _directory_exists(dest: Path, relative: str, known: dict[str, bool]) -> bool:
    """Return True when DEST/``relative`` and each directory above it are directories,
    False when one is missing; a link or a file in the way is refused. ``known`` keeps
    the answers, so each directory is looked at once per pull."""
    if relative in known:
        return known[relative]
    exists = _directory_exists(dest, relative.rpartition("/")[0], known)
    if exists:
        current = dest / relative
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            exists = False
        else:
            if stat.S_ISLNK(info.st_mode):
                raise _link_refused(current)
            if not stat.S_ISDIR(info.st_mode):
                raise UsageError(
                    f"{current} is a file where the pull needs a directory", _ELSEWHERE
                )
    known[relative] = exists
    return exists


def _existing(target: Path, item: Wanted) -> str:
    """Return 'absent', 'correct' (same size and sha256) or 'different' for ``target``."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return "absent"
    if stat.S_ISLNK(info.st_mode):
        raise _link_refused(target)
    same_size = stat.S_ISREG(info.st_mode) and info.st_size == item.size
    return "correct" if same_size and sha256_file(target) == item.sha256 else "different"


_ELSEWHERE = "remove it, or pull into an empty or new directory"


def _link_refused(path: Path) -> UsageError:
    return UsageError(f"{path} is a symbolic link; a pull never writes through links", _ELSEWHERE)


@contextmanager
def placing(dest: Path, all_paths: list[str]) -> Iterator[Callable[[Path, str], None]]:
    """Yield ``place(verified cache entry, relative path)``, writing one file under
    ``dest``, read-only, each named as soon as it is complete.

    ``all_paths`` are every path of the version: their directories' leftovers of
    dead pulls are removed first. If the block fails, what was placed is removed again.
    """
    hard_link = hard_links_wanted()
    with _Tree(dest) as tree:
        for directory in _directories(all_paths):
            tree.sweep_dead_parts(directory)

        def place(source: Path, relative: str) -> None:
            directory, _, name = relative.rpartition("/")
            tree.place(source, directory, name, hard_link)

        yield place
        tree.keep()


def write_files(dest: Path, fills: list[tuple[FillFile, str]], all_paths: list[str]) -> None:
    """Write each (fill, relative path) under ``dest``, read-only: all checked, then named.

    Each file is filled under a temporary name and checked by its fill; only when
    every file is written does any get its name. So a blob found damaged, or a full
    disk, leaves nothing under DEST: the temporary files and the directories this
    call made are removed again.
    """
    with _Tree(dest) as tree:
        for directory in _directories(all_paths):
            tree.sweep_dead_parts(directory)
        for fill, relative in fills:
            directory, _, name = relative.rpartition("/")
            tree.stage(fill, directory, name)
        tree.publish_staged()
        tree.keep()


def _directories(paths: list[str]) -> list[str]:
    """Return the directories (relative, "" for DEST itself) that hold ``paths``, sorted."""
    return sorted({path.rpartition("/")[0] for path in paths})


class _Tree:
    """Directory fds under DEST, opened without following links, and what was made."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.fds: dict[str, int] = {}
        self.made_dirs: list[Path] = []
        #: Files this pull named: (dir fd, name), removed again unless it is kept.
        self.placed: list[tuple[int, str]] = []
        #: Files written under temporary names, not yet named: (dir fd, temp, name,
        #: directory relative to DEST).
        self.staged: list[tuple[int, str, str, str]] = []
        self.kept = False
        self._temp_prefix = f"{owner()}-{secrets.token_hex(6)}-"
        self._counter = itertools.count()

    def __enter__(self) -> _Tree:
        with writing(f"cannot write {self.dest}", "pull into a directory on another disk"):
            for missing in reversed([self.dest, *self.dest.parents]):
                if not os.path.lexists(missing):
                    missing.mkdir()
                    self.made_dirs.append(missing)
            self.fds["."] = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd, temp, _name, _relative in self.staged:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
        if not self.kept:
            for fd, name in self.placed:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)
        for fd in self.fds.values():
            os.close(fd)
        if not self.kept:
            for directory in reversed(self.made_dirs):
                with contextlib.suppress(OSError):  # not empty: someone else wrote there
                    directory.rmdir()

    def keep(self) -> None:
        """Keep what was written (the pull is complete)."""
        self.kept = True

    def _temp_name(self, name: str) -> str:
        """Return a new temporary name for the file ``name``, in the same directory."""
        return f".{name}.{self._temp_prefix}{next(self._counter)}{PART_SUFFIX}"

    def _target(self, relative_dir: str, name: str) -> Path:
        """Return DEST/``relative_dir``/``name``, for messages (not made per file)."""
        return self.dest.joinpath(relative_dir, name)

    def dir_fd(self, relative: str) -> int:
        """Return an fd of DEST/``relative``, made if missing; links in the way are refused."""
        if relative in self.fds:
            return self.fds[relative]
        parent, _, name = relative.rpartition("/")
        parent_fd = self.dir_fd(parent or ".")
        with writing(f"cannot write {self.dest / relative}", "pull into another directory"):
            try:
                os.mkdir(name, dir_fd=parent_fd)
                self.made_dirs.append(self.dest / relative)
            except FileExistsError:
                pass
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _link_refused(self.dest / relative) from exc
                raise
        self.fds[relative] = fd
        return fd

    def sweep_dead_parts(self, relative: str) -> None:
        """Remove temporary files that pulls no longer running left in DEST/``relative``."""
        key = "." if relative in ("", ".") else relative
        if key != "." and not (self.dest / key).is_dir():
            return  # a directory this pull has yet to make holds no leftovers
        fd = self.dir_fd(key)
        for name in os.listdir(fd):
            if name.startswith(".") and name.endswith(PART_SUFFIX) and _abandoned(name, fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)

    def place(self, source: Path, relative_dir: str, name: str, hard_link: bool) -> None:
        """Write one file: a hard link when asked for, else a reflink or copy under a temp name."""
        fd = self.dir_fd("." if relative_dir in ("", ".") else relative_dir)
        target = self._target(relative_dir, name)
        with writing(f"cannot write {target}", "pull into a directory on another disk"):
            if hard_link and _try_hard_link(source, name, fd, target):
                self.placed.append((fd, name))
                return
            temp = self._temp_name(name)
            temp_left = True
            try:
                _write_copy(source, temp, fd)
                try:
                    temp_left = _publish(temp, name, fd)
                except FileExistsError as exc:
                    raise _appeared(target) from exc
                self.placed.append((fd, name))
            finally:
                if temp_left:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp, dir_fd=fd)

    def stage(self, fill: FillFile, relative_dir: str, name: str) -> None:
        """Fill a new temporary file in DEST/``relative_dir``; :meth:`publish_staged` names it."""
        fd = self.dir_fd("." if relative_dir in ("", ".") else relative_dir)
        temp = self._temp_name(name)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        # try/except, not a ``with writing(...)``: this runs for every file of a pull.
        try:
            out = os.open(temp, flags, 0o600, dir_fd=fd)
        except OSError as exc:
            raise self._write_failed(relative_dir, name, exc) from exc
        self.staged.append((fd, temp, name, relative_dir))  # from now on removed on failure
        try:
            fill(out)
            os.fchmod(out, READ_ONLY)
        except OSError as exc:
            raise self._write_failed(relative_dir, name, exc) from exc
        finally:
            os.close(out)

    def publish_staged(self) -> None:
        """Give every staged file its name (refused if the name appeared meanwhile)."""
        while self.staged:
            fd, temp, name, relative_dir = self.staged[-1]
            try:
                temp_left = _publish(temp, name, fd)
            except FileExistsError as exc:
                raise _appeared(self._target(relative_dir, name)) from exc
            except OSError as exc:
                raise self._write_failed(relative_dir, name, exc) from exc
            self.placed.append((fd, name))
            self.staged.pop()
            if temp_left:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=fd)

    def _write_failed(self, relative_dir: str, name: str, exc: OSError) -> InfrastructureError:
        return write_failed(f"cannot write {self._target(relative_dir, name)}", _OTHER_DISK, exc)


def _try_hard_link(source: Path, name: str, dir_fd: int, target: Path) -> bool:
    """Hard-link the cache entry as ``name``; False when this filesystem cannot."""
    try:
        os.link(source, name, dst_dir_fd=dir_fd)
        return True
    except FileExistsError as exc:
        raise _appeared(target) from exc
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return False
        raise


def _write_copy(source: Path, temp: str, dir_fd: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    try:
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            clone_or_copy(src, out)
        finally:
            os.close(src)
        os.fchmod(out, READ_ONLY)
    finally:
        os.close(out)


def _publish(temp: str, name: str, dir_fd: int) -> bool:
    """Give the complete temporary file its name; FileExistsError if the name was taken
    meanwhile. Return True when the temporary name is left for the caller to remove.

    A rename that refuses to replace where there is one, else a link; a rename after
    a check only on a filesystem with neither.
    """
    if rename_noreplace(temp, name, dir_fd):
        return False
    try:
        os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return True
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if _lexists(name, dir_fd):
            raise FileExistsError(errno.EEXIST, "exists", name) from exc
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return False


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _appeared(target: Path) -> UsageError:
    return UsageError(f"{target} appeared while it was being pulled", _ELSEWHERE)


def _abandoned(name: str, dir_fd: int) -> bool:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and abandoned(name, info.st_mtime)
