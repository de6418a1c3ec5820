"""Start markers: an invocation says it may still write run records before it mints any.

``<namespace root>runs/<project>/open/<stamp>-<token>.json`` is created when an
invocation starts, before it mints a run id, and deleted only after its run pack
(:mod:`aeromancy.store.run_packs`) holds every record it wrote. ``<stamp>`` is the UTC
second the marker was made (``20261202-041500``), the same clock and form that starts
every run id the invocation mints, so each of its run ids sorts at or after its stamp.

A reader (:mod:`aeromancy.store.run_scan`) lists the markers first: records whose ids
sort before the oldest open marker (and before the reader's own clock less
:data:`SKEW_SECONDS`) were written by invocations that completed, so their run packs
hold them; only the records after that point are listed one by one.

A marker that stays (a killed launcher, an interrupted run, a cluster task that might
still write) costs readers only time: they list the records after its stamp. A marker
whose launcher ran on the reading host and is gone (its pid no longer runs that
process) is *dead*: once a reader has packed the records after its stamp it removes it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aeromancy.store.backend import Backend
from aeromancy.store.layout import runs_prefix
from aeromancy.store.manifest import Namespace

OPEN = "open/"
#: How far another writer's clock may be behind the reader's.
SKEW_SECONDS = 300
_STAMP = "%Y%m%d-%H%M%S"


def stamp(moment: datetime | None = None) -> str:
    """Return the run-id form of ``moment`` (default now, UTC) to the second."""
    return (moment or datetime.now(timezone.utc)).strftime(_STAMP)


def reader_floor(now: datetime | None = None) -> str:
    """Return the stamp before which no writer that starts from now on mints run ids."""
    return stamp((now or datetime.now(timezone.utc)) - timedelta(seconds=SKEW_SECONDS))


def markers_prefix(namespace: Namespace, project: str) -> str:
    """Return the folder holding the start markers of ``project``."""
    return f"{runs_prefix(namespace, project)}{OPEN}"


@dataclass(frozen=True)
class Marker:
    """One start marker: its key and the stamp its writer's run ids start at or after."""

    key: str
    stamp: str

    @classmethod
    def of_key(cls, key: str) -> Marker | None:
        """Return the marker stored at ``key``, or None when the key names none."""
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".json") or len(name) < len("20261202-041500"):
            return None
        return cls(key, name[: len("20261202-041500")])


def create_marker(backend: Backend, namespace: Namespace, project: str, workers: bool) -> Marker:
    """Store a new start marker naming this process; return it. ``workers`` says that
    other processes (cluster workers) write records for it: it is then never dead."""
    made = stamp()
    key = f"{markers_prefix(namespace, project)}{made}-{secrets.token_hex(6)}.json"
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process": _process_start(),
        "workers": workers,
    }
    backend.create(key, json.dumps({"format": 1, "stamp": made, **owner}).encode())
    return Marker(key, made)


def list_markers(backend: Backend, namespace: Namespace, project: str) -> list[Marker]:
    """Return the start markers of ``project`` (open invocations, live or dead)."""
    found = (Marker.of_key(key) for key in backend.list_prefix(markers_prefix(namespace, project)))
    return sorted((m for m in found if m is not None), key=lambda m: m.stamp)


def is_dead(backend: Backend, marker: Marker) -> bool:
    """Return True when ``marker``'s launcher ran on this host and is gone.

    A marker from another host, one that does not name its process, or one whose records
    cluster workers write, is never dead: only its own host can tell, and a worker may
    outlive its launcher.
    """
    data = backend.read_bytes(marker.key)
    if data is None:
        return False  # completed meanwhile
    try:
        owner = json.loads(data)
        host, pid, process = str(owner["host"]), int(owner["pid"]), owner["process"]
        workers = bool(owner.get("workers", True))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    if workers or host != socket.gethostname() or process is None:
        return False
    return _process_start(pid) != str(process)


def _process_start(pid: int | None = None) -> str | None:
    """Return what tells process ``pid`` (default this one) from a later one with its pid:
    the boot id and its start time in clock ticks; None where /proc does not say."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return f"{boot}:{fields[19]}"
