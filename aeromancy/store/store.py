"""The store facade: what the rest of Aeromancy calls (see docs/architecture.md).

Layers, bottom up: a raw :class:`~aeromancy.store.backend.Backend` (local or S3),
content-addressed blobs (:mod:`.blobs`), manifests (:mod:`.versions`), the read
cache (:mod:`.cache`) and run records (:mod:`.runs`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aeromancy import __version__
from aeromancy.errors import NotFound, StoreDamaged, UsageError
from aeromancy.names import check_name
from aeromancy.settings import default_cache_dir
from aeromancy.store import gc, runs, versions
from aeromancy.store.backend import Backend
from aeromancy.store.blobs import BlobStore
from aeromancy.store.cache import BlobCache
from aeromancy.store.cached_pull import pull_through_cache
from aeromancy.store.copying import hard_links_wanted
from aeromancy.store.layout import blob_key, check_namespace
from aeromancy.store.local import LocalBackend
from aeromancy.store.manifest import ArtifactVersion, FileEntry, Namespace
from aeromancy.store.paths import SourceFile, check_relative_path, collect_files
from aeromancy.store.placing import Wanted, files_to_write, write_files
from aeromancy.store.progress import transfer_progress
from aeromancy.store.pulling import blob_fills
from aeromancy.store.refs import Reference, parse_ref
from aeromancy.store.statcache import StatCache


class Store:
    """A versioned artifact store on one backend, read through a local cache."""

    def __init__(self, backend: Backend, cache_dir: Path | None = None, workers: int = 8) -> None:
        self.backend = backend
        self.workers = workers
        cache_root = cache_dir or default_cache_dir()
        self.blobs = BlobStore(backend, workers, StatCache(cache_root))
        self.cache = BlobCache(cache_root, backend)

    def __repr__(self) -> str:
        return f"Store({self.backend.describe()!r})"

    def describe(self) -> str:
        """Return the store location as a user would write it."""
        return self.backend.describe()

    # -- publishing -------------------------------------------------------------------

    def publish(
        self,
        project: str,
        name: str,
        source_path: Path | str,
        *,
        type: str = "artifact",
        metadata: dict[str, Any] | None = None,
        run_id: str | None = None,
        namespace: str = "tracked",
    ) -> ArtifactVersion:
        """Publish a file or directory as the next version of ``project/name``; return it.

        Blobs go first and the manifest last, so a failed or interrupted publish
        leaves no visible version. Bad names and paths are refused before any write.
        Files identical to the newest version of the artifact in ``namespace`` (same
        paths, sizes and digests, same type and metadata) make no new version: that
        version is returned, and ``latest`` stays where it is.
        """
        draft = ArtifactVersion(
            project=check_name(project, "project"),
            name=check_name(name, "artifact"),
            version=0,
            type=check_name(type, "artifact type"),
            files=(),
            metadata=_json_object(metadata),
            run_id=run_id,
            namespace=check_namespace(namespace),
            aeromancy_version=__version__,
        )
        sources = collect_files(Path(source_path))
        total = sum(source.size for source in sources)
        looked_at_blobs = time.time()  # a gc running from now on may delete what we reuse
        with transfer_progress(f"push {project}/{name}", total) as progress:
            entries = self.blobs.put_files(sources, progress)
        candidate = _with_files(draft, entries)
        same = self._identical_newest(candidate)
        if same is not None:
            return same
        version = versions.create_version(self.backend, candidate)
        self._settle_with_gc(version, sources, looked_at_blobs)
        return version

    def _identical_newest(self, candidate: ArtifactVersion) -> ArtifactVersion | None:
        """Return the artifact's newest version when it equals ``candidate``, else None.

        Equal means the same file list (the content digest), type and metadata; a
        damaged newest manifest is never reused. Its blobs are safe from a gc: the
        manifest that references them exists.
        """
        space, project, name = candidate.namespace, candidate.project, candidate.name
        numbers = versions.version_numbers(self.backend, space, project, name)
        if not numbers:
            return None
        try:
            newest = versions.read_version(self.backend, space, project, name, numbers[-1])
        except StoreDamaged:
            return None
        if newest is None or (newest.digest, newest.type, newest.metadata) != (
            candidate.digest,
            candidate.type,
            candidate.metadata,
        ):
            return None
        return newest

    def _settle_with_gc(
        self, version: ArtifactVersion, sources: list[SourceFile], since: float
    ) -> None:
        """If a gc ran since ``since``, wait for it, then put back any blob it removed.

        A blob found present (so not sent again) may have been unreferenced and old,
        and a gc that listed the manifests before this one was written may delete it
        (see :mod:`.gc`). Raises StoreDamaged if a file changed so that it cannot be.
        """
        if not gc.overlapped(self.backend, since):
            return
        gc.wait_for_gc(self.backend)
        digests = {entry.path: entry.sha256 for entry in version.files}
        gone = {digest for digest in set(digests.values()) if not self.blobs.has(digest)}
        if not gone:
            return
        again = self.blobs.put_files([s for s in sources if digests[s.path] in gone], _ignore)
        if any(entry.sha256 != digests[entry.path] for entry in again):
            raise StoreDamaged(
                f"the store is damaged: a gc removed blobs of {version.ref} while it was "
                "published, and its files have changed since",
                "push the artifact again",
            )

    # -- reading ----------------------------------------------------------------------

    def resolve(
        self, ref: str, default_project: str, namespace: str = "tracked"
    ) -> ArtifactVersion:
        """Return the version ``ref`` names, seen from ``namespace``.

        Tracked sees tracked versions only. Dev resolves ``name``/``name:latest`` to the
        newest (by creation time) of the dev and tracked versions, and ``name:vN`` /
        ``name:devN`` to exactly that one. Raises NotFound naming what exists.
        """
        view = check_namespace(namespace)
        parsed = parse_ref(ref)
        project = parsed.project or check_name(default_project, "project")
        if parsed.namespace == "dev" and view == "tracked":
            raise UsageError(
                f"{parsed.display(project)} is a dev version; tracked runs use tracked versions",
                "publish it from a tracked run, or run with --dev",
            )
        if parsed.version is not None and parsed.namespace is not None:
            found = versions.read_version(
                self.backend, parsed.namespace, project, parsed.name, parsed.version
            )
        else:
            found = self._newest(project, parsed.name, view)
        if found is None:
            raise self._not_found(parsed, project, view)
        return found

    def list_versions(
        self, project: str, name: str, namespace: str = "tracked"
    ) -> list[ArtifactVersion]:
        """Return every version of one artifact seen from ``namespace``, oldest first.

        The dev view holds dev and tracked versions ordered by creation time.
        Returns [] when the artifact has no versions.
        """
        wanted: list[tuple[Namespace, str, str, int]] = [
            (space, project, name, number)
            for space in _spaces(check_namespace(namespace))
            for number in versions.version_numbers(self.backend, space, project, name)
        ]
        found = versions.read_versions(self.backend, wanted, self.workers)
        return sorted(found, key=lambda version: (version.created, version.namespace))

    def list_artifacts(self, project: str, namespace: str = "tracked") -> list[ArtifactVersion]:
        """Return the newest version of every artifact of ``project``, sorted by name.

        The dev view takes the newer of the dev and tracked versions of each name.
        Returns [] when the project has no artifacts.
        """
        wanted: list[tuple[Namespace, str, str, int]] = []
        for space in _spaces(check_namespace(namespace)):
            numbers = versions.artifact_numbers(self.backend, space, project)
            wanted.extend((space, project, name, found[-1]) for name, found in numbers.items())
        newest: dict[str, ArtifactVersion] = {}
        for version in versions.read_versions(self.backend, wanted, self.workers):
            current = newest.get(version.name)
            if current is None or version.created > current.created:
                newest[version.name] = version
        return [newest[name] for name in sorted(newest)]

    def materialize(self, version: ArtifactVersion, dest_dir: Path | str) -> Path:
        """Write ``version``'s files under ``dest_dir`` read-only and return ``dest_dir``.

        Every blob is verified against its sha256 in the cache first, then reflinked
        or copied (never the cache's own inode; see :mod:`.placing`); from a local
        store, each file is copied from the blob and verified in one pass, with no
        cache copy, and named once all are (see :mod:`.pulling`). Files already
        holding the right bytes are kept (a re-pull completes a killed one). Refuses,
        writing nothing, when another file or a link is in the way; a write that fails
        (a full disk) removes what was placed and raises InfrastructureError (exit 3).
        """
        dest = Path(dest_dir)
        wanted = [Wanted(check_relative_path(f.path), f.size, f.sha256) for f in version.files]
        missing = files_to_write(dest, wanted)
        all_paths = [item.path for item in wanted]
        if isinstance(self.backend, LocalBackend) and not hard_links_wanted():
            _pull_local(self.backend, version, dest, missing, all_paths)
            return dest
        with transfer_progress(f"pull {version.ref}", sum(i.size for i in missing)) as progress:
            pull_through_cache(
                self.cache,
                version.ref,
                dest,
                missing,
                all_paths=all_paths,
                threads=self.workers,
                progress=progress,
            )
        return dest

    def has_content(self, version: ArtifactVersion) -> bool:
        """Return True when every blob of ``version`` is still in the store."""
        return self.has_blobs(entry.sha256 for entry in version.files)

    def has_blobs(self, digests: Iterable[str]) -> bool:
        """Return True when every blob named by a sha256 hex digest is in the store.

        True for no digests; raises InvalidName for a string that is not a digest.
        """
        return self.blobs.has_all(digests)

    def blob_uri(self, sha256_hex: str) -> str:
        """Return the URI of a blob: ``file:///...`` locally, ``s3://bucket/prefix/blobs/...``."""
        return self.backend.uri(blob_key(sha256_hex))

    # -- run records ------------------------------------------------------------------

    def put_run_record(
        self, project: str, run_id: str, record: dict[str, Any], namespace: str = "tracked"
    ) -> bytes:
        """Write a run record once; return the bytes stored. Raise UsageError if the run
        id is already recorded."""
        space = check_namespace(namespace)
        project = check_name(project, "project")
        return runs.put_run_record(self.backend, space, project, run_id, record)

    def get_run_record(
        self, project: str, run_id: str, namespace: str = "tracked"
    ) -> dict[str, Any]:
        """Return one run record; raise NotFound when there is none."""
        return runs.get_run_record(self.backend, check_namespace(namespace), project, run_id)

    def list_run_ids(self, project: str, namespace: str = "tracked") -> list[str]:
        """Return the ids of every run record of ``project`` in ``namespace``, sorted.

        Returns [] when there are none; no record is read.
        """
        return runs.list_run_ids(self.backend, check_namespace(namespace), project)

    def list_run_records(self, project: str, namespace: str = "tracked") -> list[dict[str, Any]]:
        """Return every run record of ``project`` in ``namespace`` by run id ([] when none)."""
        space = check_namespace(namespace)
        return runs.list_run_records(self.backend, space, project, self.workers * 2)

    # -- helpers ----------------------------------------------------------------------

    def _newest(self, project: str, name: str, view: Namespace) -> ArtifactVersion | None:
        candidates = []
        for space in _spaces(view):
            numbers = versions.version_numbers(self.backend, space, project, name)
            if numbers:
                candidates.append(
                    versions.read_version(self.backend, space, project, name, numbers[-1])
                )
        present = [version for version in candidates if version is not None]
        return max(present, key=lambda version: version.created, default=None)

    def _not_found(self, ref: Reference, project: str, view: Namespace) -> NotFound:
        what = ref.display(project)
        labels = [version.label for version in self.list_versions(project, ref.name, view)]
        if labels:
            return NotFound(
                f"no artifact version {what}; {project}/{ref.name} has {_summary(labels)}",
                "pick one of those, or omit the version for the newest",
            )
        dev_labels = [v.label for v in self.list_versions(project, ref.name, "dev")]
        if view == "tracked" and dev_labels:
            return NotFound(
                f"no tracked version of {project}/{ref.name}; it has only dev versions "
                f"{_summary(dev_labels)}",
                "tracked runs never use dev versions; `aeromancy pull NAME:devN` reads one",
            )
        names = [version.name for version in self.list_artifacts(project, view)]
        if names:
            return NotFound(
                f"no artifact {project}/{ref.name}; project {project} has {_summary(names)}",
                "check the spelling, or push it with `aeromancy push`",
            )
        return NotFound(
            f"no artifact {project}/{ref.name}: project {project} has no artifacts in "
            f"{self.describe()}",
            "push one with `aeromancy push`, or check --store / AEROMANCY_STORE",
        )


def _pull_local(
    backend: LocalBackend,
    version: ArtifactVersion,
    dest: Path,
    missing: list[Wanted],
    all_paths: list[str],
) -> None:
    """Write ``missing`` from a local store's blobs, each verified, with no cache copy.

    A local store's blob is on this machine already (see :mod:`.pulling`).
    """
    with transfer_progress(f"pull {version.ref}", sum(i.size for i in missing)) as bar:
        write_files(dest, blob_fills(backend, version.ref, missing, bar), all_paths)


def _ignore(_count: int) -> None:
    return None


def _json_object(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``metadata``; raise UsageError when JSON cannot hold it."""
    try:
        json.dumps(metadata or {}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"artifact metadata is not JSON: {exc}", "use str, int, float, bool, list and dict"
        ) from exc
    return dict(metadata or {})


def _spaces(view: Namespace) -> tuple[Namespace, ...]:
    return ("dev", "tracked") if view == "dev" else ("tracked",)


def _summary(items: list[str], limit: int = 10) -> str:
    """Return ``items`` joined for one line, the last ``limit`` of them when there are more."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{len(items)} (the last: {', '.join(items[-limit:])})"


def _with_files(draft: ArtifactVersion, entries: list[FileEntry]) -> ArtifactVersion:
    return dataclasses.replace(draft, files=tuple(sorted(entries, key=lambda e: e.path)))
