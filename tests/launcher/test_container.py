"""Tracked runs end to end: the real CLI, the real Docker engine, real git, a real store."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from aeromancy.store import open_store

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")

DEBIAN_PIPELINE = """\
import subprocess

from aeromancy import Context, task


@task(outputs=["greeting"])
def greet(ctx: Context) -> None:
    out = ctx.workdir / "greeting.txt"
    out.write_text(subprocess.run(["hello"], capture_output=True, text=True, check=True).stdout)
    ctx.save("greeting", out)
"""

SECRET_PIPELINE = """\
import hashlib
import logging
import os

from aeromancy import Context, task


@task(outputs=["proof"])
def prove(ctx: Context) -> None:
    secret = os.environ["AEROMANCY_TEST_SECRET"]
    out = ctx.workdir / "proof.txt"
    out.write_text(hashlib.sha256(secret.encode()).hexdigest())
    ctx.log({"secret_length": len(secret)})
    ctx.save("proof", out)
"""

FAILING_PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["nothing"])
def explode(ctx: Context) -> None:
    raise RuntimeError("this task fails on purpose")
"""

SLOW_PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["slow"])
def crawl(ctx: Context) -> None:
    out = ctx.workdir / "slow.txt"
    out.write_text("started")
    print("task started", flush=True)
    time.sleep(120)
    ctx.save("slow", out)
"""

RERUN_PIPELINE = """\
import os

from aeromancy import Context, task


@task(outputs=["raw"])
def ingest(ctx: Context, rows: int = 3) -> None:
    out = ctx.workdir / "raw.csv"
    out.write_text("".join(f"{i},{i * i}\\n" for i in range(rows)))
    ctx.save("raw", out)


@task(inputs=["raw"], outputs=["total"])
def summarise(ctx: Context, scale: float = 1.0, label: str = "sum") -> None:
    raw = ctx.load("raw") / "raw.csv"
    total = sum(int(line.split(",")[1]) for line in raw.read_text().splitlines())
    out = ctx.workdir / "total.txt"
    out.write_text(f"{label}={total * scale}\\n")
    ctx.save("total", out)


@task(outputs=["noise"])
def jitter(ctx: Context) -> None:
    out = ctx.workdir / "noise.txt"
    out.write_text(os.urandom(8).hex())
    ctx.save("noise", out)
"""


def aeromancy(
    root: Path,
    store: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``aeromancy`` command in ``root``; return the finished process."""
    return subprocess.run(
        [AEROMANCY, "--store", store, *args],
        cwd=root,
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=900,
        check=False,
    )


def records(store: str, project: str = "demo") -> list[dict[str, Any]]:
    """Return the project's tracked run records, oldest first."""
    found = open_store(store).list_run_records(project)
    return sorted(found, key=lambda record: str(record["started"]))


def output_text(store: str, name: str, tmp_path: Path) -> str:
    """Return the text of the single file of the newest version of artifact ``name``."""
    opened = open_store(store)
    version = opened.resolve(name, "demo")
    folder = opened.materialize(version, tmp_path / f"out-{uuid.uuid4().hex[:6]}")
    (only,) = [path for path in folder.rglob("*") if path.is_file()]
    return only.read_text()


def test_tracked_run_records_the_image_then_skips_with_the_image_reused(
    make_project: ProjectFactory, local_store_url: str, base_image: str, git: Callable[..., str]
) -> None:
    root = make_project()
    first = aeromancy(root, local_store_url, "run", "--tracker", "none")
    assert first.returncode == 0, first.stderr
    (record,) = records(local_store_url)
    assert record["status"] == "succeeded"
    image = docker.from_env().images.get(record["image_id"])
    assert any(tag.startswith("aeromancy/demo:") for tag in image.tags)
    assert record["base_image_id"] == docker.from_env().images.get(base_image).id
    lock = (root / "pdm.lock").read_bytes()
    assert record["lockfile_hash"] == "sha256:" + hashlib.sha256(lock).hexdigest()
    assert record["dockerfile"].startswith("# Aeromancy's default image recipe")
    assert record["git_commit"] == git(root, "rev-parse", "HEAD").strip()
    assert record["git_branch"] == "main"
    # The environment part of the fingerprint is the recipe of the dependency image (the
    # run image minus the code, which enters each fingerprint per task instead): the
    # hash its deps- tag is named by, not an image id that a rebuild changes.
    environment = docker.from_env().images.get(record["environment_image_id"])
    assert record["environment_recipe"].startswith("recipe:")
    assert any(tag.startswith("aeromancy/demo:deps-") for tag in environment.tags)
    assert record["environment_key"] == record["environment_recipe"]
    # The run image is the environment image: the code is a package mounted at /app.
    assert record["environment_image_id"] == record["image_id"]
    assert record["code_package"].startswith("sha256:")
    assert record["environment"]["python"]["executable"].startswith("/opt/aeromancy/venv/")
    assert "python3-venv" in record["environment"]["debian_packages"]

    started = time.monotonic()
    second = aeromancy(root, local_store_url, "run", "--tracker", "none")
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert "skipped" in second.stdout
    assert len(records(local_store_url)) == 1
    assert elapsed < 30  # no build: the image is found by its tag


TWO_MODULE_PIPELINE = """\
from aeromancy import Context, task

import helper


@task(outputs=["greeting"])
def greet(ctx: Context) -> None:
    out = ctx.workdir / "greeting.txt"
    out.write_text(helper.GREETING)
    ctx.save("greeting", out)
"""


def test_commit_that_leaves_task_code_alone_keeps_tasks_up_to_date(
    make_project: ProjectFactory, local_store_url: str, commit: Callable[..., str]
) -> None:
    root = make_project(pipeline=TWO_MODULE_PIPELINE, files={"helper.py": 'GREETING = "hi"\n'})
    assert aeromancy(root, local_store_url, "run", "--tracker", "none").returncode == 0
    (root / "README.md").write_text("notes\n")
    commit(root, "docs only")
    docs_only = aeromancy(root, local_store_url, "run", "--tracker", "none")
    assert docs_only.returncode == 0, docs_only.stderr
    assert "skipped (up to date)" in docs_only.stdout
    assert len(records(local_store_url)) == 1
    assert "(already built)" in docs_only.stderr  # no build: see test_code_only_commit.py

    (root / "helper.py").write_text('GREETING = "hello"\n')
    commit(root, "the task's helper changes")
    changed = aeromancy(root, local_store_url, "run", "--tracker", "none")
    assert changed.returncode == 0, changed.stderr
    assert "ran" in changed.stdout
    first, second = records(local_store_url)
    assert second["environment_image_id"] == first["environment_image_id"]
    assert second["image_id"] == first["image_id"]
    assert second["code_package"] != first["code_package"]
    assert output_text(local_store_url, "greeting", root.parent) == "hello"


def test_extra_debian_package_is_used_by_the_task(
    make_project: ProjectFactory, local_store_url: str, tmp_path: Path
) -> None:
    root = make_project(pipeline=DEBIAN_PIPELINE)
    done = aeromancy(
        root, local_store_url, "run", "--tracker", "none", "--extra-debian-package", "hello"
    )
    assert done.returncode == 0, done.stderr
    assert output_text(local_store_url, "greeting", tmp_path) == "Hello, world!\n"
    (record,) = records(local_store_url)
    assert "# Debian packages: hello" in record["dockerfile"]
    assert "hello" in record["environment"]["debian_packages"]


def test_secret_reaches_the_task_and_nothing_else(
    make_project: ProjectFactory, local_store_url: str, tmp_path: Path
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    root = make_project(pipeline=SECRET_PIPELINE)
    private_tmp = tmp_path / "launcher-tmp"  # the launcher's TMPDIR: its env file goes here
    private_tmp.mkdir()
    done = aeromancy(
        root,
        local_store_url,
        "--debug",
        "run",
        "--tracker",
        "wandb",
        "--extra-env-var",
        "AEROMANCY_TEST_SECRET",
        env={"AEROMANCY_TEST_SECRET": secret, "WANDB_MODE": "offline", "TMPDIR": str(private_tmp)},
    )
    assert done.returncode == 0, done.stderr
    proof = output_text(local_store_url, "proof", tmp_path)
    assert proof == hashlib.sha256(secret.encode()).hexdigest()  # it reached the task

    (record,) = records(local_store_url)
    assert record["metrics"]  # the task logged, and the record holds what it logged
    image = docker.from_env().images.get(record["image_id"])
    history = subprocess.run(
        ["docker", "history", "--no-trunc", record["image_id"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    places = {
        "logs": done.stdout + done.stderr,
        "docker history": history,
        "image config": json.dumps(image.attrs),
        "run record": json.dumps(record),
    }
    wandb_files = [path for path in (root / "wandb").rglob("*") if path.is_file()]
    assert any("offline-run" in str(path) for path in wandb_files)  # W&B wrote its run here
    assert record["wandb_run"]
    for path in [*Path(local_store_url).rglob("*"), *wandb_files]:
        if path.is_file():
            places[str(path)] = path.read_bytes().decode(errors="replace")
    leaked = [where for where, text in places.items() if secret in text]
    assert leaked == []
    assert list(private_tmp.iterdir()) == []  # the env file and its directory are gone


def test_unset_extra_env_var_is_a_usage_error(
    make_project: ProjectFactory, local_store_url: str
) -> None:
    root = make_project()
    done = aeromancy(root, local_store_url, "run", "--extra-env-var", "AEROMANCY_UNSET_VAR")
    assert done.returncode == 2
    assert "AEROMANCY_UNSET_VAR is not set" in done.stderr


def test_failing_task_in_the_container_exits_1(
    make_project: ProjectFactory, local_store_url: str
) -> None:
    root = make_project(pipeline=FAILING_PIPELINE)
    done = aeromancy(root, local_store_url, "run", "--tracker", "none")
    assert done.returncode == 1
    assert "this task fails on purpose" in done.stdout + done.stderr
    (record,) = records(local_store_url)
    assert record["status"] == "failed"


def test_debug_shell_opens_a_shell_in_the_image(
    make_project: ProjectFactory, local_store_url: str
) -> None:
    root = make_project()
    done = aeromancy(
        root,
        local_store_url,
        "run",
        "--debug-shell",
        stdin="echo in=$AEROMANCY_IN_CONTAINER; cat /app/nonce.txt; exit 7\n",
    )
    assert done.returncode == 7, done.stderr
    assert "in=1" in done.stdout
    assert (root / "nonce.txt").read_text() in done.stdout
    assert records(local_store_url) == []


def test_extra_docker_run_args_are_passed_verbatim(
    make_project: ProjectFactory, local_store_url: str
) -> None:
    root = make_project()
    done = aeromancy(
        root,
        local_store_url,
        "run",
        "--tracker",
        "none",
        "--extra-docker-run-args",
        "--hostname aero-test-host --label 'aeromancy.test=a b'",
    )
    assert done.returncode == 0, done.stderr
    (record,) = records(local_store_url)
    assert record["environment"]["host"] == "aero-test-host"


@pytest.mark.s3
def test_s3_store_on_loopback_is_reached_from_the_container(
    make_project: ProjectFactory, s3_store_url: str
) -> None:
    root = make_project()
    done = aeromancy(root, s3_store_url, "run", "--tracker", "none")
    assert done.returncode == 0, done.stderr
    (record,) = records(s3_store_url)
    assert record["status"] == "succeeded"
    assert open_store(s3_store_url).resolve("greeting", "demo").label == "v1"


def test_ctrl_c_stops_the_container_and_publishes_nothing(
    make_project: ProjectFactory, local_store_url: str
) -> None:
    # The container carries a label of this test's own: other runs may share the engine.
    marker = f"aeromancy-test={uuid.uuid4().hex}"
    root = make_project(
        pipeline=SLOW_PIPELINE, extra=f'docker_run_args = ["--label", "{marker}"]\n'
    )
    process = subprocess.Popen(
        [AEROMANCY, "--store", local_store_url, "run", "--tracker", "none"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 600
    for line in process.stdout:  # the container's output comes through the launcher
        if "task started" in line or time.monotonic() > deadline:
            break
    client = docker.from_env()
    assert len(client.containers.list(filters={"label": marker})) == 1  # it is running
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=60)
    finally:
        process.kill()
    assert code == 130
    assert client.containers.list(all=True, filters={"label": marker}) == []
    assert open_store(local_store_url).list_artifacts("demo") == []


def test_rerun_verify_reproduces_a_deterministic_task_with_pinned_inputs(
    make_project: ProjectFactory, local_store_url: str, tmp_path: Path
) -> None:
    root = make_project(pipeline=RERUN_PIPELINE)
    done = aeromancy(
        root, local_store_url, "run", "--tracker", "none", "--set", "summarise.label=total"
    )
    assert done.returncode == 0, done.stderr
    original = next(r for r in records(local_store_url) if r["task"] == "summarise")
    # A newer raw version must not be used: the rerun pins the recorded v1.
    other = tmp_path / "raw.csv"
    other.write_text("9,81\n")
    pushed = aeromancy(root, local_store_url, "push", "raw", str(other))
    assert pushed.returncode == 0, pushed.stderr

    again = aeromancy(
        root, local_store_url, "rerun", original["run_id"], "--verify", "--tracker", "none"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reproduced" in again.stdout
    rerun = [r for r in records(local_store_url) if r["task"] == "summarise"][-1]
    assert rerun["run_id"] != original["run_id"]
    assert rerun["config"] == original["config"] == {"scale": 1.0, "label": "total"}
    assert [i["label"] for i in rerun["inputs"]] == ["v1"]
    assert rerun["git_commit"] == original["git_commit"]
    assert rerun["git_branch"] == "main"


def test_rerun_verify_names_the_file_of_a_nondeterministic_task(
    make_project: ProjectFactory,
    local_store_url: str,
    commit: Callable[..., str],
    git: Callable[..., str],
) -> None:
    root = make_project(pipeline=RERUN_PIPELINE)
    done = aeromancy(root, local_store_url, "run", "--tracker", "none", "--only", "jitter")
    assert done.returncode == 0, done.stderr
    (original,) = records(local_store_url)
    (root / "later.txt").write_text("a later commit: the rerun must use the recorded one")
    commit(root, "later work")
    (root / "scratch.txt").write_text("uncommitted: the rerun builds from its own worktree")

    again = aeromancy(root, local_store_url, "rerun", original["run_id"], "--verify")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "not reproduced" in again.stdout
    assert "noise/noise.txt" in again.stdout
    rerun = records(local_store_url)[-1]
    assert rerun["git_commit"] == original["git_commit"]
    assert git(root, "worktree", "list").count("\n") == 1  # the temporary worktree is gone
