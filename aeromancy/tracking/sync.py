"""``aeromancy sync``: upload offline W&B runs, then link their inputs in W&B.

Offline, the wandb SDK refuses ``use_artifact``, so a run's inputs are only listed in
its config (``aeromancy.inputs``: project, name, version, digest, W&B alias). Once
the runs are on the server, :func:`link_inputs` finds each one through the public
API and declares every listed input that it does not use yet, looking the input's
W&B artifact up by its ``aeromancy-vN`` alias. Linking is idempotent: inputs that
are already used are left alone, so ``aeromancy sync`` can run any number of times.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeromancy.errors import InfrastructureError
from aeromancy.tracking.wandb_artifacts import artifact_path

logger = logging.getLogger(__name__)

SYNCED_MARKER_SUFFIX = ".wandb.synced"


@dataclass
class LinkReport:
    """What :func:`link_inputs` did, per W&B run path and input reference."""

    linked: list[tuple[str, str]] = field(default_factory=list)
    already_linked: list[tuple[str, str]] = field(default_factory=list)
    missing_runs: list[str] = field(default_factory=list)
    missing_artifacts: list[tuple[str, str]] = field(default_factory=list)


def pending_offline_runs(runs_dir: Path) -> list[Path]:
    """Return the offline run directories not yet uploaded, oldest first ([] if none)."""
    pending = []
    for run_dir in sorted(runs_dir.glob("offline-run-*")):
        logs = list(run_dir.glob("run-*.wandb"))
        synced = [log.with_name(log.name + ".synced") for log in logs]
        if logs and not all(marker.exists() for marker in synced):
            pending.append(run_dir)
    return pending


def upload_offline_runs(run_dirs: list[Path]) -> None:
    """Upload ``run_dirs`` with ``wandb sync``, which marks each one synced when done.

    Raises InfrastructureError when ``wandb sync`` fails.
    """
    if not run_dirs:
        return
    argv = [sys.executable, "-m", "wandb", "sync", *(str(d) for d in run_dirs)]
    try:
        done = subprocess.run(argv, check=False)
    except OSError as exc:
        raise InfrastructureError(f"cannot run wandb sync: {exc}") from exc
    if done.returncode != 0:
        raise InfrastructureError(
            f"wandb sync failed with exit code {done.returncode}",
            "check the network and WANDB_API_KEY, then run aeromancy sync again",
        )


def open_api() -> Any:
    """Return a ``wandb.Api`` client; raise InfrastructureError when W&B refuses or is down."""
    import wandb

    try:
        return wandb.Api()
    except Exception as exc:
        raise InfrastructureError(
            f"cannot reach W&B: {exc}", "check the network and WANDB_API_KEY"
        ) from exc


def default_entity(api: Any, environ: Mapping[str, str]) -> str:
    """Return the entity of runs recorded without one: WANDB_ENTITY, else the API's default.

    Returns '' when neither is known.
    """
    return environ.get("WANDB_ENTITY") or str(api.default_entity or "")


def link_inputs(api: Any, run_paths: Iterable[str], entity: str) -> LinkReport:
    """Declare the recorded inputs of each W&B run with the public API's ``use_artifact``.

    ``api`` is a ``wandb.Api``; ``run_paths`` are ``entity/project/id`` or ``project/id``
    (offline runs without an entity, which then get ``entity``).
    """
    report = LinkReport()
    for path in dict.fromkeys(run_paths):
        full_path = path if path.count("/") == 2 else f"{entity}/{path}"
        try:
            run = api.run(full_path)
        except Exception as exc:
            logger.debug("W&B has no run %s: %s", full_path, exc)
            report.missing_runs.append(full_path)
            continue
        _link_run(api, run, full_path, report)
    return report


def _link_run(api: Any, run: Any, path: str, report: LinkReport) -> None:
    used = {artifact.id for artifact in run.used_artifacts()}
    run_entity = path.partition("/")[0]
    for entry in recorded_inputs(run.config):
        ref = str(entry["ref"])
        wanted = artifact_path(run_entity, entry["project"], entry["name"], entry["wandb_alias"])
        try:
            artifact = api.artifact(wanted)
        except Exception as exc:
            logger.debug("W&B has no artifact %s: %s", wanted, exc)
            report.missing_artifacts.append((path, ref))
            continue
        if artifact.id in used:
            report.already_linked.append((path, ref))
            continue
        run.use_artifact(artifact)
        report.linked.append((path, ref))


def recorded_inputs(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the inputs a run recorded in its config ([] for a run made without Aeromancy)."""
    for key in ("aeromancy", "_aeromancy"):
        ours = config.get(key)
        if isinstance(ours, Mapping) and isinstance(ours.get("inputs"), list):
            return [entry for entry in ours["inputs"] if isinstance(entry, Mapping)]
    return []
