"""The stat cache: the sha256 of local files already hashed, keyed by what ``stat`` says.

A push of files that were pushed before, unchanged, then reads no bytes: for each file
whose path, size, mtime, ctime, inode and device all match an entry, the entry's digest
stands for the file, as in git's index and DVC's state database. The digest is only
used to skip a blob the store already holds; a blob that must be written is always
hashed from the bytes written, so the cache never decides what a key holds.

Stale entries cannot be trusted by mistake:

- any change of size, mtime, ctime, inode or device misses, and a write or a
  ``touch`` always moves the ctime, which no program can set back;
- an entry is only written for a file whose mtime and ctime are at least
  :data:`RACY_SECONDS` older than the moment it is written (git's "racily clean"
  rule): a file still being written within one clock tick of its hashing keeps its
  timestamps while its bytes change, so such a file is hashed again next time;
- an entry is written only when the file's state after hashing is the state before.

The cache is one SQLite database in the local cache directory. Any failure to open,
read or write it (a read-only or full disk, a lock held too long) turns the cache off
for that call: files are then hashed, never wrongly trusted. A corrupt database is
replaced by a new, empty one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import NamedTuple, TypeVar

#: A file changed less than this long before its entry would be written gets none.
RACY_SECONDS = 2.0
#: How long a writer waits for another process holding the database.
LOCK_TIMEOUT_SECONDS = 2.0
FILE_NAME = "stat-cache.sqlite"
#: Paths per lookup query (SQLite before 3.32 allows 999 parameters).
LOOKUP_BATCH = 900
#: A file is named by a Path or a str; lookups answer with the names they were given.
K = TypeVar("K", bound=str | Path)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


class FileStat(NamedTuple):
    """Everything ``stat`` says that changes when a file's bytes may have changed.

    A named tuple, not a dataclass: a check of 10,000 files makes 20,000 of them.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileStat:
        """Return the state of the file at ``path`` (raises OSError like ``os.stat``)."""
        return cls.of_info(os.stat(path))

    @classmethod
    def of_info(cls, info: os.stat_result) -> FileStat:
        """Return the state ``stat`` gave."""
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)

    def settled(self, now_ns: int) -> bool:
        """Return True when the file last changed at least RACY_SECONDS before ``now_ns``."""
        return max(self.mtime_ns, self.ctime_ns) + int(RACY_SECONDS * 1e9) <= now_ns


class StatCache:
    """Digests of local files by path and state, in ``<cache dir>/stat-cache.sqlite``."""

    def __init__(self, cache_dir: Path, clock: Callable[[], int] = time.time_ns) -> None:
        self.path = cache_dir / FILE_NAME
        #: Nanoseconds since the epoch, in the clock file timestamps come from.
        self.clock = clock

    def lookup(self, files: Iterable[tuple[K, FileStat]]) -> dict[K, str]:
        """Return the known digest of each file whose recorded state is exactly ``state``.

        Paths are made absolute; a file with no entry or another state is left out.
        One query per :data:`LOOKUP_BATCH` files, not one per file.
        """
        if not self.path.exists():
            return {}  # no file was ever recorded here
        wanted: dict[str, list[tuple[K, FileStat]]] = {}
        for path, state in files:
            wanted.setdefault(_key(path), []).append((path, state))
        if not wanted:
            return {}
        keys = list(wanted)
        found: dict[K, str] = {}
        try:
            with self._connect() as connection:
                for start in range(0, len(keys), LOOKUP_BATCH):
                    batch = keys[start : start + LOOKUP_BATCH]
                    marks = ",".join("?" * len(batch))
                    rows = connection.execute(
                        "SELECT path, size, mtime_ns, ctime_ns, inode, device, sha256 FROM files"
                        f" WHERE path IN ({marks})",
                        batch,
                    )
                    for key, *recorded, sha256 in rows:
                        for path, now in wanted[key]:
                            if now == tuple(recorded):
                                found[path] = str(sha256)
        except sqlite3.Error:
            return {}
        return found

    def record(self, files: Iterable[tuple[str | Path, FileStat, str]]) -> None:
        """Remember each file's digest, for files settled long enough to be trusted later.

        ``state`` must be the file's state both before and after ``sha256`` was taken.
        """
        now_ns = self.clock()
        rows = [
            (_key(path), s.size, s.mtime_ns, s.ctime_ns, s.inode, s.device, sha256)
            for path, s, sha256 in files
            if s.settled(now_ns)
        ]
        if not rows:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._insert(rows)
        except sqlite3.OperationalError:
            return  # locked too long, read-only, full: the cache only saves time
        except sqlite3.DatabaseError:
            # Not a database (any more): start a new one rather than stay without.
            self.path.unlink(missing_ok=True)
            with suppress(sqlite3.Error, OSError):
                self._insert(rows)
        except OSError:
            return

    def _insert(self, rows: list[tuple[str, int, int, int, int, int, str]]) -> None:
        with self._connect() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection in one transaction (committed on success), then close it."""
        connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS)
        with closing(connection), connection:
            connection.execute(_SCHEMA)
            yield connection


def _key(path: str | Path) -> str:
    return os.path.abspath(path)
