"""LocalBackend: the store as a plain directory tree.

Every write goes to a temporary file under ``<root>/tmp`` first and is then put in
place, so a reader never sees a partial object and an interrupted writer leaves only
an invisible temporary file behind, named by its owner (``<pid>@<host>@``) so that the
next writer removes it once that process is gone. Objects are linked into place:
``os.link`` fails when the target exists, which gives create-if-absent without locks.
Blobs, whose keys name their bytes, are renamed (either of two racing writers' copies
may stay: they are the same bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from aeromancy.errors import InfrastructureError, NotFound
from aeromancy.leftovers import owner, sweep_files
from aeromancy.store.backend import (
    Destination,
    FilePath,
    ObjectInfo,
    ProgressCallback,
    StoredBlob,
    read_small,
    reading_source,
    state_after,
    state_before,
)
from aeromancy.store.copying import copy_verifying
from aeromancy.store.diskerrors import write_failed, writing
from aeromancy.store.hashing import CHUNK_SIZE, copy_hashing, write_all_fd
from aeromancy.store.statcache import FileStat

TMP_DIR = "tmp"
ELSEWHERE = "choose another store with --store"
READ_ONLY = 0o444


class LocalBackend:
    """A store rooted at a local directory (created on first write)."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()
        self._swept = False
        self._tmp_ready = False
        self._token = secrets.token_hex(8)
        self._counter = itertools.count()
        self._tmp_prefix = f"{self.root}/{TMP_DIR}/"

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def _temp_path(self) -> str:
        """Return a new name under ``<root>/tmp`` (made, and swept of stale files, once)."""
        if not self._tmp_ready:
            tmp = self.root / TMP_DIR
            with self._writing("cannot write to"):
                tmp.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._swept = True
                sweep_files(tmp, ".part")  # of writers that died (a pid check), or a day old
            self._tmp_ready = True
        # Unique within this process by the counter, across processes by owner (a forked
        # child has its own) and token; the O_EXCL that opens it makes sure even so.
        return f"{self._tmp_prefix}{owner()}-{self._token}-{next(self._counter)}.part"

    def _link_into_place(self, temp: str, key: str) -> bool:
        """Link ``temp`` to ``key``; return False if ``key`` already existed.

        The key's directory is made only when the link finds it missing. The caller
        removes ``temp``.
        """
        try:
            _making_parent(os.link, temp, f"{self.root}/{key}")
            return True
        except FileExistsError:
            return False

    def _move_blob_into_place(self, temp: str, key: str) -> None:
        """Rename the complete blob ``temp`` to ``key``, making the key's directory when
        the rename finds it missing.

        A rename, not a link: a blob's key names its bytes, so a blob stored at the
        same moment by another push holds the same bytes and either may stay, and
        nothing is left at ``temp`` to remove. Readers see the old file or the new one,
        each complete. (A manifest, whose key does not name its bytes, is linked:
        :meth:`create`.)
        """
        _making_parent(os.replace, temp, f"{self.root}/{key}")

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def create(self, key: str, data: bytes) -> bool:
        temp = self._temp_path()
        try:
            with self._writing(f"cannot write {key} to"):
                _write_new(temp, data, durable=True)
                return self._link_into_place(temp, key) or self.read_bytes(key) == data
        finally:
            _remove(temp)

    def _writing(self, what: str) -> AbstractContextManager[None]:
        """Turn a failed write into the store (disk full, read-only...) into exit 3."""
        return writing(f"{what} the store at {self.root}", ELSEWHERE)

    def _write_failed(self, what: str, exc: OSError) -> InfrastructureError:
        """Return :meth:`_writing`'s error for ``exc``."""
        return write_failed(f"{what} the store at {self.root}", ELSEWHERE, exc)

    def store_file(
        self,
        path: FilePath,
        destination: Destination,
        progress: ProgressCallback,
        before: FileStat | None = None,
    ) -> StoredBlob:
        """Hash the file's bytes as they are read, write them to ``<root>/tmp`` and rename
        that copy into place.

        One read of the file: the digest is of the very bytes copied, so only bytes
        that hash to their key are ever put in place, whatever happens to the file. A
        file under one chunk is read in one call and written only when its blob is
        missing.
        """
        before = state_before(path, before)
        if before.size < CHUNK_SIZE:
            sha256_hex, state = self._store_small(path, before, destination)
        else:
            sha256_hex, state = self._store_copied(path, before, destination)
        progress(before.size)
        return StoredBlob(sha256_hex, before.size, state)

    def _store_small(
        self, path: FilePath, before: FileStat, destination: Destination
    ) -> tuple[str, FileStat | None]:
        data = read_small(path, before.size)
        sha256_hex = hashlib.sha256(data).hexdigest()
        key = destination(sha256_hex)
        if key is None:
            return sha256_hex, state_after(path, before)
        temp = self._temp_path()
        try:
            try:
                _write_new(temp, data)
            except OSError as exc:
                raise self._write_failed(f"cannot copy {path} into", exc) from exc
            state = state_after(path, before)  # a file rewritten meanwhile: a torn snapshot
            try:
                self._move_blob_into_place(temp, key)
            except OSError as exc:
                raise self._write_failed(f"cannot store {path} in", exc) from exc
        except BaseException:
            _remove(temp)
            raise
        return sha256_hex, state

    def _store_copied(
        self, path: FilePath, before: FileStat, destination: Destination
    ) -> tuple[str, FileStat | None]:
        temp = self._temp_path()
        try:
            with self._writing(f"cannot copy {path} into"):
                sha256_hex = _copy_hashing(path, temp, before.size)
            key = destination(sha256_hex)
            state = state_after(path, before)  # a file rewritten during the copy: torn
            if key is None:
                _remove(temp)
            else:
                with self._writing(f"cannot store {path} in"):
                    self._move_blob_into_place(temp, key)  # made read-only when opened
        except BaseException:
            _remove(temp)
            raise
        return sha256_hex, state

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def download_file(
        self,
        key: str,
        dest: Path,
        progress: ProgressCallback | None = None,
        size: int | None = None,
    ) -> str:
        """Copy the object to ``dest`` and hash it in the same pass (one read of the bytes)."""
        source = self._path(key)
        try:
            reader = open(source, "rb", buffering=0)  # noqa: SIM115 - closed just below
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"{key} is missing from the store at {self.root}") from exc
        with reader:
            expected = os.fstat(reader.fileno()).st_size if size is None else size
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            with open(fd, "wb", buffering=0, closefd=True) as writer:
                sha256_hex = copy_hashing(reader, writer, expected, CHUNK_SIZE)
        if progress is not None:
            progress(expected)
        return sha256_hex

    def copy_blob(self, key: str, dest_fd: int, size: int | None = None) -> str:
        """Fill the empty file ``dest_fd`` with the object; return the sha256 of what it got.

        For pulls that bypass the cache: one read of the object, and the digest is of
        the bytes ``dest_fd`` holds (see :func:`.copying.copy_verifying`). ``size``, the
        size expected (a manifest's), only picks how to copy; by default the object's.
        """
        try:
            source = os.open(f"{self.root}/{key}", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"{key} is missing from the store at {self.root}") from exc
        try:
            expected = os.fstat(source).st_size if size is None else size
            return copy_verifying(source, dest_fd, expected)
        finally:
            os.close(source)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_prefix(self, prefix: str, limit: int | None = None) -> list[str]:
        keys: list[str] = []
        # os.walk of a missing folder yields nothing, which is the answer we want.
        for dirpath, _dirnames, filenames in os.walk(self._path(prefix)):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            keys.extend(f"{rel_dir}/{name}" for name in filenames)
            if limit is not None and len(keys) >= limit:
                return sorted(keys)[:limit]
        return sorted(keys)

    def list_objects(self, prefix: str, start_after: str = "") -> list[ObjectInfo]:
        found = []
        for key in self.list_prefix(prefix):
            if key <= start_after:
                continue
            try:
                info = os.stat(self._path(key))
            except FileNotFoundError:  # deleted since the listing
                continue
            found.append(ObjectInfo(key, info.st_size, info.st_mtime))
        return found

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


def _copy_hashing(source: FilePath, dest: str, size: int) -> str:
    """Copy ``source`` to the new read-only file ``dest``; return the sha256 hex written."""
    with reading_source(source):
        reader = open(source, "rb", buffering=0)  # noqa: SIM115 - closed just below
    with reader:
        # O_EXCL: the temporary name is ours alone even if a pid and token ever repeat.
        # Mode 0444 from the start: the open descriptor may still write it.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, READ_ONLY)
        with open(fd, "wb", buffering=0, closefd=True) as writer:
            return copy_hashing(reader, writer, size, CHUNK_SIZE)


def _making_parent(move: Callable[[str, str], None], temp: str, target: str) -> None:
    """``move(temp, target)`` (a link or a rename), making ``target``'s directory only
    when the move finds it missing."""
    try:
        move(temp, target)
    except FileNotFoundError:
        if not os.path.exists(temp):
            raise
        os.makedirs(os.path.dirname(target), exist_ok=True)
        move(temp, target)


def _write_new(path: str, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to the new read-only file ``path`` (made here: O_EXCL), all of it.

    The temporary name is ours alone even if an owner and token ever repeat; the open
    descriptor may write the file its mode already makes read-only. ``durable``: on
    disk before this returns (fsync).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, READ_ONLY)
    try:
        write_all_fd(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
