"""The MLflow tracker: one MLflow run per task run, nested under one run per invocation.

What goes where (docs/tracking.md has the full table):

- experiment: named after the Aeromancy project (created on first use).
- parent run: one per ``aeromancy run`` invocation (tag ``aeromancy.invocation``),
  finished when the invocation ends, FAILED when one of its task runs failed.
- task run: ``mlflow.parentRunId`` = the parent; params = the resolved config,
  flattened (``optimizer.lr``); tags for git commit, branch and remote (MLflow's own
  ``mlflow.source.git.*``), image id, Aeromancy run id, task and invocation.
- inputs: one dataset each (name, version, digest), context ``input``.
- metrics: ``ctx.log`` values with their steps, sent in batches.
- outputs: one JSON artifact each, ``aeromancy/outputs/<name>.json``, listing the
  version's files with their store URIs: a reference, never a copy of the data.
- finish: the run record and environment capture as JSON artifacts, then the status.

MLflow is configured only by its standard variables (``MLFLOW_TRACKING_URI``, and
``MLFLOW_TRACKING_USERNAME`` / ``PASSWORD`` / ``TOKEN``, which MLflow reads itself and
Aeromancy never records). The client lives in Aeromancy's own process, never in the
task's. Any MLflow failure is reported once by the TrackerGuard; after a run could
not be created, MLflow is not used again in that invocation.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import numbers
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aeromancy.errors import UsageError
from aeromancy.store.manifest import ArtifactVersion
from aeromancy.tracking.base import TaskRunInfo
from aeromancy.tracking.environment import aeromancy_version, capture_environment
from aeromancy.tracking.secrets import redact_url

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# MLflow retries a failed request 7 times with exponential backoff (minutes in all) and
# waits 120 s for an answer: too long to hold a pipeline up. Ending a run, it also fetches
# the run again to print two links on stdout, between Aeromancy's own lines. A user's own
# values win.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
PATH_PREFIX = "mlflow:"  # run paths in Aeromancy's records: mlflow:<experiment id>/<run id>
RECORD_ARTIFACT = "aeromancy/run-record.json"
ENVIRONMENT_ARTIFACT = "aeromancy/environment.json"
# The task's captured stdout and stderr go under this artifact folder (as output.log).
OUTPUT_ARTIFACT_DIR = "aeromancy"
OUTPUTS_DIR = "aeromancy/outputs"
INPUT_CONTEXT = "input"
DIGEST_CHARS = 36  # MLflow stores at most 36 characters of a dataset digest
MAX_PARAMS_PER_BATCH = 100  # MLflow's limits for one log_batch request
MAX_METRICS_PER_BATCH = 1000
FLUSH_SECONDS = 2.0  # buffered metrics are sent at least this often while a task logs
KEY_BAD = re.compile(r"[^\w\-. /]")  # MLflow keys: alphanumerics, _ - . space /


def is_mlflow_path(path: str) -> bool:
    """Return True for a run path this tracker wrote (``mlflow:...``), not a W&B one."""
    return path.startswith(PATH_PREFIX)


def require_tracking_uri(environ: Mapping[str, str]) -> None:
    """Raise UsageError unless ``MLFLOW_TRACKING_URI`` is set in ``environ``.

    Checked on the host before a tracked run builds anything, and again by the tracker.
    """
    if not environ.get(TRACKING_URI_ENV):
        raise UsageError(
            f"--tracker mlflow needs {TRACKING_URI_ENV}",
            f"set it to your MLflow server, e.g. {TRACKING_URI_ENV}=http://127.0.0.1:5000",
        )


def _mlflow_importable() -> bool:
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it
        return False


def _missing_mlflow() -> UsageError:
    """Return the one-line refusal for a missing MLflow client, on the host or in an image."""
    from aeromancy.launcher import inside_container

    if inside_container():
        # Images for --tracker mlflow get the client; this one was built for another tracker
        # (a rerun of a run tracked otherwise runs its recorded image).
        return UsageError(
            "--tracker mlflow needs MLflow, which this image's Aeromancy venv lacks "
            "(it was built for another tracker)",
            "run it with the tracker it was recorded with; `aeromancy run --tracker mlflow` "
            "builds an image with the MLflow client",
        )
    return UsageError(
        "--tracker mlflow needs MLflow, which is not installed",
        "install the extra: pip install 'aeromancy[mlflow]'",
    )


class MlflowTracker:
    """``--tracker mlflow``: task runs in the experiment named after the project.

    Raises UsageError (exit 2, before anything runs) when MLflow is not installed or
    ``MLFLOW_TRACKING_URI`` is not set.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        if not _mlflow_importable():
            raise _missing_mlflow()
        require_tracking_uri(env)
        for name, value in CLIENT_DEFAULTS.items():
            os.environ.setdefault(name, value)
        self.tracking_uri = env[TRACKING_URI_ENV]
        self._lock = threading.Lock()
        self._experiments: dict[str, str] = {}  # project -> experiment id
        self._parents: dict[tuple[str, str], str] = {}  # (project, invocation) -> run id
        self._failed_parents: set[str] = set()
        self._stopped: Exception | None = None
        self._client: Any = None
        self._warm_up = threading.Thread(target=self._import, name="aeromancy-mlflow-warm-up")
        self._warm_up.daemon = True  # never delays the exit of a run that tracked nothing
        self._import_error: Exception | None = None
        self._warm_up.start()

    def _import(self) -> None:
        # Importing mlflow takes seconds; it runs while the graph is loaded and planned.
        try:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        except Exception as exc:
            self._import_error = exc

    def client(self) -> Any:
        """Return the MlflowClient once mlflow is imported; raise what importing raised."""
        self._warm_up.join()
        if self._import_error is not None:
            raise self._import_error
        return self._client

    def start(self, info: TaskRunInfo) -> MlflowRun:
        """Create the MLflow run of ``info`` (and its experiment and parent run if new)."""
        if self._stopped is not None:
            raise RuntimeError(f"MLflow is not used after an earlier failure: {self._stopped}")
        try:
            client = self.client()
            experiment_id = self._experiment(client, info.project)
            parent = self._parent(client, experiment_id, info) if info.group else None
            created = client.create_run(
                experiment_id,
                start_time=_now_ms(),
                tags=run_tags(info, parent),
                run_name=f"{info.task}-{info.run_id}",
            )
        except Exception as exc:
            # No server, bad credentials: later task runs would only wait for the same
            # timeouts, so stop using MLflow for the rest of this invocation.
            self._stopped = exc
            raise
        run = MlflowRun(
            self, client, created.info.run_id, experiment_id=experiment_id, info=info, parent=parent
        )
        try:
            run.begin()
        except Exception:
            # Params or inputs refused: end the run rather than leave it RUNNING for ever.
            with contextlib.suppress(Exception):
                client.set_terminated(created.info.run_id, status="FAILED", end_time=_now_ms())
            raise
        return run

    def _experiment(self, client: Any, project: str) -> str:
        with self._lock:
            if project not in self._experiments:
                self._experiments[project] = _get_or_create_experiment(client, project)
            return self._experiments[project]

    def _parent(self, client: Any, experiment_id: str, info: TaskRunInfo) -> str:
        key = (info.project, info.group)
        with self._lock:
            if key not in self._parents:
                created = client.create_run(
                    experiment_id,
                    start_time=_now_ms(),
                    tags=parent_tags(info),
                    run_name=f"invocation-{info.group}",
                )
                self._parents[key] = created.info.run_id
            return self._parents[key]

    def ended(self, parent: str | None, succeeded: bool) -> None:
        """Note how a task run nested under ``parent`` ended (a failure fails the parent)."""
        if parent is not None and not succeeded:
            with self._lock:
                self._failed_parents.add(parent)

    def close(self) -> None:
        """Finish each parent run: FINISHED, or FAILED when one of its task runs failed."""
        with self._lock:
            parents = list(self._parents.values())
            self._parents.clear()
        for parent in parents:
            status = "FAILED" if parent in self._failed_parents else "FINISHED"
            self._client.set_terminated(parent, status=status, end_time=_now_ms())


class MlflowRun:
    """One task run in MLflow. Methods may raise; the TrackerGuard turns that into a warning."""

    def __init__(
        self,
        tracker: MlflowTracker,
        client: Any,
        run_id: str,
        *,
        experiment_id: str,
        info: TaskRunInfo,
        parent: str | None,
    ) -> None:
        self._tracker = tracker
        self._client = client
        self.run_id = run_id
        self._experiment_id = experiment_id
        self._info = info
        self._parent = parent
        self._pending: list[Any] = []  # buffered mlflow Metric entities
        self._next_step = 0
        self._flushed = time.monotonic()
        self._lock = threading.Lock()

    @property
    def path(self) -> str | None:
        """Return ``mlflow:<experiment id>/<run id>``."""
        return f"{PATH_PREFIX}{self._experiment_id}/{self.run_id}"

    def begin(self) -> None:
        """Log the flattened config as params and the inputs as datasets."""
        from mlflow.entities import Param

        params = [Param(key, value) for key, value in flatten_params(self._info.config).items()]
        for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=chunk)
        if self._info.inputs:
            self._client.log_inputs(self.run_id, datasets=dataset_inputs(self._info.inputs))

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer the numeric ``metrics`` at ``step`` (else the step after the last one)."""
        from mlflow.entities import Metric

        with self._lock:
            step = self._next_step if step is None else step
            self._next_step = step + 1
            stamp = _now_ms()
            self._pending += [
                Metric(mlflow_key(key), float(value), stamp, step)
                for key, value in metrics.items()
                if _is_number(value)
            ]
            due = time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due or len(self._pending) >= MAX_METRICS_PER_BATCH:
            self.flush()

    def flush(self) -> None:
        """Send the buffered metrics."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._flushed = time.monotonic()
        for chunk in _chunks(pending, MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=chunk)

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        """Log each output as a JSON artifact referencing its store blobs, and tag its version."""
        from mlflow.entities import RunTag

        for version in outputs:
            document = output_reference(version, blob_uris)
            self._client.log_dict(self.run_id, document, f"{OUTPUTS_DIR}/{version.name}.json")
        tags = [RunTag(f"aeromancy.output.{v.name}", v.label) for v in outputs]
        self._client.log_batch(self.run_id, tags=tags)

    def attach_log(self, path: Path) -> None:
        """Attach the task's captured stdout and stderr (artifact ``aeromancy/<file name>``)."""
        self._client.log_artifact(self.run_id, str(path), OUTPUT_ARTIFACT_DIR)

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        """Send the metrics, attach the record and environment, then end the run."""
        try:
            self.flush()
            environment = record.get("environment") or capture_environment(self._info.identity)
            self._client.log_dict(self.run_id, dict(record), RECORD_ARTIFACT)
            self._client.log_dict(self.run_id, dict(environment), ENVIRONMENT_ARTIFACT)
        finally:
            self._tracker.ended(self._parent, succeeded)
            status = "FINISHED" if succeeded else "FAILED"
            self._client.set_terminated(self.run_id, status=status, end_time=_now_ms())


def _get_or_create_experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name, tags={"aeromancy.project": name}))
    except Exception:
        # Another process created it in between.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def identity_tags(info: TaskRunInfo) -> dict[str, str]:
    """Return the tags shared by a task run and its parent: git, image, invocation."""
    identity = info.identity
    tags = {
        "mlflow.source.git.commit": identity.git_commit,
        "mlflow.source.git.branch": identity.git_branch,
        "mlflow.source.git.repoURL": redact_url(identity.git_remote),
        "aeromancy.image_id": identity.image_id,
        "aeromancy.invocation": info.group,
        "aeromancy.version": aeromancy_version(),
    }
    return {key: value for key, value in tags.items() if value}


def parent_tags(info: TaskRunInfo) -> dict[str, str]:
    """Return the tags of an invocation's parent run."""
    return {**identity_tags(info), "aeromancy.kind": "invocation"}


def run_tags(info: TaskRunInfo, parent: str | None) -> dict[str, str]:
    """Return the tags of a task run: identity, run id, task, ``--tags``, note, parent."""
    tags = {
        **identity_tags(info),
        "aeromancy.kind": "task",
        "aeromancy.run_id": info.run_id,
        "aeromancy.task": info.task,
        "aeromancy.git_dirty": str(info.identity.git_dirty).lower(),
    }
    if info.tags:
        tags["aeromancy.tags"] = ",".join(info.tags)
    message = info.identity.git_message.strip().splitlines()
    if message:
        tags["mlflow.note.content"] = message[0]
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    return tags


def mlflow_key(name: str) -> str:
    """Return ``name`` with each character MLflow refuses in a param or metric key as '_'."""
    return KEY_BAD.sub("_", name)


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return ``config`` as MLflow params: nested keys joined by '.', values as text.

    Strings are kept as they are; other values are JSON (``0.01``, ``true``, ``[1, 2]``).
    Characters MLflow refuses in a key become '_'.
    """
    params: dict[str, str] = {}
    for key, value in config.items():
        name = mlflow_key(f"{prefix}{key}")
        if isinstance(value, Mapping) and value:
            params.update(flatten_params(value, f"{name}."))
        else:
            params[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return params


def dataset_inputs(inputs: Sequence[ArtifactVersion]) -> list[Any]:
    """Return one MLflow DatasetInput per input version: name, version, digest, context."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    datasets = []
    for version in inputs:
        dataset = Dataset(
            name=version.name,
            digest=version.digest.removeprefix("sha256:")[:DIGEST_CHARS],
            source_type="aeromancy",
            source=json.dumps({"ref": version.ref, "project": version.project}),
            profile=json.dumps(dataset_profile(version)),
        )
        tags = [
            InputTag("mlflow.data.context", INPUT_CONTEXT),
            InputTag("aeromancy.version", version.label),
            InputTag("aeromancy.ref", version.ref),
        ]
        datasets.append(DatasetInput(dataset, tags=tags))
    return datasets


def dataset_profile(version: ArtifactVersion) -> dict[str, Any]:
    """Return what the dataset's profile says of an input version."""
    return {
        "ref": version.ref,
        "version": version.label,
        "type": version.type,
        "digest": version.digest,
        "files": len(version.files),
        "size": version.size,
        "producer_run_id": version.run_id,
    }


def output_reference(version: ArtifactVersion, blob_uris: Mapping[str, str]) -> dict[str, Any]:
    """Return the JSON artifact standing for an output: its files as store URIs, no copies.

    Raises KeyError naming the blob when ``blob_uris`` lacks one of the version's files.
    """
    files = []
    for entry in version.files:
        try:
            uri = blob_uris[entry.sha256]
        except KeyError:
            raise KeyError(f"no store URI for blob {entry.sha256} of {version.ref}") from None
        files.append({"path": entry.path, "size": entry.size, "sha256": entry.sha256, "uri": uri})
    return {
        "ref": version.ref,
        "name": version.name,
        "version": version.label,
        "type": version.type,
        "digest": version.digest,
        "metadata": version.metadata,
        "producer_run_id": version.run_id,
        "files": files,
    }


def _is_number(value: Any) -> bool:
    # MLflow metrics are numbers; text logged with ctx.log stays in the run record only.
    return isinstance(value, numbers.Real)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now_ms() -> int:
    return int(time.time() * 1000)
