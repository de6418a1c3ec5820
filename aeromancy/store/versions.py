"""Manifests in the store: numbering, atomic creation, reading versions back."""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from aeromancy.errors import InfrastructureError, StoreDamaged
from aeromancy.store.backend import Backend
from aeromancy.store.damage import skip
from aeromancy.store.layout import (
    artifacts_prefix,
    manifest_key,
    parse_manifest_key,
    versions_prefix,
)
from aeromancy.store.manifest import ArtifactVersion, Namespace
from aeromancy.store.manifest_check import parse_manifest

#: Concurrent publishers each lose at most once per rival; this bounds a broken backend.
MAX_CREATE_ATTEMPTS = 1000


def utc_now() -> str:
    """Return the current time as ISO 8601 UTC with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def version_numbers(backend: Backend, namespace: Namespace, project: str, name: str) -> list[int]:
    """Return the version numbers of one artifact, ascending ([] when it has none)."""
    keys = backend.list_prefix(versions_prefix(namespace, project, name))
    parsed = (parse_manifest_key(key, namespace) for key in keys)
    return sorted(item[1] for item in parsed if item is not None and item[0] == name)


def artifact_numbers(backend: Backend, namespace: Namespace, project: str) -> dict[str, list[int]]:
    """Return {artifact name: ascending version numbers} for a project ({} when empty)."""
    found: dict[str, list[int]] = {}
    for key in backend.list_prefix(artifacts_prefix(namespace, project)):
        parsed = parse_manifest_key(key, namespace)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(parsed[1])
    return {name: sorted(numbers) for name, numbers in sorted(found.items())}


def create_version(backend: Backend, draft: ArtifactVersion) -> ArtifactVersion:
    """Write ``draft``'s manifest under the next free number and return the version made.

    Uses create-if-absent: when a concurrent publisher takes a number first, the
    next one is tried, so nobody overwrites anybody.
    """
    existing = version_numbers(backend, draft.namespace, draft.project, draft.name)
    number = (existing[-1] if existing else 0) + 1
    for _ in range(MAX_CREATE_ATTEMPTS):
        version = dataclasses.replace(draft, version=number, created=utc_now())
        key = manifest_key(version.namespace, version.project, version.name, number)
        # The nonce tells our own manifest (a create whose answer was lost, then
        # retried) from a rival's that took the number: see Backend.create.
        if backend.create(key, version.to_json(nonce=uuid.uuid4().hex)):
            return version
        number += 1
    raise InfrastructureError(
        f"could not create a version of {draft.project}/{draft.name}: every number was taken",
        "check that the store honours create-if-absent",
    )


def read_version(
    backend: Backend, namespace: Namespace, project: str, name: str, number: int
) -> ArtifactVersion | None:
    """Return one version as its manifest records it, or None when there is no manifest.

    Raises StoreDamaged (exit 3) when the manifest contradicts its key or itself.
    """
    key = manifest_key(namespace, project, name, number)
    data = backend.read_bytes(key)
    if data is None:
        return None
    return parse_manifest(
        data, f"{key} in {backend.describe()}", (namespace, project, name, number)
    )


def read_versions(
    backend: Backend,
    wanted: list[tuple[Namespace, str, str, int]],
    workers: int,
) -> list[ArtifactVersion]:
    """Return the versions named by (namespace, project, name, number), skipping missing ones.

    A damaged manifest is skipped too, with one warning line naming it, so that one
    bad manifest does not hide every other version.
    """

    def read(item: tuple[Namespace, str, str, int]) -> ArtifactVersion | None:
        try:
            return read_version(backend, *item)
        except StoreDamaged as exc:
            skip(f"manifest {manifest_key(*item)} in {backend.describe()}", exc.message)
            return None

    with ThreadPoolExecutor(max(1, min(workers, len(wanted)))) as pool:
        return [version for version in pool.map(read, wanted) if version is not None]
