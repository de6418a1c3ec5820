"""A project made by ``aeromancy init`` runs tracked with no edits, on a machine whose
only base image is one that ``aeromancy base-image`` built (labelled as such).

The labelled image is a metadata-only child of the session's base image; the test
removes it and its project's images, and nothing else.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from aeromancy.launcher.debian_base import BASE_IMAGE_LABEL
from aeromancy.launcher.lockfile import pdm_executable

pytestmark = pytest.mark.docker

AEROMANCY = str(Path(sys.executable).parent / "aeromancy")


@pytest.fixture
def labelled_base(base_image: str) -> Iterator[str]:
    """Yield the tag of an image labelled as built by ``aeromancy base-image``.

    That is the session's base image itself when it carries the label (in CI it was made
    by ``aeromancy base-image``, and its layers are cached by the other tests' builds);
    else a fresh metadata-only child of it, removed afterwards.
    """
    client = docker.from_env()
    if BASE_IMAGE_LABEL in (client.images.get(base_image).labels or {}):
        yield base_image
        return
    tag = f"aeromancy-test-labelled-base:{uuid.uuid4().hex[:12]}"
    # A label of its own, so the build is no cache hit with an older Created time:
    # init offers the newest labelled base image.
    dockerfile = f"FROM {base_image}\nLABEL {BASE_IMAGE_LABEL}=bookworm org.aeromancy.test={tag}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, pull=False, rm=True)
    yield tag
    client.images.remove(tag, force=True)


def run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PDM_USE_VENV": "false", "PDM_CHECK_UPDATE": "false"}
    return subprocess.run(
        argv, cwd=root, capture_output=True, text=True, env=env, timeout=900, check=False
    )


@pytest.mark.timeout(1800)  # two tracked runs, the first with a full image build
def test_init_names_the_local_base_image_and_its_first_tracked_run_works(
    tmp_path: Path, labelled_base: str, local_store_url: str, git: Callable[..., str]
) -> None:
    name = f"first{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    made = run(tmp_path, AEROMANCY, "init", name)
    assert made.returncode == 0, made.stderr
    assert f"base image: {labelled_base}" in made.stdout
    assert f'base_image = "{labelled_base}"' in (root / "pyproject.toml").read_text()
    try:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "init")
        locked = run(root, pdm_executable(), "lock", "--quiet")
        assert locked.returncode == 0, locked.stderr
        git(root, "add", "pdm.lock")
        git(root, "commit", "-q", "-m", "lock")

        first = run(root, AEROMANCY, "--store", local_store_url, "run", "--tracker", "none")
        assert first.returncode == 0, first.stderr
        rows = [line.split("│") for line in first.stdout.splitlines() if "│" in line][1:]
        assert [(task.strip(), result.strip()) for task, result, *_ in rows] == [
            ("generate", "ran"),
            ("summarize", "ran"),
        ]
        assert [row[2].strip() for row in rows] == ["numbers:v1", "summary:v1"]
        assert f"image aeromancy/{name}:" in first.stderr
        # stderr is a pipe here: each build says when it starts and ends, with sizes.
        assert f"building image aeromancy/{name}:deps-" in first.stderr
        ended = rf"building image aeromancy/{name}:\S+ \(.* context\): done in .*B\)"
        assert re.search(ended, first.stderr)
        assert git(root, "status", "--porcelain") == ""  # nothing the run left dirties the tree

        again = run(root, AEROMANCY, "--store", local_store_url, "run", "--tracker", "none")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("skipped (up to date)") == 2
    finally:
        client = docker.from_env()
        for image in client.images.list(f"aeromancy/{name}"):
            client.images.remove(image.id, force=True)
