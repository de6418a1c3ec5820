"""``aeromancy base-image`` on the real Docker engine and with real mmdebstrap.

Each test names its image with a fresh tag and removes only that image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.launcher.debian_base import BASE_IMAGE_LABEL

pytestmark = pytest.mark.docker


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:
        pytest.skip("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    return client


@pytest.fixture
def fresh_tag() -> Iterator[str]:
    """Yield an image tag nobody uses; remove that image afterwards if it was made."""
    client = _client()
    tag = f"aeromancy-test-cmd-base:{uuid.uuid4().hex[:12]}"
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, force=True)


def aeromancy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the aeromancy CLI in a fresh process (the Docker client is cached per process)."""
    return subprocess.run(
        [sys.executable, "-c", "from aeromancy.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_builds_a_labelled_python_image_and_prints_the_pyproject_line(fresh_tag: str) -> None:
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is missing (apt-get install mmdebstrap)")
    marker = uuid.uuid4().hex
    built = CliRunner().invoke(main, ["base-image", "--tag", fresh_tag, "--label", f"t={marker}"])
    assert built.exit_code == 0, built.output
    assert built.stdout.splitlines() == [
        fresh_tag,
        "put this line in [tool.aeromancy] of pyproject.toml:",
        f'base_image = "{fresh_tag}"',
    ]
    assert f"building base image {fresh_tag}" in built.stderr
    assert f"built base image {fresh_tag}" in built.stderr
    image = _client().images.get(fresh_tag)
    assert image.labels[BASE_IMAGE_LABEL] == "bookworm"
    assert image.labels["t"] == marker
    python = _client().containers.run(
        fresh_tag, ["python3", "-c", "import venv, sys; print(sys.version_info[0])"], remove=True
    )
    assert bytes(python).strip() == b"3"

    again = CliRunner().invoke(main, ["base-image", "--tag", fresh_tag])
    assert again.exit_code == 0, again.output
    assert "already present" in again.stderr
    assert _client().images.get(fresh_tag).id == image.id


def test_without_mmdebstrap_it_refuses_with_exit_2(fresh_tag: str, tmp_path: Path) -> None:
    _client()
    result = aeromancy("base-image", "--tag", fresh_tag, env={"PATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "mmdebstrap is not installed" in result.stderr
    assert "apt-get install mmdebstrap" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_without_a_docker_engine_it_fails_with_exit_3(tmp_path: Path) -> None:
    result = aeromancy("base-image", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 3, result.stderr
    assert "no Docker engine answers" in result.stderr
    assert result.stdout == ""


def test_a_failed_bootstrap_leaves_no_image_under_the_tag(fresh_tag: str) -> None:
    # `docker import` turns even an empty stream into an image; a failed mmdebstrap
    # once left a 0-byte image under the tag, which every later run took as built.
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is missing (apt-get install mmdebstrap)")
    client = _client()
    marker = uuid.uuid4().hex
    result = aeromancy(
        "base-image",
        "--tag",
        fresh_tag,
        "--label",
        f"t={marker}",
        "--mirror",
        "http://127.0.0.1:9/debian",
    )
    assert result.returncode == 3, result.stderr
    assert f"building the base image {fresh_tag} failed" in result.stderr
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(fresh_tag)
    assert client.images.list(all=True, filters={"label": f"t={marker}"}) == []
