"""Garbage collection: delete what nothing references (and, on request, old versions).

What is kept (the roots): every manifest of every project in both namespaces, and
what the run records name (:mod:`aeromancy.store.gc_records`): their output logs,
the environment images and code packages they ran in. A stored image or code package
that no record names, older than the grace period, is deleted with its tag records
(:mod:`aeromancy.store.gc_environments`); then the blobs nothing left names.

``--keep-last N`` / ``--older-than DAYS`` also delete old versions, but never one a
run record names as an input (lineage and ``rerun`` need it). A record's own outputs
are not protected: deleting them is what those options are for; the record stays,
and its task is then out of date (outputs gone).

Safety against a publish running at the same time:

1. A blob younger than the grace period (default an hour) is never deleted: a
   publish uploads its blobs before it writes its manifest.
2. gc writes ``gc/<owner>-<hex>.start.json`` before it lists anything and
   ``...end.json`` when done. A publisher notes the time before it looks at any
   blob; once its manifest is written, if a gc ran at any moment since then (or
   still runs), it waits until no gc runs, checks that each of its blobs is present
   and uploads again any that is not (a blob it found present, or had just sent,
   may have been deleted by a gc that listed the manifests before this one). So
   every manifest's blobs are present once its publish returns.
3. A tracked launch holds a lease (:func:`launching`) from before it looks for its
   image and code package until its container has exited: while a live lease
   exists, gc deletes no image and no code package (their records come last). The
   launch writes its lease, then waits for any gc already running; a gc lists the
   leases after writing its start marker. So either gc sees the lease or the launch
   looks for its image and package only once that gc has ended.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from aeromancy.errors import StoreDamaged
from aeromancy.leftovers import STALE_SECONDS, abandoned, owner
from aeromancy.store.backend import Backend
from aeromancy.store.blobs import BLOBS_PREFIX
from aeromancy.store.gc_environments import Environments, sort_environments
from aeromancy.store.gc_records import RecordRefs, record_refs
from aeromancy.store.layout import parse_manifest_key
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.store.manifest_check import parse_manifest

GC_PREFIX = "gc/"
START, END = ".start.json", ".end.json"
LEASE_PREFIX = "gc/launches/"
#: Slack between this machine's clock and the store's, in seconds.
CLOCK_MARGIN = 300.0
DEFAULT_GRACE_SECONDS = 3600.0
MANIFEST_PREFIXES = ("artifacts/", "dev/artifacts/")
#: How often a publisher looks again whether a gc has finished.
POLL_SECONDS = 0.5


@dataclass
class GcReport:
    """What one collection deleted (or, in a dry run, would delete)."""

    dry_run: bool
    versions: list[str] = field(default_factory=list)
    #: Keys of the image records and code packages deleted (or that would be).
    images: list[str] = field(default_factory=list)
    code_packages: list[str] = field(default_factory=list)
    blobs: int = 0
    blob_bytes: int = 0
    kept_young: int = 0
    #: Versions --keep-last/--older-than would delete but a run record read.
    kept_inputs: int = 0
    #: Why no image or code package was deleted, when something stopped it.
    environments_kept: str = ""
    #: Image ids (64 hex digits) the readable run records name.
    record_images: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class GcOptions:
    """``keep_last``: keep this many newest versions of each artifact (None: all).

    ``older_than_days``: only versions created longer ago are deleted. ``grace_seconds``:
    blobs younger than this are kept whatever references them.
    """

    dry_run: bool = False
    keep_last: int | None = None
    older_than_days: float | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS


def collect(backend: Backend, options: GcOptions) -> GcReport:
    """Delete what nothing references; return the report. Raises StoreDamaged for a bad root."""
    report = GcReport(options.dry_run)
    with _running(backend, options.dry_run):
        manifests = _manifests(backend)
        refs = record_refs(backend)
        report.record_images = refs.images
        doomed = _old_versions(manifests, options, refs, report)
        report.versions = sorted(version.ref for key, version in manifests if key in doomed)
        environments = _environments(backend, refs, options, report)
        if not options.dry_run:
            for key in [*doomed, *environments.keys]:
                backend.delete(key)
        kept = [version for key, version in manifests if key not in doomed]
        referenced = {f.sha256 for version in kept for f in version.files}
        referenced |= environments.kept_digests | refs.logs
        _sweep_blobs(backend, referenced, options, report)
    return report


def _environments(
    backend: Backend, refs: RecordRefs, options: GcOptions, report: GcReport
) -> Environments:
    """Sort images and code packages; none is deletable while a launch or a bad record is."""
    if refs.unreadable:
        report.environments_kept = f"{len(refs.unreadable)} run record(s) unreadable"
    elif _live_leases(backend, options.dry_run):
        report.environments_kept = "a tracked run is being launched"
    cutoff = time.time() - options.grace_seconds
    found = sort_environments(backend, refs, cutoff, deletable=not report.environments_kept)
    report.images = list(found.doomed_images)
    report.code_packages = list(found.doomed_code)
    return found


@contextmanager
def launching(backend: Backend) -> Iterator[None]:
    """Hold a lease for a tracked launch: no gc deletes an image or code package meanwhile.

    Entered before the launch looks for (or saves) its image and code package; it
    waits for a gc already running to end. Left once the run records are written.
    """
    lease = f"{LEASE_PREFIX}{owner()}-{uuid.uuid4().hex}.json"
    backend.create(lease, json.dumps({"started": time.time()}).encode())
    try:
        wait_for_gc(backend)
        yield
    finally:
        backend.delete(lease)


def _live_leases(backend: Backend, dry_run: bool) -> bool:
    """Return True when a launch that is still alive holds a lease; stale ones are removed
    (those of dead processes on this host, or a day old)."""
    live = False
    for info in backend.list_objects(LEASE_PREFIX):
        if abandoned(info.key[len(LEASE_PREFIX) :], info.modified, STALE_SECONDS):
            if not dry_run:
                backend.delete(info.key)
        else:
            live = True
    return live


@contextmanager
def _running(backend: Backend, dry_run: bool) -> Iterator[None]:
    """Mark the store with this gc's start and end (nothing for a dry run, which deletes
    nothing); markers of gc runs that ended a day ago are removed."""
    if dry_run:
        yield
        return
    _prune_markers(backend)
    run = f"{GC_PREFIX}{owner()}-{uuid.uuid4().hex}"
    backend.create(f"{run}{START}", json.dumps({"started": time.time()}).encode())
    try:
        yield
    finally:
        backend.create(f"{run}{END}", json.dumps({"finished": time.time()}).encode())


def _runs(backend: Backend) -> dict[str, dict[str, float]]:
    """Return {gc run: {"start"/"end": when its marker was written}} from the markers."""
    found: dict[str, dict[str, float]] = {}
    for info in backend.list_objects(GC_PREFIX):
        if info.key.startswith(LEASE_PREFIX):
            continue
        for suffix, kind in ((START, "start"), (END, "end")):
            if info.key.endswith(suffix):
                found.setdefault(info.key[: -len(suffix)], {})[kind] = info.modified
    return found


def _live(run: str, times: dict[str, float]) -> bool:
    name = run[len(GC_PREFIX) :]
    return "end" not in times and not abandoned(name, times.get("start", 0.0), STALE_SECONDS)


def _prune_markers(backend: Backend) -> None:
    cutoff = time.time() - STALE_SECONDS
    for run, times in _runs(backend).items():
        if times.get("end", times.get("start", 0.0)) < cutoff:
            for suffix in (START, END):
                backend.delete(f"{run}{suffix}")


def overlapped(backend: Backend, since: float) -> bool:
    """Return True when a gc ran at some moment after ``since`` (Unix time), or still runs.

    Marker times are the store's clock; :data:`CLOCK_MARGIN` absorbs the difference.
    """
    for run, times in _runs(backend).items():
        if _live(run, times) or times.get("end", times.get("start", 0.0)) >= since - CLOCK_MARGIN:
            return True
    return False


def wait_for_gc(backend: Backend, limit: float = STALE_SECONDS) -> None:
    """Return once no live gc runs (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not any(_live(run, times) for run, times in _runs(backend).items()):
            return
        time.sleep(POLL_SECONDS)


def _manifests(backend: Backend) -> list[tuple[str, ArtifactVersion]]:
    """Return (key, version) of every manifest; a damaged one stops gc (exit 3)."""
    found = []
    for prefix in MANIFEST_PREFIXES:
        namespace: Namespace = "dev" if prefix.startswith("dev/") else "tracked"
        for key in backend.list_prefix(prefix):
            parsed = parse_manifest_key(key, namespace)
            data = backend.read_bytes(key)
            if parsed is None or data is None:
                continue
            project = key[len(prefix) :].split("/", 1)[0]
            expected = (namespace, project, parsed[0], parsed[1])
            try:
                found.append((key, parse_manifest(data, key, expected)))
            except StoreDamaged as exc:
                raise StoreDamaged(
                    f"{exc.message}; gc cannot tell which blobs it needs",
                    "repair or delete that manifest, then run gc again",
                ) from exc
    return found


def _old_versions(
    manifests: list[tuple[str, ArtifactVersion]],
    options: GcOptions,
    refs: RecordRefs,
    report: GcReport,
) -> set[str]:
    """Return the manifest keys ``keep_last`` and ``older_than_days`` let go.

    Never one a run record names as an input, and none while a record is unreadable.
    """
    if options.keep_last is None and options.older_than_days is None:
        return set()
    if refs.unreadable:
        return set()
    keep = options.keep_last if options.keep_last is not None else 1
    cutoff = None
    if options.older_than_days is not None:
        cutoff = datetime.now(timezone.utc) - timedelta(days=options.older_than_days)
    by_artifact: dict[tuple[str, str, str], list[tuple[int, str, ArtifactVersion]]] = {}
    for key, version in manifests:
        artifact = (version.namespace, version.project, version.name)
        by_artifact.setdefault(artifact, []).append((version.version, key, version))
    doomed = set()
    for versions in by_artifact.values():
        versions.sort()
        for _number, key, version in versions[: max(0, len(versions) - keep)]:
            if cutoff is not None and _created(version) >= cutoff:
                continue
            if (version.project, version.name, version.label) in refs.inputs:
                report.kept_inputs += 1
                continue
            doomed.add(key)
    return doomed


def _created(version: ArtifactVersion) -> datetime:
    try:
        stamp = datetime.fromisoformat(version.created)
    except ValueError:
        return datetime.now(timezone.utc)  # unknown age: never old enough
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _sweep_blobs(
    backend: Backend, referenced: set[str], options: GcOptions, report: GcReport
) -> None:
    cutoff = time.time() - options.grace_seconds
    for info in backend.list_objects(BLOBS_PREFIX):
        digest = info.key.rsplit("/", 1)[-1]
        if digest in referenced:
            continue
        if info.modified > cutoff:
            report.kept_young += 1
            continue
        report.blobs += 1
        report.blob_bytes += info.size
        if not options.dry_run:
            backend.delete(info.key)
