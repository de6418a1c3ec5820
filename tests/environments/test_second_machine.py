"""A second machine sharing the store: the saved images are loaded, nothing is built.

"Second machine" here: the same engine after the test removed the two images its
first run made (the run image and the dependency image, unique to the test by a
label in its Dockerfile.template), with a fresh launcher cache and a fresh read
cache. Their build-cache parents stay (other builds may share them), so the engine
may still hold some layers; the load must restore the recorded ids all the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from aeromancy.environments.layout import image_key
from aeromancy.launcher.dockerfile import default_template
from aeromancy.store import open_store

from .conftest import image_exists, remove_image

pytestmark = pytest.mark.docker

AEROMANCY = str(Path(sys.executable).parent / "aeromancy")
ProjectFactory = Callable[..., Path]


def unique_template() -> str:
    """Return the default template with a label of its own before the code block.

    A LABEL adds no layer: the dependency image gets an id (and config) of its own,
    so removing it cannot touch an image another test or session uses.
    """
    marker = "{{ project_code }}"
    label = f"LABEL aeromancy.test=environments aeromancy.test.nonce={uuid.uuid4().hex}\n"
    return default_template().replace(marker, label + marker)


def aeromancy(
    root: Path, store: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``aeromancy`` command in ``root``; return the finished process."""
    return subprocess.run(
        [AEROMANCY, "--store", store, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
        check=False,
    )


def records(store: str) -> list[dict[str, Any]]:
    """Return the demo project's tracked run records, oldest first."""
    found = open_store(store).list_run_records("demo")
    return sorted(found, key=lambda record: str(record["started"]))


def forget_images(record: Mapping[str, Any]) -> None:
    """Remove the run image and the dependency image of ``record`` (both made here)."""
    for image_id in (record["image_id"], record["environment_image_id"]):
        remove_image(str(image_id), prune=False)
        assert not image_exists(str(image_id))


def fresh_machine(tmp_path: Path) -> dict[str, str]:
    """Return the variables of a machine with empty launcher and read caches."""
    machine = tmp_path / f"machine-{uuid.uuid4().hex[:6]}"
    return {
        "AEROMANCY_LAUNCHER_CACHE": str(machine / "launcher-cache"),
        "AEROMANCY_CACHE": str(machine / "read-cache"),
    }


@pytest.fixture
def project(make_project: ProjectFactory) -> Path:
    """Return a committed one-task project whose images are this test's own."""
    return make_project(files={"Dockerfile.template": unique_template()})


def test_second_machine_loads_the_images_and_reruns_nothing(
    project: Path, store_url: str, tmp_path: Path
) -> None:
    first = aeromancy(project, store_url, "run", "--tracker", "none")
    assert first.returncode == 0, first.stderr
    (record,) = records(store_url)
    store = open_store(store_url)
    assert store.backend.exists(image_key(record["environment_image_id"]))
    assert store.backend.exists(image_key(record["image_id"]))
    assert "saving environment image" in first.stderr

    forget_images(record)
    machine = fresh_machine(tmp_path)
    second = aeromancy(project, store_url, "run", "--tracker", "none", env=machine)

    assert second.returncode == 0, second.stderr
    assert "skipped (up to date)" in second.stdout
    assert len(records(store_url)) == 1  # zero tasks ran again
    assert "loading environment image" in second.stderr
    client = docker.from_env()
    assert client.images.get(record["image_id"]).id == record["image_id"]
    assert client.images.get(record["environment_image_id"]).id == record["environment_image_id"]
    # No build happened: a build of either image would have given it a new id (its
    # config holds the build time), and would have filled the wheelhouse first.
    wheelhouse = Path(machine["AEROMANCY_LAUNCHER_CACHE"]) / "wheelhouse"
    assert not list(wheelhouse.glob("*.whl"))
    forget_images(record)
