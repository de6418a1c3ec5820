"""Garbage collection: delete the blobs nothing references (and, on request, old versions).

What is kept (the roots): every manifest of every project in both namespaces, every
image record (``images/<id>.json``: its config and layer blobs) and every code
package (``code/<project>/<commit>.json``: its files), and the output log each run
record names (``log``). Code packages that no run record names and older than the
grace period are deleted first (:mod:`aeromancy.environments.code_usage`), so their
files' blobs go unless another package shares them. Deleting image records that no
run record uses is left to a later change: here they only keep their blobs alive
(the extension point is :func:`_root_digests`).

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
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aeromancy.errors import StoreDamaged
from aeromancy.leftovers import STALE_SECONDS, abandoned, owner
from aeromancy.store.backend import Backend
from aeromancy.store.blobs import BLOBS_PREFIX
from aeromancy.store.layout import parse_manifest_key
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.store.manifest_check import parse_manifest

GC_PREFIX = "gc/"
START, END = ".start.json", ".end.json"
#: Slack between this machine's clock and the store's, in seconds.
CLOCK_MARGIN = 300.0
DEFAULT_GRACE_SECONDS = 3600.0
MANIFEST_PREFIXES = ("artifacts/", "dev/artifacts/")
RUN_PREFIXES = ("runs/", "dev/runs/")
#: How often a publisher looks again whether a gc has finished.
POLL_SECONDS = 0.5


@dataclass
class GcReport:
    """What one collection deleted (or, in a dry run, would delete)."""

    dry_run: bool
    versions: list[str] = field(default_factory=list)
    blobs: int = 0
    blob_bytes: int = 0
    kept_young: int = 0
    code_packages: list[str] = field(default_factory=list)  # keys no run record names


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
        doomed = _old_versions(manifests, options)
        report.versions = sorted(version.ref for key, version in manifests if key in doomed)
        if not options.dry_run:
            for key in doomed:
                backend.delete(key)
        kept = [version for key, version in manifests if key not in doomed]
        referenced = {f.sha256 for version in kept for f in version.files}
        report.code_packages = _unused_code_packages(backend, options)
        referenced |= _root_digests(backend, skip=set(report.code_packages))
        referenced |= _log_digests(backend)
        _sweep_blobs(backend, referenced, options, report)
    return report


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


def _old_versions(manifests: list[tuple[str, ArtifactVersion]], options: GcOptions) -> set[str]:
    """Return the manifest keys that ``keep_last`` and ``older_than_days`` let go."""
    if options.keep_last is None and options.older_than_days is None:
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
            if cutoff is None or _created(version) < cutoff:
                doomed.add(key)
    return doomed


def _created(version: ArtifactVersion) -> datetime:
    try:
        stamp = datetime.fromisoformat(version.created)
    except ValueError:
        return datetime.now(timezone.utc)  # unknown age: never old enough
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _unused_code_packages(backend: Backend, options: GcOptions) -> list[str]:
    """Delete (unless a dry run) the code packages no run record names; return their keys."""
    from aeromancy.environments.code_usage import unused_code_packages

    unused = unused_code_packages(backend, options.grace_seconds)
    if not options.dry_run:
        for key in unused:
            backend.delete(key)
    return unused


def _root_digests(backend: Backend, skip: set[str]) -> set[str]:
    """Return the blobs image records and code packages name, but those in ``skip``."""
    digests: set[str] = set()
    for prefix in ("images/", "code/"):
        for key in backend.list_prefix(prefix):
            data = backend.read_bytes(key) if key.endswith(".json") and key not in skip else None
            if data is None:
                continue
            try:
                document = json.loads(data)
            except ValueError as exc:
                raise StoreDamaged(
                    f"the store is damaged: {key} is not JSON; gc cannot tell what it needs",
                    "repair or delete it, then run gc again",
                ) from exc
            digests |= set(_sha256_values(document))
    return digests


def _log_digests(backend: Backend) -> set[str]:
    """Return the task output logs run records name (``log``: a blob's sha256); kept
    while their record exists. An unreadable record names none."""
    digests: set[str] = set()
    for prefix in RUN_PREFIXES:
        for key in backend.list_prefix(prefix):
            data = backend.read_bytes(key) if key.endswith(".json") else None
            try:
                log = json.loads(data).get("log") if data is not None else None
            except (ValueError, AttributeError):
                continue
            if isinstance(log, str):
                digests.add(log)
    return digests


def _sha256_values(document: Any) -> Iterator[str]:
    """Yield every string under a ``sha256`` key anywhere in a JSON document."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "sha256" and isinstance(value, str):
                    yield value
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


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
