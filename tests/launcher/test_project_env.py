"""The project's environment in the image is exactly its pdm.lock, apart from Aeromancy's.

The project locks python-dateutil 4.0.0, which botocore (Aeromancy's runtime) refuses
(it needs < 3), and imports pandas: with one shared environment this could never be
built. Real pdm, real pip, the real Docker engine; the images are labelled with their
repository and each project here has a name of its own, so only they are removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from packaging.utils import canonicalize_name
from rich.console import Console

from aeromancy.launcher.baseimage import resolve_base_image
from aeromancy.launcher.git_gate import check_committed_tree
from aeromancy.launcher.image import IMAGE_LABEL, RunImage, ensure_image, plan_image
from aeromancy.launcher.lockfile import check_lockfile, export_requirements
from aeromancy.launcher.pins import parse_requirements
from aeromancy.settings import load_settings
from aeromancy.store import open_store

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
QUIET = Console(stderr=True, quiet=True)
AEROMANCY = str(Path(sys.executable).parent / "aeromancy")
PROJECT_PIP = "/opt/aeromancy/venv/bin/pip --python /opt/project/venv/bin/python"

PANDAS_PIPELINE = """\
import dateutil
import pandas

from aeromancy import Context, task


@task(outputs=["table"])
def tabulate(ctx: Context, rows: int = 3) -> None:
    frame = pandas.DataFrame({"n": range(rows), "square": [i * i for i in range(rows)]})
    out = ctx.workdir / "table.csv"
    out.write_text(f"dateutil {dateutil.__version__}\\n" + frame.to_csv(index=False))
    ctx.save("table", out)
"""


@pytest.fixture(scope="module")
def names() -> Iterator[list[str]]:
    """Collect the project names used here; remove their images afterwards."""
    used: list[str] = []
    yield used
    client = docker.from_env()
    for name in used:
        images = client.images.list(filters={"label": f"{IMAGE_LABEL}=aeromancy/{name}"})
        for image in sorted(images, key=lambda i: str(i.attrs["Created"]), reverse=True):
            client.images.remove(image.id, force=True)


def fresh(names: list[str], stem: str) -> str:
    """Return a project name of this module's own."""
    name = f"{stem}-{uuid.uuid4().hex[:8]}"
    names.append(name)
    return name


def build(root: Path) -> RunImage:
    """Gate, plan and build (or reuse) the image of the project at ``root``."""
    settings = load_settings(root)
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    recipe = plan_image(settings.project, committed, settings.base_image, [], QUIET)
    return ensure_image(recipe, QUIET)


def run_in(image_id: str, command: str) -> str:
    """Return the output of ``sh -c command`` in a throwaway container of the image."""
    output = docker.from_env().containers.run(image_id, ["sh", "-c", command], remove=True)
    return bytes(output).decode()


def layers(image_id: str) -> list[str]:
    """Return the image's filesystem layer digests, base first."""
    return list(docker.from_env().images.get(image_id).attrs["RootFS"]["Layers"])


def locked_pins(root: Path, base_image: str) -> set[str]:
    """Return ``name==version`` of every pin of the lock that applies in the image."""
    environment = resolve_base_image(base_image, QUIET).marker_environment()
    return {
        f"{pin.name}=={pin.version}"
        for pin in parse_requirements(export_requirements(root))
        if pin.applies_to(environment)
    }


def frozen(image_id: str) -> set[str]:
    """Return ``pip freeze`` of the image's project venv, names canonicalised."""
    lines = run_in(image_id, f"{PROJECT_PIP} freeze --all").split()
    return {
        f"{canonicalize_name(name)}=={version}"
        for name, _, version in (line.partition("==") for line in lines)
    }


@pytest.fixture
def conflicting_project(make_project: ProjectFactory, names: list[str]) -> Path:
    """Return a committed project locking python-dateutil 4.0.0 and pandas."""
    return make_project(
        name=fresh(names, "conflict"),
        pipeline=PANDAS_PIPELINE,
        dependencies='"python-dateutil==4.0.0", "pandas"',
        requires_python=">=3.11",  # python-dateutil 4 needs it
    )


def test_project_venv_holds_exactly_the_lock(conflicting_project: Path, base_image: str) -> None:
    image = build(conflicting_project)
    pins = locked_pins(conflicting_project, base_image)
    assert "python-dateutil==4.0.0" in pins
    assert any(pin.startswith("pandas==") for pin in pins)
    assert frozen(image.id) == pins  # nothing more (no pip, no setuptools, no boto3)
    # Aeromancy's runtime is apart, with the python-dateutil its botocore needs.
    runtime = run_in(image.id, "/opt/aeromancy/venv/bin/pip freeze")
    assert "python-dateutil==2." in runtime
    assert "botocore==" in runtime
    assert run_in(image.id, "echo $AEROMANCY_PROJECT_PYTHON").strip() == (
        "/opt/project/venv/bin/python"
    )


def test_aeromancy_runtime_layers_are_shared_by_projects(
    conflicting_project: Path, make_project: ProjectFactory, names: list[str]
) -> None:
    conflicting = build(conflicting_project)
    plain = build(make_project(name=fresh(names, "plain")))
    base = len(layers(conflicting.recipe.base.id))
    shared = base + 1 + 4  # WORKDIR, then Aeromancy's runtime and wheel: COPY, RUN each
    assert layers(conflicting.id)[:shared] == layers(plain.id)[:shared]
    assert layers(conflicting.id)[shared] != layers(plain.id)[shared]  # the projects' wheels


def test_tracked_run_of_the_conflicting_project_succeeds_first_time(
    conflicting_project: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    done = subprocess.run(
        [AEROMANCY, "--store", store, "run", "--tracker", "none"],
        cwd=conflicting_project,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    opened = open_store(store)
    version = opened.resolve("table", conflicting_project.name)
    folder = opened.materialize(version, tmp_path / "out")
    (table,) = folder.rglob("table.csv")
    assert table.read_text().splitlines() == ["dateutil 4.0.0", "n,square", "0,0", "1,1", "2,4"]
