"""Probing a base image that has no python3, on the real Docker engine."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator

import docker
import pytest
from rich.console import Console

from aeromancy.errors import ImageBuildError
from aeromancy.launcher.baseimage import resolve_base_image

pytestmark = pytest.mark.docker


@pytest.fixture
def image_without_python() -> Iterator[str]:
    """Yield the tag of a one-file image (no python3); remove it and its containers after."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:
        pytest.skip("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    tag = f"aeromancy-test-nopython:{uuid.uuid4().hex[:12]}"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("etc/os-release")
        body = b"ID=none\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    subprocess.run(
        ["docker", "import", "-", tag], input=archive.getvalue(), check=True, capture_output=True
    )
    yield tag
    for container in client.containers.list(all=True, filters={"ancestor": tag}):
        container.remove(force=True)
    client.images.remove(tag, force=True)


def test_a_base_without_python_is_refused_and_leaves_no_container(
    image_without_python: str,
) -> None:
    with pytest.raises(ImageBuildError, match="has no working python3"):
        resolve_base_image(image_without_python, Console(quiet=True))
    left = docker.from_env().containers.list(all=True, filters={"ancestor": image_without_python})
    assert left == []
