"""Does a worker fit this run: the same environment, and the same store?

On connect, every worker answers :func:`worker_report` (through ``Client.run``) and
the run compares it with its own (:func:`refusal`). The environment is compared two
ways: the environment image id, when the worker was told it (``aeromancy cluster up``
sets :data:`ENVIRONMENT_IMAGE_ENV`), and always the exact versions of Python and of
every distribution in Aeromancy's venv and in the project's venv. A directory store
must be the same directory on the worker: it reads back a probe file the run wrote.

A worker that joins after the run connected is checked where it runs a task: each
work item carries the run's environment image id and versions digest, and the worker
fails the task with :func:`late_refusal`'s cause when its own differ.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ENVIRONMENT_IMAGE_ENV = "AEROMANCY_WORKER_ENVIRONMENT_IMAGE"


@dataclass(frozen=True)
class WorkerReport:
    """What one worker says about itself."""

    environment_image: str  # '' when the worker was not told
    versions: str  # digest of Python's and every installed distribution's version
    probe: str | None  # the probe file's text as the worker read it (None: not found)


def worker_report(probe_path: str | None) -> WorkerReport:
    """Return this process's report (runs on each worker)."""
    probe = None
    if probe_path is not None:
        try:
            probe = Path(probe_path).read_text()
        except OSError:
            probe = None
    return WorkerReport(os.environ.get(ENVIRONMENT_IMAGE_ENV, ""), versions_digest(), probe)


def versions_digest() -> str:
    """Return a digest of this interpreter's version and the distributions it and the
    project's interpreter (``AEROMANCY_PROJECT_PYTHON``) have installed."""
    lines = [f"python {platform.python_version()} {sys.implementation.name}"]
    lines += sorted(_distributions(metadata.distributions()))
    project = os.environ.get("AEROMANCY_PROJECT_PYTHON")
    if project:
        venv = Path(project).parent.parent
        found = metadata.distributions(
            path=[str(p) for p in venv.glob("lib/python*/site-packages")]
        )
        lines += ["project:", *sorted(_distributions(found))]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _distributions(found: object) -> set[str]:
    names = set()
    for dist in found:  # type: ignore[attr-defined]
        name = dist.metadata["Name"]
        if name:
            names.add(f"{str(name).lower().replace('_', '-')}=={dist.version}")
    return names


def refusal(
    reports: Mapping[str, WorkerReport], environment_image: str, probe: str | None
) -> str | None:
    """Return the one line refusing these workers for this run, or None when all fit.

    ``environment_image`` is the run's environment image id ('' outside a tracked run);
    ``probe`` the text of the probe file in a directory store (None for S3).
    """
    if not reports:
        return "the cluster has no workers"
    mine = versions_digest()
    for address, report in sorted(reports.items()):
        if (
            report.environment_image
            and environment_image
            and (report.environment_image != environment_image)
        ):
            return (
                f"worker {address} runs environment image {_short(report.environment_image)}, "
                f"this run's is {_short(environment_image)}"
            )
        if report.versions != mine:
            return f"worker {address} has other package versions than this run's environment"
        if probe is not None and report.probe != probe:
            return f"worker {address} does not see the store directory at the same path"
    return None


def late_refusal(environment_image: str, versions: str, worker: str) -> str | None:
    """Return why this worker (one that may have joined after the run connected) must not
    run a task of a run with ``environment_image`` and ``versions``, or None."""
    mine = os.environ.get(ENVIRONMENT_IMAGE_ENV, "")
    if mine and environment_image and mine != environment_image:
        return (
            f"worker {worker} runs environment image {_short(mine)}, "
            f"this run's is {_short(environment_image)}"
        )
    if versions and versions != own_versions_digest():
        return f"worker {worker} has other package versions than this run's environment"
    return None


_OWN_DIGESTS: dict[str, str] = {}


def own_versions_digest() -> str:
    """Return :func:`versions_digest` of this process, computed once per project Python."""
    project = os.environ.get("AEROMANCY_PROJECT_PYTHON", "")
    if project not in _OWN_DIGESTS:
        _OWN_DIGESTS[project] = versions_digest()
    return _OWN_DIGESTS[project]


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
