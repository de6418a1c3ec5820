"""A task run attempted again under the same run id publishes nothing twice.

A cluster worker that dies after publishing some outputs but before writing the record
has its task run again by Dask, with the run id the host minted. Before publishing an
output, that attempt looks for a version of it this run id already made; versions
older than the run id's own time stamp cannot be one, so the look-up stops there.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from aeromancy.errors import StoreDamaged
from aeromancy.store import versions
from aeromancy.store.manifest import ArtifactVersion, Namespace

if TYPE_CHECKING:
    from aeromancy.store import Store

# Clocks of the host that minted the id and of the store writer may differ a little.
CLOCK_SLACK = timedelta(minutes=5)


def published_by(
    store: Store, project: str, name: str, namespace: Namespace, run_id: str
) -> ArtifactVersion | None:
    """Return the version of ``project/name`` that ``run_id`` published, or None."""
    since = _minted(run_id)
    numbers = versions.version_numbers(store.backend, namespace, project, name)
    for number in reversed(numbers):
        try:
            found = versions.read_version(store.backend, namespace, project, name, number)
        except StoreDamaged:
            continue
        if found is None:
            continue
        if found.run_id == run_id:
            return found
        if since is not None and _created(found) < since:
            return None
    return None


def _minted(run_id: str) -> datetime | None:
    """Return when ``run_id`` was minted, less the clock slack (None: not a stamped id)."""
    try:
        stamp = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return stamp - CLOCK_SLACK


def _created(version: ArtifactVersion) -> datetime:
    try:
        return datetime.fromisoformat(version.created)
    except ValueError:
        return datetime.max.replace(tzinfo=timezone.utc)  # unknown: keep looking
