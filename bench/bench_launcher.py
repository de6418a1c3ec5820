"""Benchmark the launcher: start-up with the image built, after a code-only commit, full build.

Runs against the real Docker engine with a local Debian base image
(``AEROMANCY_BENCH_BASE_IMAGE``, else built with mmdebstrap when missing, since no
registry can be pulled from here). A code-only commit builds no image (the code is a
package mounted at /app), so its row is the time from ``aeromancy run`` to the first
task, side by side with the same run when nothing changed. Prints a table of medians
beside their targets. Usage: ``.venv/bin/python bench/bench_launcher.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
from rich.console import Console
from rich.table import Table

from aeromancy.environments.code_package import materialize, publish
from aeromancy.launcher.debian_base import build_debian_base_image
from aeromancy.launcher.git_gate import check_committed_tree
from aeromancy.launcher.image import ImageRecipe, ensure_image, plan_image
from aeromancy.launcher.lockfile import check_lockfile
from aeromancy.settings import load_settings
from aeromancy.store import open_store

BASE_TAG = "aeromancy-bench-base:bookworm"
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")
QUIET = Console(stderr=True, quiet=True)

PIPELINE = """\
import time

from aeromancy import Context, task


@task(outputs=["stamp"])
def stamp(ctx: Context) -> None:
    print(f"TASK-START {time.time():.6f}", flush=True)
    out = ctx.workdir / "stamp.txt"
    out.write_text("x")
    ctx.save("stamp", out)
"""


def base_image() -> str:
    """Return the local base image tag, building it with mmdebstrap when missing."""
    if os.environ.get("AEROMANCY_BENCH_BASE_IMAGE"):
        return os.environ["AEROMANCY_BENCH_BASE_IMAGE"]
    client = docker.from_env()
    try:
        client.images.get(BASE_TAG)
        return BASE_TAG
    except docker.errors.ImageNotFound:
        pass
    build_debian_base_image(BASE_TAG)
    return BASE_TAG


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@example.com", *args],
        check=True,
        capture_output=True,
    )


def make_project(folder: Path, base: str) -> Path:
    root = folder / "bench"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        f"dependencies = []\n\n[tool.pdm]\ndistribution = false\n\n"
        f'[tool.aeromancy]\nbase_image = "{base}"\n'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n.pdm-python\n")
    env = {**os.environ, "PDM_USE_VENV": "false", "PDM_CHECK_UPDATE": "false"}
    subprocess.run(["pdm", "lock", "-q", "--project", str(root)], env=env, check=True)
    git(root, "init", "-q", "-b", "main")
    commit(root)
    return root


def commit(root: Path) -> None:
    (root / "nonce.txt").write_text(uuid.uuid4().hex)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench")


def plan_of(root: Path, base: str | None = None) -> ImageRecipe:
    """Return the recipe of the project's image (gates included)."""
    settings = load_settings(root)
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    return plan_image(settings.project, committed, base or settings.base_image, [], QUIET)


def build(root: Path, base: str | None = None) -> float:
    """Return the seconds to gate, plan and build (or reuse) the project's image."""
    started = time.monotonic()
    settings = load_settings(root)
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    recipe = plan_image(settings.project, committed, base or settings.base_image, [], QUIET)
    ensure_image(recipe, QUIET)
    return time.monotonic() - started


def time_to_first_task(root: Path, store: Path) -> float:
    """Return seconds from starting ``aeromancy run`` to the task's first line."""
    started = time.time()
    done = subprocess.run(
        [AEROMANCY, "--store", str(store), "run", "--tracker", "none", "--force"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("TASK-START"))
    return float(line.split()[1]) - started


def host_side(root: Path, store: Path) -> float:
    """Return the seconds the launcher spends before ``docker run`` after a code-only
    commit: gates, plan, code package (stored and materialized), image look-up."""
    commit(root)
    started = time.monotonic()
    settings = load_settings(root)
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    recipe = plan_image(settings.project, committed, settings.base_image, [], QUIET)
    opened = open_store(store)
    materialize(opened, publish(opened, settings.project, committed))
    ensure_image(recipe, QUIET, opened)
    return time.monotonic() - started


def command_start() -> float:
    """Return the seconds ``aeromancy --version`` takes (the CLI's own start-up)."""
    started = time.monotonic()
    subprocess.run([AEROMANCY, "--version"], check=True, capture_output=True)
    return time.monotonic() - started


def container_start(image_id: str) -> float:
    """Return the seconds ``docker run --rm IMAGE true`` takes (create, start, remove)."""
    started = time.monotonic()
    subprocess.run(["docker", "run", "--rm", image_id, "true"], check=True, capture_output=True)
    return time.monotonic() - started


def fresh_base(base: str) -> str:
    """Return a new image id equal to ``base`` in content, so no build cache applies."""
    client = docker.from_env()
    dockerfile = f"FROM {base}\nLABEL bench.nonce={uuid.uuid4().hex}\n".encode()
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), rm=True)
    return str(image.id)


def median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    console = Console()
    start_load = os.getloadavg()
    base = base_image()
    with tempfile.TemporaryDirectory(prefix="aeromancy-bench-") as scratch:
        folder = Path(scratch)
        os.environ["AEROMANCY_CACHE"] = str(folder / "cache")  # code packages go there
        root = make_project(folder, base)
        store = folder / "store"
        build(root)  # warm: wheelhouse, Aeromancy wheel, dependency layers
        startup = median(5, lambda: time_to_first_task(root, store))

        def code_only() -> float:
            commit(root)
            return time_to_first_task(root, store)

        after_commit = median(5, code_only)
        host = median(5, lambda: host_side(root, store))
        cli = median(5, command_start)
        image_id = ensure_image(plan_of(root), QUIET).id
        container = median(5, lambda: container_start(image_id))
        full = build(root, fresh_base(base))
    table = Table(title="launcher benchmark (median seconds)", title_justify="left")
    for column in ("measurement", "seconds", "target", "seconds / target"):
        table.add_column(column, justify="right" if column != "measurement" else "left")
    rows = [
        ("`aeromancy run` to first task, nothing changed (n=5)", startup, 3.0),
        ("`aeromancy run` to first task after a code-only commit (n=5)", after_commit, 3.0),
        ("  of which: `aeromancy --version` (n=5)", cli, None),
        ("  of which: host side after a code-only commit, in-process (n=5)", host, None),
        ("  of which: `docker run --rm IMAGE true` (n=5)", container, None),
        ("full build from the base image, warm wheelhouse (n=1)", full, None),
    ]
    for label, seconds, target in rows:
        ratio = f"{seconds / target:.2f}" if target else "-"
        table.add_row(label, f"{seconds:.2f}", f"{target:.0f}" if target else "-", ratio)
    console.print(table)
    print("\n| measurement | seconds | target | seconds / target |\n|---|---:|---:|---:|")
    for label, seconds, target in rows:
        ratio = f"{seconds / target:.2f}" if target else "-"
        print(f"| {label.strip()} | {seconds:.2f} | {target or '-'} | {ratio} |")
    print(f"load average at the start {start_load}, at the end {os.getloadavg()}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
