"""Running the graph in the image: ``docker run`` with the store, cache and identity.

Secrets (credentials, ``--extra-env-var``, ``env_passthrough``) reach the container
through an env file readable only by the user and deleted when the container ends;
they are never on a command line, in the image, or in a run record. A value with a
newline, which env files cannot hold, is passed by name (``-e NAME``) from the docker
client's own environment instead, which keeps it off the command line as well.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import docker.errors

from aeromancy.errors import InfrastructureError, UsageError
from aeromancy.identity import RunIdentity
from aeromancy.launcher import IN_CONTAINER_ENV, INVOCATION_ENV
from aeromancy.launcher.engine import docker_client
from aeromancy.leftovers import abandoned, owner
from aeromancy.run_options import RunOptions
from aeromancy.settings import CACHE_ENV, STORE_ENV, Settings, default_cache_dir
from aeromancy.tracking.wandb_setup import (
    CONTAINER_WANDB_DIR,
    RUNS_DIRNAME,
    prepare_runs_dir,
    resolve_mode,
    runs_dir,
)

# Passed through when set on the host: boto3's, W&B's and MLflow's standard variables.
CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "WANDB_API_KEY",
    "WANDB_MODE",
    "WANDB_ENTITY",
    "WANDB_BASE_URL",
    "WANDB_DIR",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
)
CONTAINER_ROOT = "/app"  # where the image holds the project (WORKDIR of the template)
STOP_GRACE_SECONDS = 10
#: Every container carries its launcher's owner tag (``<pid>@<host>@``): a later run
#: stops the containers of launchers that were killed (by label, never by name).
LAUNCHER_LABEL = "aeromancy.launcher"
ENV_DIR_PREFIX = "aeromancy-env-"
DOCKER_RUN_FAILURES = (125, 126, 127)  # docker's own codes: daemon error, cannot exec, no cmd


@dataclass(frozen=True)
class ContainerSpec:
    """What one ``docker run`` needs besides the secrets it reads from the environment."""

    image_id: str
    settings: Settings
    options: RunOptions
    identity: RunIdentity
    invocation: str
    code_dir: Path | None = None  # the materialized code package, mounted read-only at /app

    @property
    def name(self) -> str:
        """Return the container name, unique per invocation."""
        return f"aeromancy-{self.invocation}"


def new_invocation_id() -> str:
    """Return a fresh id for one ``aeromancy run`` invocation."""
    return uuid.uuid4().hex[:16]


def run_container(spec: ContainerSpec, environ: Mapping[str, str] | None = None) -> int:
    """Run ``spec`` to completion and return its exit code (130 after Ctrl-C)."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise InfrastructureError("the docker command is not on PATH", "install the Docker CLI")
    host_env = dict(os.environ if environ is None else environ)
    stop_abandoned_containers()
    values = container_environment(spec, host_env)
    single = {name: value for name, value in values.items() if "\n" not in value}
    by_name = {name: value for name, value in values.items() if "\n" in value}
    with secret_env_file(single) as env_file:
        argv = [docker_cli, *docker_run_args(spec, env_file, sorted(by_name), host_env)]
        return _wait(argv, {**host_env, **by_name}, spec.name, env_file)


def container_environment(spec: ContainerSpec, host_env: Mapping[str, str]) -> dict[str, str]:
    """Return every variable the container gets; raise UsageError for an unset extra var."""
    values = {
        IN_CONTAINER_ENV: "1",
        INVOCATION_ENV: spec.invocation,
        STORE_ENV: store_for_container(spec.settings.store),
        CACHE_ENV: str(cache_dir()),
        **spec.identity.to_environ(),
    }
    if os.getuid() != 0:
        values["HOME"] = "/tmp"
    if wandb_runs_mount(spec, host_env) is not None and not host_env.get("WANDB_DIR"):
        values["WANDB_DIR"] = CONTAINER_WANDB_DIR
    passthrough = (*CREDENTIAL_VARS, *spec.settings.env_passthrough)
    values.update({name: host_env[name] for name in passthrough if name in host_env})
    check_extra_env_vars(spec.options, host_env)
    values.update({name: host_env[name] for name in spec.options.extra_env_vars})
    return values


def check_extra_env_vars(options: RunOptions, host_env: Mapping[str, str]) -> None:
    """Raise UsageError naming the first ``--extra-env-var`` that is not set on the host."""
    for name in options.extra_env_vars:
        if name not in host_env:
            raise UsageError(
                f"--extra-env-var {name}: {name} is not set here", f"export {name}=... first"
            )


def docker_run_args(
    spec: ContainerSpec, env_file: Path, by_name: Sequence[str], host_env: Mapping[str, str]
) -> list[str]:
    """Return the ``docker run`` arguments (no secret values: they are in ``env_file``)."""
    args = ["run", "--rm", "--init", "--name", spec.name, "--env-file", str(env_file)]
    for name in by_name:
        args += ["-e", name]
    if spec.options.debug_shell:
        args += ["-i", "-t"] if sys.stdin.isatty() else ["-i"]
    elif sys.stdout.isatty():
        args.append("-t")
    for path in _mounts(spec.settings.store):
        args += ["-v", f"{path}:{path}"]
    if spec.code_dir is not None:
        args += ["-v", f"{spec.code_dir}:{CONTAINER_ROOT}:ro"]
    wandb_mount = wandb_runs_mount(spec, host_env)
    if wandb_mount is not None:
        args += ["-v", f"{wandb_mount[0]}:{wandb_mount[1]}"]
    tracker = spec.options.tracker_name
    if needs_host_network(spec.settings.store, host_env, tracker) or _loopback_cluster(
        spec.options
    ):
        args += ["--network", "host"]
    if os.getuid() != 0:
        args += ["--user", f"{os.getuid()}:{os.getgid()}"]
    args += ["--label", f"{LAUNCHER_LABEL}={owner()}"]  # who to ask whether it is orphaned
    args += [*spec.settings.docker_run_args, *shlex.split(spec.options.extra_docker_run_args)]
    args.append(spec.image_id)
    if spec.options.debug_shell:
        return [*args, "/bin/sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
    return [*args, "aeromancy", "run", *spec.options.to_argv()]


def local_store_path(store: str) -> Path | None:
    """Return the absolute directory of a local store, or None for a remote (s3://) one."""
    if store.startswith("file://"):
        return Path(urlparse(store).path)
    if "://" in store:
        return None
    return Path(store).expanduser().resolve()


def store_for_container(store: str) -> str:
    """Return the store URL as the container sees it (local paths mounted at the same path)."""
    path = local_store_path(store)
    return store if path is None else str(path)


def cache_dir() -> Path:
    """Return the read cache directory, mounted into the container at the same path."""
    return default_cache_dir().expanduser().resolve()


def needs_host_network(store: str, host_env: Mapping[str, str], tracker: str = "none") -> bool:
    """Return True when the S3 endpoint, or with ``tracker`` mlflow the MLflow tracking
    server, is on the host's loopback (unreachable from the container's own network).
    """
    if tracker == "mlflow" and is_loopback_url(host_env.get("MLFLOW_TRACKING_URI", "")):
        return True
    if not store.startswith("s3://"):
        return False
    endpoint = host_env.get("AWS_ENDPOINT_URL_S3") or host_env.get("AWS_ENDPOINT_URL") or ""
    return is_loopback_url(endpoint)


def is_loopback_url(url: str) -> bool:
    """Return True when ``url`` names a host on the loopback (localhost, 127.0.0.0/8, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_cluster(options: RunOptions) -> bool:
    """Return True when the run's Dask scheduler is on the host's loopback."""
    from aeromancy.cluster.address import is_loopback

    return options.cluster is not None and is_loopback(options.cluster)


def wandb_runs_mount(spec: ContainerSpec, host_env: Mapping[str, str]) -> tuple[Path, Path] | None:
    """Return (host, container) paths of the W&B runs directory, or None without W&B.

    Offline W&B runs must outlive the container for ``aeromancy sync``: the host's runs
    directory (``$WANDB_DIR/wandb``, else ``<project>/wandb``, git-ignored) is mounted
    where W&B writes inside: the same path, else ``/aeromancy-wandb/wandb`` with
    ``WANDB_DIR=/aeromancy-wandb`` (not under /app, which is mounted read-only).
    """
    if spec.options.tracker_name != "wandb" or resolve_mode(host_env) == "disabled":
        return None
    host = runs_dir(spec.settings.root, host_env)
    prepare_runs_dir(host)
    inside = host if host_env.get("WANDB_DIR") else Path(CONTAINER_WANDB_DIR) / RUNS_DIRNAME
    return host, inside


def _mounts(store: str) -> list[Path]:
    paths = [cache_dir()]
    store_path = local_store_path(store)
    if store_path is not None:
        paths.append(store_path)
    for path in paths:
        # Created here, so Docker does not create them owned by root.
        path.mkdir(parents=True, exist_ok=True)
    return paths


@contextlib.contextmanager
def secret_env_file(values: Mapping[str, str]) -> Iterator[Path]:
    """Yield a 0600 env file (in a 0700 directory) holding ``values``; delete it on exit.

    The folder is named by its owner, so a later run removes it if this process was
    killed before it could (see :func:`stop_abandoned_containers`).
    """
    folder = tempfile.mkdtemp(prefix=f"{ENV_DIR_PREFIX}{owner()}-")
    try:
        path = Path(folder) / "env"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.writelines(f"{name}={value}\n" for name, value in values.items())
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(argv: list[str], env: Mapping[str, str], name: str, env_file: Path) -> int:
    """Run ``docker run``; drop the env file once the container exists; stop it on SIGTERM."""
    process = subprocess.Popen(argv, env=dict(env))
    try:
        with _terminate_as_interrupt():
            _remove_once_created(name, process, env_file)
            code = process.wait()
    except KeyboardInterrupt:
        _interrupt(name)
        process.wait()
        return 130
    if code in DOCKER_RUN_FAILURES:
        raise InfrastructureError(
            f"docker run could not start the container (exit {code})",
            "see Docker's message above; check docker_run_args and --extra-docker-run-args",
        )
    return code


def _remove_once_created(name: str, process: subprocess.Popen[bytes], env_file: Path) -> None:
    """Delete the env file as soon as the container exists (docker has read it by then)."""
    deadline = time.monotonic() + STOP_GRACE_SECONDS * 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            docker_client().containers.get(name)
            break
        except docker.errors.NotFound:
            time.sleep(0.1)
        except docker.errors.DockerException:
            break
    shutil.rmtree(env_file.parent, ignore_errors=True)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Make SIGTERM to the launcher stop the container as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_abandoned_containers() -> None:
    """Remove containers and env folders whose launcher (on this host) was killed."""
    for entry in Path(tempfile.gettempdir()).glob(f"{ENV_DIR_PREFIX}*"):
        with contextlib.suppress(OSError):
            if abandoned(entry.name, entry.stat().st_mtime):
                shutil.rmtree(entry, ignore_errors=True)
    try:
        found = docker_client().containers.list(filters={"label": LAUNCHER_LABEL})
    except docker.errors.DockerException:
        return
    for container in found:
        tag = str(container.labels.get(LAUNCHER_LABEL, ""))
        if abandoned(tag, time.time()):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)


def _interrupt(name: str) -> None:
    """Ask the container to stop like Ctrl-C would, force it after a grace period, and
    return once it is gone (``--rm`` removes it asynchronously).

    The task sees KeyboardInterrupt; a version is published manifest-last, so a run cut
    short leaves its blobs but never a half-published version.
    """
    try:
        container = docker_client().containers.get(name)
        container.kill(signal="SIGINT")
        container.wait(timeout=STOP_GRACE_SECONDS)
    except docker.errors.NotFound:
        return
    except Exception:  # the grace period ran out, or the engine hiccuped: force it
        with contextlib.suppress(docker.errors.DockerException):
            docker_client().containers.get(name).kill()
    _await_removal(name)


def _await_removal(name: str) -> None:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            docker_client().containers.get(name)
        except docker.errors.NotFound:
            return
        except docker.errors.DockerException:
            return
        time.sleep(0.2)
    try:
        docker_client().containers.get(name).remove(force=True)
    except docker.errors.DockerException:
        return
