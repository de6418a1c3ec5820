"""``aeromancy cluster up/down``: a Dask scheduler and workers as containers on this machine.

Every container runs the project's image (built or loaded as a tracked run would) with
Aeromancy's own ``dask`` (its runtime venv), so scheduler, workers and the run's client
agree on every version by construction. They sit on a Docker network of their own,
the scheduler's port and dashboard published on the host's loopback; when the store is
an S3 server on the host's loopback they use the host's network instead, as tracked
runs do. A directory store is mounted at the same path in every container.

Credentials (boto3's, W&B's, ``env_passthrough``) are handed to the engine as the
containers' environment when they are created: never in an image, a command line or
a log. Every container and the network carry the :data:`CLUSTER_LABEL` label naming
the cluster, which is how ``down`` (and tests) find them.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker.errors

from aeromancy.cluster.fit import ENVIRONMENT_IMAGE_ENV
from aeromancy.cluster.resources import as_options
from aeromancy.errors import InfrastructureError, UsageError
from aeromancy.launcher.container import (
    CONTAINER_ROOT,
    CREDENTIAL_VARS,
    local_store_path,
    needs_host_network,
    store_for_container,
)
from aeromancy.launcher.dockerfile import AEROMANCY_VENV
from aeromancy.launcher.engine import docker_client
from aeromancy.settings import STORE_ENV, Settings

if TYPE_CHECKING:
    from docker.models.containers import Container

CLUSTER_LABEL = "aeromancy.cluster"
ROLE_LABEL = "aeromancy.cluster.role"
ADDRESS_LABEL = "aeromancy.cluster.address"
DASHBOARD_LABEL = "aeromancy.cluster.dashboard"
DASK = f"{AEROMANCY_VENV}/bin/dask"
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
READY_TIMEOUT_S = 120.0
SATURATION_ENV = "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION"


@dataclass(frozen=True)
class ClusterPlan:
    """What ``cluster up`` starts: which image, how many workers, on which network."""

    name: str
    image_id: str
    environment_image_id: str
    workers: int
    threads: int
    host_network: bool
    code_dir: str = ""  # the commit's code package, mounted read-only at /app (the image has none)
    resources: Mapping[str, float] = field(default_factory=dict)  # each worker advertises them


@dataclass(frozen=True)
class RunningCluster:
    """A cluster that is up: the scheduler's address and dashboard as the host sees them."""

    name: str
    address: str
    dashboard: str
    workers: int


def container_name(cluster: str, role: str) -> str:
    """Return the name of one container of ``cluster`` (``scheduler``, ``worker-1``...)."""
    return f"aeromancy-cluster-{cluster}-{role}"


def start_cluster(
    plan: ClusterPlan, settings: Settings, environ: Mapping[str, str]
) -> RunningCluster:
    """Start the scheduler and workers of ``plan``; return once every worker has joined.

    Raises UsageError when a cluster of that name is up already, InfrastructureError when
    the engine fails or the workers do not join within :data:`READY_TIMEOUT_S`; a cluster
    that did not come up is removed again.
    """
    refuse_if_up(plan.name)
    try:
        running = _start(plan, settings, environ)
        _wait_ready(running)
    except BaseException:
        stop_cluster(plan.name)
        raise
    return running


def refuse_if_up(name: str) -> None:
    """Raise UsageError (exit 2) when a cluster called ``name`` has containers."""
    if find_containers(name):
        raise UsageError(
            f"cluster {name} is up already",
            f"`aeromancy cluster down --name {name}` first, or choose another --name",
        )


def _start(plan: ClusterPlan, settings: Settings, environ: Mapping[str, str]) -> RunningCluster:
    client = docker_client()
    labels = {CLUSTER_LABEL: plan.name}
    common = _common_options(plan, settings, environ)
    network = None if plan.host_network else _network(plan.name, labels)
    if plan.host_network:
        port, dash = _free_port(), _free_port()
        address, dashboard = f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{dash}/status"
        command = ["scheduler", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--dashboard-address", f"127.0.0.1:{dash}"]
        inner, ports = address, None
    else:
        command = ["scheduler", "--port", str(SCHEDULER_PORT)]
        command += ["--dashboard-address", f":{DASHBOARD_PORT}"]
        inner = f"tcp://{container_name(plan.name, 'scheduler')}:{SCHEDULER_PORT}"
        ports = {
            f"{SCHEDULER_PORT}/tcp": ("127.0.0.1", None),
            f"{DASHBOARD_PORT}/tcp": ("127.0.0.1", None),
        }
    # One task run per worker thread: Dask's default (1.1) queues a second long task
    # on a busy one-thread worker while another worker idles.
    environment = {**common["environment"], SATURATION_ENV: "1.0"}
    scheduler = _run(
        client,
        plan,
        "scheduler",
        [DASK, *command],
        {**common, "environment": environment},
        network=network,
        ports=ports,
    )
    if not plan.host_network:
        address, dashboard = _published(scheduler)
    for index in range(1, plan.workers + 1):
        role = f"worker-{index}"
        command = [DASK, "worker", inner, "--nthreads", str(plan.threads), "--name", role]
        command += ["--host", "127.0.0.1"] if plan.host_network else []
        command += worker_resource_args(plan.resources)
        _run(client, plan, role, command, common, network=network, address=address)
    return RunningCluster(plan.name, address, dashboard, plan.workers)


def worker_resource_args(resources: Mapping[str, float]) -> list[str]:
    """Return ``dask worker``'s ``--resources "GPU=1 MEMORY=2"`` arguments ([] for none)."""
    if not resources:
        return []
    return ["--resources", " ".join(as_options(resources))]


def _common_options(
    plan: ClusterPlan, settings: Settings, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return the create options every container of the cluster shares."""
    environment = {
        STORE_ENV: store_for_container(settings.store),
        ENVIRONMENT_IMAGE_ENV: plan.environment_image_id,
        "PYTHONUNBUFFERED": "1",
    }
    passthrough = (*CREDENTIAL_VARS, *settings.env_passthrough)
    environment.update({name: environ[name] for name in passthrough if name in environ})
    options: dict[str, Any] = {"environment": environment, "working_dir": CONTAINER_ROOT}
    store = local_store_path(settings.store)
    volumes: dict[str, dict[str, str]] = {}
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        volumes[str(store)] = {"bind": str(store), "mode": "rw"}
    if plan.code_dir:
        volumes[plan.code_dir] = {"bind": CONTAINER_ROOT, "mode": "ro"}
    if volumes:
        options["volumes"] = volumes
    if os.getuid() != 0:
        options["user"] = f"{os.getuid()}:{os.getgid()}"
        environment["HOME"] = "/tmp"
    if plan.host_network:
        options["network_mode"] = "host"
    return options


def _run(
    client: docker.DockerClient,
    plan: ClusterPlan,
    role: str,
    command: list[str],
    common: Mapping[str, Any],
    *,
    network: str | None,
    ports: Mapping[str, Any] | None = None,
    address: str = "",
) -> Container:
    labels = {CLUSTER_LABEL: plan.name, ROLE_LABEL: role, ADDRESS_LABEL: address}
    try:
        return client.containers.run(
            plan.image_id,
            command,
            name=container_name(plan.name, role),
            labels=labels,
            detach=True,
            init=True,
            network=network,
            ports=dict(ports) if ports else None,
            **common,
        )
    except docker.errors.DockerException as exc:
        raise InfrastructureError(
            f"could not start the cluster's {role} container ({_first_line(exc)})",
            "see `docker ps -a --filter label=aeromancy.cluster`",
        ) from exc


def _network(name: str, labels: Mapping[str, str]) -> str:
    network = container_name(name, "network")
    try:
        docker_client().networks.create(network, driver="bridge", labels=dict(labels))
    except docker.errors.DockerException as exc:
        raise InfrastructureError(f"could not create the Docker network {network} ({exc})") from exc
    return network


def _published(scheduler: Container) -> tuple[str, str]:
    """Return the scheduler's address and dashboard URL on the host's loopback."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scheduler.reload()
        ports = scheduler.attrs.get("NetworkSettings", {}).get("Ports") or {}
        port, dash = ports.get(f"{SCHEDULER_PORT}/tcp"), ports.get(f"{DASHBOARD_PORT}/tcp")
        if port and dash:
            address = f"tcp://127.0.0.1:{port[0]['HostPort']}"
            return address, f"http://127.0.0.1:{dash[0]['HostPort']}/status"
        time.sleep(0.2)
    raise InfrastructureError("the scheduler container published no port", "see `docker logs`")


def _wait_ready(running: RunningCluster) -> None:
    """Return once every worker has joined the scheduler."""
    from distributed import Client
    from distributed.versions import VersionMismatchWarning

    # This client runs on the host, outside the image: its versions may differ.
    warnings.filterwarnings("ignore", category=VersionMismatchWarning)
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            with Client(running.address, timeout=10, set_as_default=False) as client:
                client.wait_for_workers(
                    running.workers, timeout=max(1, deadline - time.monotonic())
                )
                return
        except (OSError, TimeoutError) as exc:
            last = exc
            time.sleep(1)
    raise InfrastructureError(
        f"the cluster's {running.workers} workers did not join the scheduler at "
        f"{running.address} within {READY_TIMEOUT_S:.0f} s ({last})",
        "see `docker logs` of its containers",
    )


def find_containers(name: str) -> list[Container]:
    """Return the containers of cluster ``name`` (running or not)."""
    try:
        found: list[Container] = docker_client().containers.list(
            all=True, filters={"label": f"{CLUSTER_LABEL}={name}"}
        )
    except docker.errors.DockerException as exc:
        raise InfrastructureError(f"the Docker engine failed ({_first_line(exc)})") from exc
    return found


def describe(name: str) -> RunningCluster | None:
    """Return the address and size of cluster ``name`` when it is up, else None."""
    found = find_containers(name)
    workers = [c for c in found if str(c.labels.get(ROLE_LABEL, "")).startswith("worker")]
    if not workers:
        return None
    address = str(workers[0].labels.get(ADDRESS_LABEL, ""))
    return RunningCluster(name, address, "", len(workers))


def stop_cluster(name: str) -> int:
    """Remove every container and the network of cluster ``name``; return how many
    containers were removed (0 when none was up)."""
    removed = 0
    for container in find_containers(name):
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as exc:
            raise InfrastructureError(f"could not remove {container.name} ({exc})") from exc
    try:
        networks = docker_client().networks.list(filters={"label": f"{CLUSTER_LABEL}={name}"})
        for network in networks:
            network.remove()
    except docker.errors.DockerException as exc:
        raise InfrastructureError(
            f"could not remove the network of cluster {name} ({exc})"
        ) from exc
    return removed


def uses_host_network(settings: Settings, environ: Mapping[str, str]) -> bool:
    """Return True when the cluster must use the host's network to reach the store."""
    return needs_host_network(settings.store, environ)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
