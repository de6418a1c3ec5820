"""Fixtures of the environment image tests: small images of random layers, and the
launcher's project fixtures.

- ``make_image``: builds an image ``FROM scratch`` (or from another one it made) with
  one layer of random bytes per size given, labelled ``aeromancy.test=environments``;
  every image it made is removed at the end of the test, by id, newest first. The
  tests touch no other image.
- ``project``: a committed one-task project whose images are the test's own (a label
  in its Dockerfile.template), with helpers to run ``aeromancy`` on it and to forget
  its images.
- ``base_image``, ``make_project`` and the launcher cache come from the launcher
  suite's conftest, loaded from its file (the suites are not packages).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from aeromancy.environments.shelf import STORE_IMAGES_ENV
from aeromancy.launcher.dockerfile import default_template
from aeromancy.store import open_store

TEST_LABEL = {"aeromancy.test": "environments"}


def _launcher_fixtures() -> object:
    path = Path(__file__).parents[1] / "launcher" / "conftest.py"
    spec = importlib.util.spec_from_file_location("launcher_fixtures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_launcher = _launcher_fixtures()
base_image = _launcher.base_image  # type: ignore[attr-defined]
session_launcher_cache = _launcher.session_launcher_cache  # type: ignore[attr-defined]
launcher_cache = _launcher.launcher_cache  # type: ignore[attr-defined]
make_project = _launcher.make_project  # type: ignore[attr-defined]
base_image_name = _launcher.base_image_name  # type: ignore[attr-defined]
git = _launcher.git  # type: ignore[attr-defined]
commit = _launcher.commit  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def store_images(monkeypatch: pytest.MonkeyPatch, isolated_environment: Path) -> None:
    """Save and load environment images through the store (the suite-wide default is off)."""
    monkeypatch.setenv(STORE_IMAGES_ENV, "1")


def _engine() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException:
        pytest.skip("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    return client


ImageFactory = Callable[..., str]


@pytest.fixture
def make_image() -> Iterator[ImageFactory]:
    """Yield ``make(*megabytes, parent=None) -> image id``; remove the images made."""
    client = _engine()
    made: list[str] = []

    def make(*megabytes: float, parent: str | None = None) -> str:
        context = io.BytesIO()
        lines = [f"FROM {parent or 'scratch'}"]
        with tarfile.open(fileobj=context, mode="w") as tar:
            for number, size in enumerate(megabytes):
                data = os.urandom(int(size * 1_000_000))
                info = tarfile.TarInfo(f"layer{number}.bin")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                lines.append(f"COPY layer{number}.bin /data/{uuid.uuid4().hex}.bin")
            dockerfile = "\n".join(lines).encode() + b"\n"
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        context.seek(0)
        image, _ = client.images.build(
            fileobj=context, custom_context=True, labels=TEST_LABEL, rm=True, network_mode="none"
        )
        made.append(str(image.id))
        return str(image.id)

    yield make
    for image_id in reversed(made):
        remove_image(image_id)


def remove_image(image_id: str, *, prune: bool = True) -> None:
    """Remove one image this suite made (all its tags), if it is still there.

    ``prune=False`` keeps its untagged parents: build-cache images another build may share.
    """
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker.from_env().images.remove(image_id, force=True, noprune=not prune)


def image_exists(image_id: str) -> bool:
    """Return True when the engine has ``image_id``."""
    try:
        docker.from_env().images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


# -- tracked runs of a project whose images are the test's own ----------------------

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
    """Remove the environment image of ``record`` (made here), and its run image if the
    record names another (records from before code packages).

    A run image goes with its untagged parents (its code layer's build steps, this
    test's own, down to the dependency image), which would otherwise keep the
    dependency image as their parent; the environment image keeps its parents, the
    build cache other builds may share.
    """
    if record["image_id"] != record["environment_image_id"]:
        remove_image(str(record["image_id"]), prune=True)
    remove_image(str(record["environment_image_id"]), prune=False)
    for image_id in (record["image_id"], record["environment_image_id"]):
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
