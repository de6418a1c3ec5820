"""A real Dask cluster of the project's image: ``aeromancy cluster up`` on the Docker
engine, then tracked runs with ``--cluster``.

One cluster (scheduler and two workers as containers) per store kind: a directory
mounted into every container (the cluster on a Docker network of its own), and the
loopback S3 server (the cluster on the host's network, as tracked runs reach it).
Outputs and records are compared with a tracked local run's; the fault test kills a
worker container while a task sleeps in it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import docker
import pytest

from aeromancy.cluster.containers import CLUSTER_LABEL, container_name
from aeromancy.store import Store, open_store

from .conftest import launcher

pytestmark = pytest.mark.docker

PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context, rows: int = 4) -> None:
    out = ctx.workdir / "raw.txt"
    out.write_text("\\n".join(str(i) for i in range(rows)))
    ctx.save("raw", out)


@task(inputs=["raw"], outputs=["left"])
def left(ctx: Context, scale: int = 1) -> None:
    time.sleep(1)
    out = ctx.workdir / "left.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text().upper() * scale)
    ctx.save("left", out)


@task(inputs=["raw"], outputs=["right"])
def right(ctx: Context, shift: int = 0) -> None:
    time.sleep(1)
    out = ctx.workdir / "right.txt"
    out.write_text((ctx.load("raw") / "raw.txt").read_text()[::-1] + str(shift))
    ctx.save("right", out)


@task(inputs=["left", "right"], outputs=["joined"])
def join(ctx: Context) -> None:
    out = ctx.workdir / "joined.txt"
    left = (ctx.load("left") / "left.txt").read_text()
    out.write_text(left + (ctx.load("right") / "right.txt").read_text())
    ctx.save("joined", out)


@task(outputs=["nap"])
def nap(ctx: Context, seconds: float = 0.0) -> None:
    print("napping", flush=True)
    time.sleep(seconds)
    out = ctx.workdir / "nap.txt"
    out.write_text(f"slept {seconds}")
    ctx.save("nap", out)
"""
DIAMOND = ["ingest", "left", "right", "join"]
SWEEP = ["--sweep", "left.scale=1,2", "--sweep", "right.shift=0,1,2,3"]
ADDRESS = re.compile(r"^scheduler (tcp://\S+)$", re.MULTILINE)


@dataclass
class Cluster:
    """A project, its cluster and the environment its commands run with."""

    root: Path
    name: str
    address: str
    env: dict[str, str]
    store_url: str
    local_store_url: str

    def aeromancy(self, *args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "AEROMANCY_STORE": store or self.store_url}
        return subprocess.run(
            [aeromancy_cli(), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**self.env, "AEROMANCY_STORE": self.store_url}
        return subprocess.Popen(
            [aeromancy_cli(), *args],
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def store(self, url: str | None = None) -> Store:
        if "AWS_ENDPOINT_URL" in self.env:  # the autouse fixture resets it for each test
            os.environ["AWS_ENDPOINT_URL"] = self.env["AWS_ENDPOINT_URL"]
        return open_store(url or self.store_url)

    def worker_hosts(self) -> dict[str, str]:
        """Return {container hostname: container name} of the workers up now (on the
        host's network every container has the host's name)."""
        found = docker.from_env().containers.list(filters={"label": f"{CLUSTER_LABEL}={self.name}"})
        return {c.attrs["Config"]["Hostname"]: c.name for c in found if "worker" in (c.name or "")}


def aeromancy_cli() -> str:
    return str(Path(sys.executable).with_name("aeromancy"))


def command_env(home: Path, launcher_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEROMANCY_", "AWS_"))}
    env.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_DATA_HOME": str(home / "data"),
            "AEROMANCY_CACHE": str(home / "aeromancy-cache"),
            "AEROMANCY_LAUNCHER_CACHE": str(launcher_cache),
            "AEROMANCY_STORE_IMAGES": "0",
            "PDM_CACHE_DIR": str(launcher_cache / "pdm-cache"),
            "COLUMNS": "250",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return env


def make_project(root: Path, base_image: str) -> None:
    root.mkdir(parents=True)
    extra = 'tracker = "none"\n'
    (root / "pyproject.toml").write_text(
        launcher.PYPROJECT.format(
            name="clusterdemo",
            dependencies="",
            requires_python=">=3.10",
            base_image=base_image,
            extra=extra,
        )
    )
    (root / "pipeline.py").write_text(PIPELINE)
    (root / ".gitignore").write_text(launcher.GITIGNORE)
    (root / "nonce.txt").write_text(uuid.uuid4().hex)
    launcher.pdm_lock(root)
    launcher.run_git(root, "init", "-q", "-b", "main")
    launcher.commit_all(root, "initial")


@pytest.fixture(scope="module", params=["directory", "s3"])
def cluster(
    request: pytest.FixtureRequest, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A committed project and its cluster (two workers), on each kind of store."""
    scratch = tmp_path_factory.mktemp("cluster")
    env = command_env(scratch / "home", tmp_path_factory.getbasetemp() / "launcher-cache")
    if request.param == "s3":
        endpoint = str(request.getfixturevalue("s3_server"))
        env["AWS_ENDPOINT_URL"] = endpoint
        s3 = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("s3", endpoint_url=endpoint)
        buckets = [f"cluster-{uuid.uuid4().hex[:12]}" for _ in range(2)]
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        store_url, local_url = (f"s3://{bucket}/store" for bucket in buckets)
    else:
        store_url, local_url = str(scratch / "store"), str(scratch / "local-store")
    root = scratch / "clusterdemo"
    make_project(root, base_image)
    name = f"test-{uuid.uuid4().hex[:8]}"
    found = Cluster(root, name, "", env, store_url, local_url)
    up = found.aeromancy("cluster", "up", "--workers", "2", "--name", name)
    try:
        assert up.returncode == 0, up.stderr
        match = ADDRESS.search(up.stdout)
        assert match is not None, up.stdout
        found.address = match.group(1)
        yield found
    finally:
        down = found.aeromancy("cluster", "down", "--name", name)
        assert down.returncode == 0, down.stderr
        assert not docker.from_env().containers.list(
            all=True, filters={"label": f"{CLUSTER_LABEL}={name}"}
        )


def digests_by_run(store: Store) -> dict[tuple[str, str], list[str]]:
    """Return {(task, variant label): output digests} over every successful record."""
    found = {}
    for record in store.list_run_records("clusterdemo"):
        if record["status"] == "succeeded":
            label = (record.get("variant") or {}).get("label", "")
            found[(record["task"], label)] = [o["digest"] for o in record["outputs"]]
    return found


def contents(store: Store) -> dict[str, set[str]]:
    """Return {artifact: the digests of its versions}."""
    return {
        name: {v.digest for v in store.list_versions("clusterdemo", name)}
        for name in ("raw", "left", "right", "joined")
    }


def test_diamond_on_the_cluster_matches_a_local_run_and_uses_both_workers(
    cluster: Cluster,
) -> None:
    ran = cluster.aeromancy("run", "--cluster", cluster.address, "--only", ",".join(DIAMOND))
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert "cluster " + cluster.address + ": 2 workers, 2 threads" in ran.stderr
    placed = dict(re.findall(r"^(\w+) started on (worker-[12])$", ran.stderr, re.MULTILINE))
    assert sorted(placed) == sorted(DIAMOND), ran.stderr
    assert set(placed.values()) == {"worker-1", "worker-2"}, ran.stderr  # left and right
    local = cluster.aeromancy("run", "--only", ",".join(DIAMOND), store=cluster.local_store_url)
    assert local.returncode == 0, local.stderr
    on_cluster = digests_by_run(cluster.store())
    assert on_cluster == digests_by_run(cluster.store(cluster.local_store_url))
    records = cluster.store().list_run_records("clusterdemo")
    assert sorted(r["task"] for r in records) == sorted(DIAMOND)
    hosts = cluster.worker_hosts()
    assert {r["environment"]["host"] for r in records} == set(hosts), hosts
    # Up to date: skipped on the host, nothing submitted.
    again = cluster.aeromancy("run", "--cluster", cluster.address, "--only", ",".join(DIAMOND))
    assert again.returncode == 0, again.stderr
    assert "started on" not in again.stderr
    assert again.stdout.count("skipped") == len(DIAMOND)


def test_a_2x4_sweep_matches_a_local_run(cluster: Cluster) -> None:
    only = ["--only", ",".join(DIAMOND)]
    ran = cluster.aeromancy("run", "--cluster", cluster.address, *only, *SWEEP)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    local = cluster.aeromancy("run", *only, *SWEEP, "-j", "2", store=cluster.local_store_url)
    assert local.returncode == 0, local.stderr
    # Which variant runs a shared config first (and which reuse it) depends on timing,
    # so the stores are compared by the contents each artifact holds.
    on_cluster = contents(cluster.store())
    assert len(on_cluster["joined"]) == 8  # every scale x shift
    assert on_cluster == contents(cluster.store(cluster.local_store_url))
    hosts = {r["environment"]["host"] for r in cluster.store().list_run_records("clusterdemo")}
    assert hosts == set(cluster.worker_hosts())


def test_a_new_commit_runs_on_the_cluster_without_a_restart(cluster: Cluster) -> None:
    """The workers' /app holds the commit they were started from; a task of a later
    commit runs from that commit's code package, fetched by the worker."""
    pipeline = cluster.root / "pipeline.py"
    original = pipeline.read_text()
    pipeline.write_text(
        original + "\n\n@task(outputs=['fresh'])\ndef fresh(ctx: Context) -> None:\n"
        "    out = ctx.workdir / 'fresh.txt'\n    out.write_text('from the new commit')\n"
        "    ctx.save('fresh', out)\n"
    )
    launcher.commit_all(cluster.root, "add fresh")
    try:
        ran = cluster.aeromancy("run", "--cluster", cluster.address, "--only", "fresh")
        assert ran.returncode == 0, ran.stderr + ran.stdout
        assert re.search(r"^fresh started on worker-[12]$", ran.stderr, re.MULTILINE)
        [version] = cluster.store().list_versions("clusterdemo", "fresh")
        [record] = [
            r for r in cluster.store().list_run_records("clusterdemo") if r["task"] == "fresh"
        ]
        assert record["run_id"] == version.run_id
    finally:
        pipeline.write_text(original)
        launcher.commit_all(cluster.root, "remove fresh")


def test_a_second_cluster_of_the_same_name_is_refused(cluster: Cluster) -> None:
    again = cluster.aeromancy("cluster", "up", "--name", cluster.name)
    assert again.returncode == 2
    assert f"cluster {cluster.name} is up already" in again.stderr
    workers = docker.from_env().containers.list(
        filters={"label": [f"{CLUSTER_LABEL}={cluster.name}", "aeromancy.cluster.role"]}
    )
    assert len([c for c in workers if "worker" in (c.name or "")]) == 2


def test_a_worker_of_another_environment_image_is_refused(cluster: Cluster) -> None:
    if cluster.store_url.startswith("s3://"):
        pytest.skip("checked on the directory store's cluster (its own network)")
    engine = docker.from_env()
    scheduler = engine.containers.get(container_name(cluster.name, "scheduler"))
    image = scheduler.image.id if scheduler.image is not None else ""
    other = "sha256:" + "0" * 64
    inner = f"tcp://{container_name(cluster.name, 'scheduler')}:8786"
    rogue = engine.containers.run(
        image,
        ["/opt/aeromancy/venv/bin/dask", "worker", inner, "--name", "rogue"],
        name=container_name(cluster.name, "rogue"),
        labels={CLUSTER_LABEL: cluster.name},
        environment={
            "AEROMANCY_WORKER_ENVIRONMENT_IMAGE": other,
            "AEROMANCY_STORE": cluster.store_url,
        },
        volumes={cluster.store_url: {"bind": cluster.store_url, "mode": "rw"}},
        network=container_name(cluster.name, "network"),
        detach=True,
    )
    try:
        deadline = time.monotonic() + 60
        while b"Registered to" not in rogue.logs() and time.monotonic() < deadline:
            time.sleep(0.5)
        refused = cluster.aeromancy("run", "--cluster", cluster.address, "--only", "ingest")
        assert refused.returncode == 2, refused.stderr + refused.stdout
        lines = [line for line in refused.stderr.splitlines() if "error" in line]
        assert len(lines) == 1, refused.stderr
        assert "cluster refused: worker " in lines[0]
        assert f"runs environment image {'0' * 12}, this run's is " in lines[0]
        assert "started on" not in refused.stderr
    finally:
        rogue.remove(force=True)


def test_a_task_needing_resources_no_worker_has_is_refused_in_one_line(cluster: Cluster) -> None:
    if cluster.store_url.startswith("s3://"):
        pytest.skip("checked on the directory store's cluster (time)")
    args = ["--only", "nap", "--cluster-resources", "GPU=1"]
    refused = cluster.aeromancy("run", "--cluster", cluster.address, *args)
    assert refused.returncode == 2, refused.stderr + refused.stdout
    lines = [line for line in refused.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, refused.stderr
    assert (
        "cluster refused: task nap needs worker resources GPU=1; its workers offer none"
        in (lines[0])
    )
    assert "started on" not in refused.stderr


def test_cluster_up_with_resources_runs_tasks_that_need_them(cluster: Cluster) -> None:
    """`cluster up --resources GPU=1` starts workers that advertise it; a run with
    `--cluster-resources GPU=1` runs there and its record says so."""
    if cluster.store_url.startswith("s3://"):
        pytest.skip("checked on the directory store's cluster (time)")
    name = f"{cluster.name}-gpu"
    up = cluster.aeromancy(
        "cluster", "up", "--workers", "1", "--resources", "GPU=1", "--name", name
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "(each with GPU=1)" in up.stderr
        match = ADDRESS.search(up.stdout)
        assert match is not None, up.stdout
        args = ["--only", "ingest", "--set", "ingest.rows=11", "--cluster-resources", "GPU=1"]
        ran = cluster.aeromancy("run", "--cluster", match.group(1), *args)
        assert ran.returncode == 0, ran.stderr + ran.stdout
        assert re.search(r"^ingest started on worker-1$", ran.stderr, re.MULTILINE), ran.stderr
        [record] = [
            r
            for r in cluster.store().list_run_records("clusterdemo")
            if r["config"] == {"rows": 11}
        ]
        assert record["worker_resources"] == {"GPU": 1.0}
    finally:
        down = cluster.aeromancy("cluster", "down", "--name", name)
        assert down.returncode == 0, down.stderr


def test_ctrl_c_stops_the_task_on_its_worker_and_keeps_nothing(cluster: Cluster) -> None:
    """A real SIGINT to `aeromancy run --cluster` while the task sleeps on a worker: the
    run exits 130 at once and the task's process on the worker is killed, so it never
    publishes (it would 8 s after it started) nor writes a record."""
    if cluster.store_url.startswith("s3://"):
        pytest.skip("checked on the directory store's cluster (time)")
    seconds = 8.25
    run = cluster.popen(
        "run", "--cluster", cluster.address, "--only", "nap", "--set", f"nap.seconds={seconds}"
    )
    assert run.stderr is not None
    line = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "nap started on" not in line:
        line = run.stderr.readline()
        assert line or run.poll() is None, "the run ended before nap started"
    started = time.monotonic()
    time.sleep(1.5)  # the task is asleep in its child on that worker now
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, line + err + out
    assert time.monotonic() - started < seconds, "the run waited for the task to end"
    time.sleep(max(0.0, started + seconds + 4 - time.monotonic()))  # past its end
    store = cluster.store()
    assert store.list_versions("clusterdemo", "nap") == []
    assert [r for r in store.list_run_records("clusterdemo") if r["task"] == "nap"] == []


def docs_recipe() -> list[list[str]]:
    """Return the commands of docs/clusters.md's "Workers on real nodes" block, split."""
    text = (Path(__file__).parents[2] / "docs" / "clusters.md").read_text()
    section = text.split("## Workers on real nodes", 1)[1]
    block = section.split("```\n", 2)[1]
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line]


def test_the_docs_recipe_for_workers_started_by_hand_runs_a_task(cluster: Cluster) -> None:
    """Follow docs/clusters.md: a scheduler and a worker by `docker run IMAGE dask ...`,
    then `aeromancy run --cluster`. Only names, ports, hosts and a label are substituted."""
    if cluster.store_url.startswith("s3://"):
        pytest.skip("the recipe mounts a directory store")
    engine = docker.from_env()
    scheduler = engine.containers.get(container_name(cluster.name, "scheduler"))
    image = str(scheduler.image.id or "") if scheduler.image is not None else ""
    port, dashboard = free_port(), free_port()
    label = f"aeromancy.test.docs={uuid.uuid4().hex[:8]}"
    replacements = {
        "IMAGE": image,
        "8786": str(port),
        ":8787": f"127.0.0.1:{dashboard}",
        "tcp://SCHEDULER-HOST:8786": f"tcp://127.0.0.1:{port}",
        "NODE-HOST": "127.0.0.1",
        "aeromancy-scheduler": f"{cluster.name}-docs-scheduler",
        "aeromancy-worker": f"{cluster.name}-docs-worker",
    }
    start_scheduler, start_worker, run_it = (
        [replacements.get(arg, arg).replace("/shared/store", cluster.store_url) for arg in argv]
        for argv in docs_recipe()
    )
    assert start_scheduler[:3] == ["docker", "run", "-d"] == start_worker[:3]
    assert run_it[:3] == ["aeromancy", "run", "--cluster"]
    try:
        started = []
        for argv in (start_scheduler, start_worker):
            done = subprocess.run(
                [*argv[:2], "--label", label, *argv[2:]], check=True, capture_output=True
            )
            started.append(engine.containers.get(done.stdout.decode().strip()))
        # As one would by hand: wait until the worker says it joined.
        deadline = time.monotonic() + 120
        while b"Registered to" not in started[1].logs() and time.monotonic() < deadline:
            time.sleep(0.5)
        logs = b"".join(c.logs()[-2000:] for c in started).decode(errors="replace")
        assert b"Registered to" in started[1].logs(), logs
        ran = cluster.aeromancy(*run_it[1:], "--only", "ingest", "--set", "ingest.rows=9")
        assert ran.returncode == 0, ran.stderr + ran.stdout
        assert f"cluster tcp://127.0.0.1:{port}: 1 workers, 4 threads" in ran.stderr
        assert re.search(r"^ingest started on tcp://", ran.stderr, re.MULTILINE), ran.stderr
        [record] = [
            r for r in cluster.store().list_run_records("clusterdemo") if r["config"] == {"rows": 9}
        ]
        assert record["status"] == "succeeded"
    finally:
        for found in engine.containers.list(all=True, filters={"label": label}):
            found.remove(force=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_killed_mid_task_has_its_task_run_again_once(cluster: Cluster) -> None:
    run = cluster.popen(
        "run", "--cluster", cluster.address, "--only", "nap", "--set", "nap.seconds=15"
    )
    assert run.stderr is not None
    line = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "nap started on" not in line:
        line = run.stderr.readline()
        assert line or run.poll() is None, "the run ended before nap started"
    victim = line.strip().rsplit(" ", 1)[-1]
    time.sleep(3)  # the task is asleep in its child on that worker now
    docker.from_env().containers.get(container_name(cluster.name, victim)).kill()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, line + err + out
    assert re.search(r"nap started on worker-[12]$", err, re.MULTILINE), err
    store = cluster.store()
    [version] = store.list_versions("clusterdemo", "nap")
    records = [r for r in store.list_run_records("clusterdemo") if r["task"] == "nap"]
    assert [r["run_id"] for r in records] == [version.run_id]
    assert records[0]["config"] == {"seconds": 15.0}
