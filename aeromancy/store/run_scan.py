"""Which run records a project has, without listing every record key.

A scan lists the start markers (:mod:`aeromancy.store.run_markers`), then the records
whose ids sort at or after the *floor*: the oldest open marker's stamp, or the
reader's clock less the allowed skew when it is older. Every record before the floor
was written by an invocation that completed, whose pack (:mod:`aeromancy.store.run_packs`)
holds it, or by Aeromancy before start markers, whose records a *sealed* pack holds.
So the records are: those of the packs whose ids sort before the floor, and those
listed after it.

The scan lists everything (as before start markers) when it cannot trust the packs:
no sealed pack yet (the first reader of a store written by an older Aeromancy), a
damaged pack (its records are unknown), or a format 1 pack (an older Aeromancy wrote
records since the seal). The reader that then knows every record stores a sealed pack
(:mod:`aeromancy.experiments.record_cache`).

Order matters, and each writer keeps it: marker, records, pack, marker removed. A
reader lists markers, then packs: an invocation whose marker it did not see had
stored its pack before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aeromancy.errors import StoreDamaged
from aeromancy.store.backend import Backend
from aeromancy.store.layout import runs_prefix
from aeromancy.store.manifest import Namespace
from aeromancy.store.run_markers import Marker, list_markers, reader_floor
from aeromancy.store.run_packs import Pack, PackEntry, is_pack_key, packs_prefix, read_pack
from aeromancy.store.runs import run_id_of

WORKERS = 16
#: How often a scan lists the packs again when packs vanish as it reads them (merged
#: into a new one by another reader meanwhile).
RELISTS = 5

Warn = Callable[[str], None]


@dataclass(frozen=True)
class PackInfo:
    """What a reader remembers of a pack it read: its seal and its format."""

    sealed: str | None
    format: int


@dataclass
class RunScan:
    """The records of one project in one namespace, as one scan found them.

    ``listed`` holds the size of each record the scan listed (ids at or after
    ``floor``; every record when ``full``); ``entries`` the records of the packs read
    in this scan; ``packs`` every pack present; ``bound`` the floor the markers and
    the clock give (the seal a reader that knows every record may write);
    ``markers`` the open markers.
    """

    floor: str
    bound: str
    full: bool
    listed: dict[str, int]
    entries: dict[str, PackEntry] = field(default_factory=dict)
    packs: dict[str, PackInfo] = field(default_factory=dict)
    read: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    unsure: bool = False
    markers: list[Marker] = field(default_factory=list)

    def ids(self, known: Iterable[str]) -> list[str]:
        """Return every record id, sorted: those listed, and before the floor those of
        the packs read now and of ``known`` (ids of the packs read by earlier scans)."""
        before = {run_id for run_id in (*known, *self.entries) if run_id < self.floor}
        return sorted(before | set(self.listed))

    @property
    def seal(self) -> str | None:
        """Return the newest seal of the packs present, or None when none is sealed."""
        seals = [info.sealed for info in self.packs.values() if info.sealed is not None]
        return max(seals) if seals else None


def scan_runs(
    backend: Backend,
    namespace: Namespace,
    project: str,
    known: Mapping[str, PackInfo],
    warn: Warn,
) -> RunScan:
    """Return the records of ``project``: ``known`` are the packs an earlier scan read
    (not read again while present)."""
    prefix = runs_prefix(namespace, project)
    markers = list_markers(backend, namespace, project)
    bound = min([reader_floor(), *(m.stamp for m in markers)])
    # Stamps are digits, which sort before "open/" and "packs/": this one listing
    # holds the packs as well as the records after the floor.
    listing = backend.list_objects(prefix, start_after=f"{prefix}{bound}")
    scan = RunScan(bound, bound, False, _sizes(listing, prefix), markers=markers)
    pack_keys = [info.key for info in listing if is_pack_key(info.key, namespace, project)]
    _read_packs(backend, namespace, project, scan, keys=pack_keys, known=known, warn=warn)
    legacy = any(info.format == 1 for info in scan.packs.values())
    if scan.seal is None or scan.damaged or scan.unsure or legacy:
        scan.full, scan.floor = True, ""
        scan.listed = _sizes(backend.list_objects(prefix), prefix)
    return scan


def _sizes(listing: Iterable[Any], prefix: str) -> dict[str, int]:
    found = {}
    for info in listing:
        run_id = run_id_of(info.key, prefix)
        if run_id is not None:
            found[run_id] = info.size
    return found


def _read_packs(
    backend: Backend,
    namespace: Namespace,
    project: str,
    scan: RunScan,
    *,
    keys: list[str],
    known: Mapping[str, PackInfo],
    warn: Warn,
) -> None:
    """Read the packs ``known`` lacks into ``scan``; list them again when some vanished."""
    for _ in range(RELISTS):
        scan.packs.update({key: known[key] for key in keys if key in known})
        unseen = [key for key in keys if key not in known and key not in scan.packs]
        unseen = [key for key in unseen if key not in scan.damaged]
        vanished = False
        packs = map_keys(backend, lambda k: _pack(backend, k), unseen)
        for key, pack in zip(unseen, packs, strict=True):
            if isinstance(pack, StoreDamaged):
                warn(
                    f"ignoring damaged run pack {key}: {pack.message} "
                    "(it only repeats stored run records: deleting it loses nothing)"
                )
                scan.damaged.append(key)
            elif pack is None:
                vanished = True
            else:
                scan.packs[key] = PackInfo(pack.sealed, pack.format)
                scan.read.append(key)
                for run_id, entry in pack.entries.items():
                    # Of two packs holding a run, the one the listing agrees with wins.
                    if run_id not in scan.entries or scan.listed.get(run_id) == entry.size:
                        scan.entries[run_id] = entry
        if not vanished:
            return
        keys = backend.list_prefix(packs_prefix(namespace, project))
        keys = [key for key in keys if is_pack_key(key, namespace, project)]
        for key in list(scan.packs):
            if key not in keys:
                del scan.packs[key]  # merged: the new pack holds its records
    scan.unsure = True  # packs kept vanishing: list everything instead


def _pack(backend: Backend, key: str) -> Pack | StoreDamaged | None:
    try:
        return read_pack(backend, key)
    except StoreDamaged as exc:
        return exc


def map_keys(backend: Backend, function: Callable[[str], Any], keys: list[str]) -> Iterable[Any]:
    """Apply ``function`` to ``keys``: in threads on a remote store (requests overlap),
    in this thread on a directory (reads are mostly JSON parsing, which holds the GIL)."""
    if not backend.remote or len(keys) < 2:
        return list(map(function, keys))
    with ThreadPoolExecutor(min(WORKERS, len(keys))) as pool:
        return list(pool.map(function, keys))
