"""A pushed version in the tracker: a short run of job type ``push`` that logs it as its output.

``aeromancy push`` with a tracker on opens one tracker run per push, logs the new
version exactly as a task run logs its outputs (a W&B artifact of references to the
store's blobs, with the same aliases and metadata), and closes the run with a small
record naming the version. Task runs that consume the version then declare it as an
input (W&B: ``use_artifact``, or ``aeromancy sync`` for offline runs), so the lineage
graph starts at the raw data. A tracker failure never undoes the push: the version is
published before the tracker is told, and every tracker error becomes one warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aeromancy import __version__
from aeromancy.identity import RunIdentity
from aeromancy.records import new_run_id, now_iso
from aeromancy.store.manifest import ArtifactVersion
from aeromancy.tracker_guard import TrackerGuard
from aeromancy.tracking.base import TaskRunInfo, Tracker
from aeromancy.tracking.environment import capture_environment

PUSH_JOB = "push"  # the job type (W&B) or task tag (MLflow) of a push run


def push_info(version: ArtifactVersion, identity: RunIdentity) -> TaskRunInfo:
    """Return the tracker-run description of pushing ``version``: no group, no inputs.

    Without a group, a push run stands alone (no W&B group, no MLflow parent run).
    """
    config = {"artifact": version.name, "type": version.type}
    return TaskRunInfo(new_run_id(), version.project, PUSH_JOB, "", config, (), identity, ())


def push_record(
    info: TaskRunInfo, version: ArtifactVersion, started: str, tracker_path: str | None
) -> dict[str, Any]:
    """Return the record attached to a push run: what was pushed, from which commit, where."""
    identity = info.identity
    return {
        "kind": PUSH_JOB,
        "run_id": info.run_id,
        "project": version.project,
        "status": "succeeded",
        "artifact": version.ref,
        "type": version.type,
        "digest": version.digest,
        "files": len(version.files),
        "size": version.size,
        "metadata": version.metadata,
        "started": started,
        "ended": now_iso(),
        "git_commit": identity.git_commit,
        "git_branch": identity.git_branch,
        "git_remote": identity.git_remote,
        "git_dirty": identity.git_dirty,
        "tracker_run": tracker_path,
        "environment": capture_environment(identity),
        "aeromancy_version": __version__,
    }


def track_push(
    tracker: Tracker,
    version: ArtifactVersion,
    blob_uris: Mapping[str, str],
    identity: RunIdentity,
    warn: Callable[[str], None],
) -> str | None:
    """Log the pushed ``version`` from a short ``push`` run; return the tracker's run path.

    ``blob_uris`` maps each file's sha256 to its store URI. Never raises for a tracker
    failure: ``warn`` gets one line and None is returned when no run was opened.
    """
    guard = TrackerGuard(tracker, warn)
    started = now_iso()
    info = push_info(version, identity)
    run = guard.start(info)
    run.log_outputs([version], blob_uris)
    path = run.path
    run.finish(push_record(info, version, started, path), succeeded=True)
    guard.close()
    return path
