"""Aeromancy installed as a tool, outside the project: --dev and tracked runs both work.

Aeromancy is built as a wheel by its real build backend (``pdm build``) and installed
with pip into a venv of its own, as pipx or ``uv tool`` would; the project does not
depend on Aeromancy at all. Images are labelled with their repository, and each test
project has a name of its own, so the clean-up removes only this module's images.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from aeromancy.launcher.image import IMAGE_LABEL, repository_name
from aeromancy.store import open_store

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a venv holding only Aeromancy's wheel and its dependencies, from pip."""
    scratch = tmp_path_factory.mktemp("tool")
    pdm = shutil.which("pdm")
    assert pdm is not None, "these tests need pdm on PATH"
    subprocess.run(
        [pdm, "build", "--no-sdist", "--dest", str(scratch / "dist"), "--project", str(CHECKOUT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (scratch / "dist").glob("aeromancy-*.whl")
    venv = scratch / "venv"
    python3 = shutil.which("python3")
    assert python3 is not None
    subprocess.run([python3, "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


@pytest.fixture(scope="module")
def project_name() -> Iterator[str]:
    """Return a project name of this module's own; remove its images afterwards."""
    name = f"tool-{uuid.uuid4().hex[:8]}"
    yield name
    client = docker.from_env()
    label = f"{IMAGE_LABEL}={repository_name(name)}"
    # Newest first: a code image before the dependency image it is built on.
    for image in sorted(
        client.images.list(filters={"label": label}), key=lambda i: str(i.attrs["Created"])
    )[::-1]:
        client.images.remove(image.id, force=True)


def tool_aeromancy(
    venv: Path, root: Path, store: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the tool venv's ``aeromancy`` in ``root`` (not the checkout's)."""
    return subprocess.run(
        [str(venv / "bin" / "aeromancy"), "--store", store, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "VIRTUAL_ENV": ""},
        timeout=900,
        check=False,
    )


def test_tool_install_is_not_a_checkout(tool_venv: Path) -> None:
    probe = subprocess.run(  # run outside the checkout, whose aeromancy/ `-c` would import
        [
            str(tool_venv / "bin" / "python"),
            "-c",
            "import aeromancy; from aeromancy.launcher.selfdist import source_checkout;"
            "print(aeromancy.__file__); print(source_checkout())",
        ],
        cwd=tool_venv,
        capture_output=True,
        text=True,
        check=True,
    )
    location, checkout = probe.stdout.split()
    assert location.startswith(str(tool_venv))
    assert checkout == "None"


def test_dev_and_tracked_runs_with_aeromancy_as_a_tool(
    tool_venv: Path,
    make_project: ProjectFactory,
    project_name: str,
    local_store_url: str,
    base_image: str,
) -> None:
    root = make_project(name=project_name)
    assert "aeromancy" not in (root / "pdm.lock").read_text()  # no Aeromancy dependency

    dev = tool_aeromancy(tool_venv, root, local_store_url, "run", "--dev", "--tracker", "none")
    assert dev.returncode == 0, dev.stderr
    assert open_store(local_store_url).resolve("greeting", project_name, namespace="dev")

    tracked = tool_aeromancy(tool_venv, root, local_store_url, "run", "--tracker", "none")
    assert tracked.returncode == 0, tracked.stderr
    (record,) = open_store(local_store_url).list_run_records(project_name)
    assert record["status"] == "succeeded"
    # The image's Aeromancy is the tool's: its files, byte for byte.
    tool_site = next((tool_venv / "lib").glob("python3.*/site-packages"))
    expected = (tool_site / "aeromancy" / "__init__.py").read_text()
    script = "import aeromancy, pathlib; print(pathlib.Path(aeromancy.__file__).read_text())"
    shown = docker.from_env().containers.run(
        record["image_id"], ["/opt/aeromancy/venv/bin/python", "-c", script], remove=True
    )
    assert bytes(shown).decode() == expected + "\n"
