"""The W&B tracker: one W&B run per task run, with artifact lineage through references.

What goes where (docs/tracking.md has the full table):

- ``wandb.init``: project, entity (``WANDB_ENTITY``), job_type = task, group = the
  ``aeromancy run`` invocation, tags = ``git/<branch>`` + ``--tags``, notes = the
  first line of the commit message, git commit and remote (W&B's own git fields),
  config = the task config plus an ``aeromancy`` key (run id, inputs, git, image id)
  and, for a run of a sweep variant, a ``sweep`` key holding the variant's point.
- outputs: one W&B artifact each, entries referencing the store's blobs.
- inputs: ``use_artifact`` when online; always listed in the config, since the SDK
  refuses ``use_artifact`` offline (``aeromancy sync`` links them later).
- finish: the run record (environment capture included) as a file, the installed
  packages as a table, status and exit code in the summary.

A W&B failure never reaches the executor: it is reported once, as one warning
line, and the task goes on untracked. Its outputs and run record are unaffected.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from aeromancy.store.manifest import ArtifactVersion
from aeromancy.tracking.base import TaskRunInfo
from aeromancy.tracking.environment import aeromancy_version, capture_environment
from aeromancy.tracking.secrets import redact_url
from aeromancy.tracking.wandb_artifacts import input_entry, reference_artifact, version_alias
from aeromancy.tracking.wandb_setup import Mode, prepare_runs_dir, resolve_mode, wandb_dir

logger = logging.getLogger(__name__)

CONFIG_KEY = "aeromancy"
SWEEP_KEY = "sweep"
RECORD_FILENAME = "aeromancy-run-record.json"
ENVIRONMENT_FILENAME = "aeromancy-environment.json"
# The task's stdout and stderr, captured by the executor (W&B's own capture is off:
# the task runs in a child process W&B does not see).
OUTPUT_FILENAME = "aeromancy-output.log"
# Environment facts copied into the summary, where W&B can filter and compare runs by them.
SUMMARY_FACTS = ("python", "platform", "host", "cpu", "memory_bytes", "gpus", "container")
MAX_TAG_LENGTH = 64  # W&B rejects longer tags
WANDB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_INIT_TIMEOUT_SECONDS = 30.0


class FailureNotice:
    """Shows the first W&B failure of a tracker as one warning line; the rest go to debug."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reported = False

    def report(self, action: str, exc: Exception, *, stops_tracking: bool = False) -> None:
        """Report that ``action`` failed with ``exc`` (on stderr only the first time).

        ``stops_tracking`` says that W&B is not used again in this ``aeromancy run``.
        """
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.debug("W&B %s failed", action, exc_info=exc)
        with self._lock:
            if self.reported:
                return
            self.reported = True
        then = "this W&B run is incomplete; later errors are not shown"
        if stops_tracking:
            then = "continuing without W&B for the rest of this run"
        click.echo(
            f"warning: W&B tracking failed ({action}: {reason}); {then}. "
            "Task outputs and run records are not affected.",
            err=True,
        )


class WandbRun:
    """One task run in W&B. ``run`` is None when untracked; then every method does nothing."""

    def __init__(self, run: Any | None, info: TaskRunInfo, notice: FailureNotice) -> None:
        self._run = run
        self._path = None if run is None else str(run.path)
        self._info = info
        self._notice = notice

    @property
    def path(self) -> str | None:
        """Return ``entity/project/id`` (``project/id`` offline without an entity), or None."""
        return self._path

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Add ``metrics`` to the W&B history (at ``step`` when given)."""
        if self._run is None:
            return
        with self._guard("log"):
            self._require().log(dict(metrics), step=step)

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        """Log each output as a W&B artifact of references to the store's blobs."""
        if self._run is None:
            return
        for version in outputs:
            with self._guard(f"log artifact {version.name}"):
                artifact = reference_artifact(version, blob_uris)
                self._require().log_artifact(artifact, aliases=["latest", version_alias(version)])

    def attach_log(self, path: Path) -> None:
        """Attach the task's captured stdout and stderr as a file of the run."""
        if self._run is None:
            return
        with self._guard("attach the task output"):
            run = self._require()
            target = Path(run.dir) / OUTPUT_FILENAME
            shutil.copyfile(path, target)
            run.save(str(target), base_path=run.dir, policy="now")

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        """Attach the run record and environment, then close the W&B run with an exit code."""
        if self._run is None:
            return
        environment = record.get("environment") or capture_environment(self._info.identity)
        with self._guard("attach the run record"):
            self._attach_json(RECORD_FILENAME, record)
            self._attach_json(ENVIRONMENT_FILENAME, environment)
        with self._guard("write the summary"):
            self._run.summary.update(outcome_summary(record, succeeded, environment))
        with self._guard("finish"):
            self._run.finish(exit_code=0 if succeeded else 1)
        self._run = None

    def _attach_json(self, filename: str, document: Mapping[str, Any]) -> None:
        # A file rather than a wandb.Table: tables are staged as artifacts outside the
        # project (~/.local/share/wandb) and stay there while the run is offline.
        run = self._require()
        path = Path(run.dir) / filename
        path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
        run.save(str(path), base_path=run.dir, policy="now")

    def _require(self) -> Any:
        if self._run is None:
            raise RuntimeError("the W&B run is closed")
        return self._run

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        # Tracking must never fail a task: any error of the SDK becomes one warning.
        try:
            yield
        except Exception as exc:
            self._notice.report(action, exc)


class WarmUp:
    """Imports wandb and starts its service in the background, while the graph is planned.

    Both cost seconds (most of W&B's overhead per ``aeromancy run``) and need nothing
    from the task runs, so the first ``start`` finds them done or nearly done.
    """

    def __init__(self) -> None:
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="aeromancy-wandb-warm-up")
        # A daemon thread never delays the exit of a run that tracked nothing.
        self._thread.daemon = True
        self._thread.start()

    def _run(self) -> None:
        try:
            quiet_wandb_setup()
        except Exception as exc:
            self._error = exc
            return
        try:
            # The first wandb.init imports W&B Launch's input handling (over a second
            # without cached bytecode) whether or not Launch is used; do it here.
            import wandb.sdk.launch.inputs.internal  # noqa: F401
        except ImportError:
            logger.debug("W&B launch inputs not importable ahead of time", exc_info=True)

    def wait(self) -> None:
        """Return once W&B is ready; raise what setting it up raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error


class WandbTracker:
    """``--tracker wandb``: one W&B run per task run, offline when there is no API key.

    After the first failure to open a W&B run, later task runs are not tracked in W&B
    either: a missing network would otherwise cost the init timeout for every task.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._mode: Mode = resolve_mode(self._environ)
        self._notice = FailureNotice()
        self._stopped = False
        self._warm_up = None if self._mode == "disabled" else WarmUp()

    @property
    def mode(self) -> Mode:
        """Return how runs are written: online, offline or disabled."""
        return self._mode

    def start(self, info: TaskRunInfo) -> WandbRun:
        """Return the open W&B run of ``info``, or an untracked run if W&B is off or fails."""
        if self._mode == "disabled" or self._stopped:
            return WandbRun(None, info, self._notice)
        try:
            if self._warm_up is not None:
                self._warm_up.wait()
            run = self._init(info)
        except Exception as exc:
            # W&B could not even open a run (no network, bad key): later task runs
            # would only wait for the same timeout, so stop using it.
            self._stopped = True
            self._notice.report("wandb.init", exc, stops_tracking=True)
            return WandbRun(None, info, self._notice)
        tracked = WandbRun(run, info, self._notice)
        if self._mode == "online":
            declare_inputs(run, info, self._notice)
        return tracked

    def close(self) -> None:
        """Nothing spans the invocation in W&B: its runs are grouped, not nested."""

    def _init(self, info: TaskRunInfo) -> Any:
        import wandb

        quiet_wandb_setup()
        root = wandb_dir(environ=self._environ)
        prepare_runs_dir(root / "wandb")
        identity = info.identity
        return wandb.init(
            project=info.project,
            entity=self._environ.get("WANDB_ENTITY") or None,
            id=info.run_id if WANDB_ID.fullmatch(info.run_id) else None,
            name=f"{info.task}-{info.run_id}",
            job_type=info.task,
            group=info.group or None,
            config=run_config(info),
            tags=run_tags(info),
            notes=first_line(identity.git_message) or None,
            dir=str(root),
            mode=self._mode,
            reinit="create_new",
            settings=wandb.Settings(**self._settings(info)),
        )

    def _settings(self, info: TaskRunInfo) -> dict[str, Any]:
        identity = info.identity
        settings: dict[str, Any] = {
            # Quiet: our own output stays readable. The task runs in a child process
            # W&B does not see; its output is attached as aeromancy-output.log instead.
            "silent": True,
            "console": "off",
            "save_code": False,
            # Aeromancy captures the environment itself, once per process; W&B's own
            # probes (system metrics, requirements, git, machine info) cost seconds.
            "x_disable_stats": True,
            "x_save_requirements": False,
            "x_disable_machine_info": True,
            "disable_git": True,
            "git_commit": identity.git_commit or None,
            "git_remote_url": redact_url(identity.git_remote) or None,
            "docker": identity.image_id or None,
        }
        # W&B reads WANDB_INIT_TIMEOUT once per process; pass it so ours always applies.
        timeout = self._environ.get("WANDB_INIT_TIMEOUT")
        settings["init_timeout"] = float(timeout) if timeout else DEFAULT_INIT_TIMEOUT_SECONDS
        return settings


def quiet_wandb_setup() -> None:
    """Silence the W&B SDK for this process (its login banner comes before wandb.init)."""
    import wandb

    wandb.setup(settings=wandb.Settings(silent=True))


def declare_inputs(run: Any, info: TaskRunInfo, notice: FailureNotice) -> list[str]:
    """Declare each input with ``use_artifact`` (online only); return the refs not linked.

    An input whose producing run was offline and not yet synced, or was pushed
    without W&B, has no W&B artifact yet: it stays in the config for ``aeromancy sync``.
    """
    unlinked = []
    for version in info.inputs:
        path = f"{version.project}/{version.name}:{version_alias(version)}"
        try:
            run.use_artifact(path if run.entity is None else f"{run.entity}/{path}")
        except Exception as exc:
            logger.debug("W&B has no artifact %s yet: %s", path, exc)
            unlinked.append(version.ref)
    return unlinked


def run_config(info: TaskRunInfo) -> dict[str, Any]:
    """Return the W&B config: the task's resolved config plus Aeromancy's own key.

    A task parameter itself called ``aeromancy`` keeps its value; ours then goes
    under ``_aeromancy``.
    """
    identity = info.identity
    ours = {
        "run_id": info.run_id,
        "task": info.task,
        "group": info.group,
        "inputs": [input_entry(version) for version in info.inputs],
        "git": {
            "commit": identity.git_commit,
            "branch": identity.git_branch,
            "remote": redact_url(identity.git_remote),
            "dirty": identity.git_dirty,
        },
        "image_id": identity.image_id,
        "aeromancy_version": aeromancy_version(),
    }
    if info.variant is not None:
        ours["variant"] = {k: info.variant.get(k) for k in ("index", "label", "seed")}
    config = {**info.config}
    if info.variant is not None:
        # Every run of a variant, downstream tasks included, carries the sweep point, so
        # W&B's parallel coordinates and group-by work across the invocation's group.
        sweep_key = SWEEP_KEY if SWEEP_KEY not in config else f"_{SWEEP_KEY}"
        config[sweep_key] = nest(info.variant.get("point") or {})
    key = CONFIG_KEY if CONFIG_KEY not in info.config else f"_{CONFIG_KEY}"
    return {**config, key: ours}


def nest(point: Mapping[str, Any]) -> dict[str, Any]:
    """Return a sweep point's dotted keys nested: ``{"train.lr": 0.1}`` -> ``{"train":
    {"lr": 0.1}}`` (W&B shows nested config keys as ``sweep.train.lr``)."""
    nested: dict[str, Any] = {}
    for key in sorted(point):  # a swept dict before its swept keys: the later refines it
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[last] = copy.deepcopy(point[key])
    return nested


def run_tags(info: TaskRunInfo) -> list[str]:
    """Return ``git/<branch>`` (when on a branch) then the ``--tags``, deduplicated."""
    tags = [f"git/{info.identity.git_branch}"] if info.identity.git_branch else []
    tags += list(info.tags)
    return list(dict.fromkeys(tag[:MAX_TAG_LENGTH] for tag in tags if tag))


def first_line(text: str) -> str:
    """Return the first line of ``text`` ('' for empty text)."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def outcome_summary(
    record: Mapping[str, Any], succeeded: bool, environment: Mapping[str, Any]
) -> dict[str, Any]:
    """Return what the W&B summary says about how the task run ended and where it ran."""
    outcome: dict[str, Any] = {"succeeded": succeeded, "exit_code": 0 if succeeded else 1}
    for key in ("status", "fingerprint", "started", "ended"):
        if key in record:
            outcome[key] = record[key]
    duration = duration_seconds(record.get("started"), record.get("ended"))
    if duration is not None:
        outcome["duration_seconds"] = duration
    outcome["environment"] = {k: environment[k] for k in SUMMARY_FACTS if k in environment}
    return {CONFIG_KEY: outcome}


def duration_seconds(started: Any, ended: Any) -> float | None:
    """Return the seconds between two ISO 8601 times, or None when either is missing or bad."""
    try:
        delta = datetime.fromisoformat(str(ended)) - datetime.fromisoformat(str(started))
    except (TypeError, ValueError):
        return None
    return round(delta.total_seconds(), 3)
