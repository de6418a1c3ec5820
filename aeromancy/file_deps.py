"""File dependencies: the project files a task read, with their digests, and their check.

A run record keeps ``files``: each project file the task opened for reading (seen by the
child's audit hook, :mod:`aeromancy.execution.child.reads`) or declared with
``@task(files=[...])`` (a declared directory stands for every file under it), mapped to
its sha256 (hex) as hashed right after the task ended. An earlier run stands in for a new
one only when every one of its files still has that digest and a declared directory
holds no file it did not have. Digests are looked up in the stat cache
(:mod:`aeromancy.store.statcache`) first, so an unchanged file costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from aeromancy.cache_files import cache_path
from aeromancy.store.statcache import FileStat, StatCache

CHUNK = 1 << 20


def declared_files(root: Path, declared: Iterable[str]) -> list[str]:
    """Return the files ``declared`` names now: each file, and every file under each directory.

    Relative POSIX paths under ``root``, sorted; a declared file that is missing is listed
    (its digest is then None), a missing directory lists nothing.
    """
    found: set[str] = set()
    for entry in declared:
        path = root / entry
        if path.is_dir():
            found.update(p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file())
        else:
            found.add(Path(entry).as_posix())
    return sorted(found)


class FileDigests:
    """sha256 of project files, through the stat cache."""

    def __init__(self, root: Path, cache: StatCache | None = None) -> None:
        self.root = root
        self.cache = cache if cache is not None else StatCache(cache_path())

    def of(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Return each path's sha256 hex, None for a file that is gone or unreadable."""
        base = os.path.abspath(self.root)
        located = {rel: os.path.join(base, rel) for rel in paths}
        states: dict[str, FileStat | None] = {}
        for rel, path in located.items():
            try:
                states[rel] = FileStat.of(path)
            except OSError:
                states[rel] = None
        known = self.cache.lookup((located[rel], s) for rel, s in states.items() if s)
        digests: dict[str, str | None] = {}
        fresh: list[tuple[str | Path, FileStat, str]] = []
        for rel, state in states.items():
            path = located[rel]
            found = known.get(path) if state is not None else None
            if state is None or found is not None:
                digests[rel] = found
                continue
            digest = _hash(Path(path), state)
            digests[rel] = digest
            if digest is not None:
                fresh.append((path, state, digest))
        self.cache.record(fresh)
        return digests

    def record(self, read: Iterable[str], declared: Iterable[str]) -> dict[str, str | None]:
        """Return the ``files`` of a run record: what the task read plus what it declared."""
        return self.of(sorted({*read, *declared_files(self.root, declared)}))

    def changed(self, recorded: Mapping[str, str | None], declared: Iterable[str]) -> str | None:
        """Return the first file that differs from ``recorded`` (None when none does)."""
        now_declared = declared_files(self.root, declared)
        added = sorted(set(now_declared) - set(recorded))
        if added:
            return added[0]
        current = self.of(recorded)
        for rel in sorted(recorded):
            if current[rel] != recorded[rel]:
                return rel
        return None


def _hash(path: Path, state: FileStat) -> str | None:
    """Return the sha256 of ``path`` when it still is in ``state`` after reading, else None."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        if FileStat.of(path) != state:
            return None
    except OSError:
        return None
    return digest.hexdigest()
