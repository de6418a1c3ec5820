"""A second machine sharing the store: the saved images are loaded, nothing is built.

"Second machine" here: the same engine after the test removed the two images its
first run made (the run image and the dependency image, unique to the test by a
label in its Dockerfile.template), with a fresh launcher cache and a fresh read
cache. Their build-cache parents stay (other builds may share them), so the engine
may still hold some layers; the load must restore the recorded ids all the same.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from aeromancy.environments.layout import image_key
from aeromancy.store import open_store

from .conftest import aeromancy, forget_images, fresh_machine, records

pytestmark = pytest.mark.docker


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
