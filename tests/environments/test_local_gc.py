"""``aeromancy gc`` removes the project's local images that no run record names.

Real Docker engine: the images are tiny imports carrying the launcher's label; the
test removes every image and container it made.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.launcher.image import IMAGE_LABEL

pytestmark = pytest.mark.docker


def _tiny_image(tag: str, repository: str, body: bytes) -> str:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    change = ["--change", f"LABEL {IMAGE_LABEL}={repository}"]
    out = subprocess.run(
        ["docker", "import", *change, "-", tag],
        input=archive.getvalue(),
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """Yield (project name, store dir) in a project dir; remove the test's images after."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:
        pytest.skip("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    name = f"gc-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(f'[tool.aeromancy]\nproject = "{name}"\n')
    monkeypatch.chdir(root)
    yield name, tmp_path / "store"
    label: dict[str, str | list[str] | bool] = {"label": f"{IMAGE_LABEL}=aeromancy/{name}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for image in client.images.list(filters=label):
        client.images.remove(str(image.id), force=True)


def test_gc_removes_local_images_no_record_names(
    project: tuple[str, Path], request: pytest.FixtureRequest
) -> None:
    name, store = project
    repository = f"aeromancy/{name}"
    unused = _tiny_image(f"{repository}:unused", repository, b"a")
    recorded = _tiny_image(f"{repository}:recorded", repository, b"b")
    busy = _tiny_image(f"{repository}:busy", repository, b"c")
    other = f"aeromancy/{name}-other"
    foreign = _tiny_image(f"{other}:x", other, b"d")
    request.addfinalizer(lambda: docker.from_env().images.remove(foreign, force=True))
    client = docker.from_env()
    client.containers.create(busy, ["true"], labels={IMAGE_LABEL: repository})
    runs = store / "runs" / name
    runs.mkdir(parents=True)
    record = {"run_id": "20261202-000000-abcdef12", "environment_image_id": recorded}
    (runs / "20261202-000000-abcdef12.json").write_text(json.dumps(record))

    young = CliRunner().invoke(main, ["--store", str(store), "gc"])
    assert young.exit_code == 0, young.output
    assert "local image" not in young.stdout  # all younger than the default grace period
    dry = CliRunner().invoke(main, ["--store", str(store), "gc", "--dry-run", "--grace", "0"])
    assert dry.exit_code == 0, dry.output
    assert f"gc would remove 1 local image(s) of {repository} (1 kept" in dry.stdout
    client.images.get(unused)  # a dry run removes nothing

    real = CliRunner().invoke(main, ["--store", str(store), "gc", "--grace", "0"])

    assert real.exit_code == 0, real.output
    assert f"gc removed 1 local image(s) of {repository} (1 kept: a container uses it)" in (
        real.stdout
    )
    assert f"{repository}:unused" in real.stdout
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(unused)
    for kept in (recorded, busy, foreign):
        client.images.get(kept)
