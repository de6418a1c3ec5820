"""``aeromancy images``: local and stored environment images with the runs using them."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest
from click.testing import CliRunner
from rich.console import Console

from aeromancy.cli import main
from aeromancy.environments.save import save_image
from aeromancy.store import open_store

from .conftest import ImageFactory, remove_image

QUIET = Console(file=open("/dev/null", "w"), force_terminal=False)  # noqa: SIM115


def write_project(root: Path, name: str, extra: str = "") -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\n\n[tool.aeromancy]\n{extra}'
    )
    return root


def images_output(root: Path, store: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["--store", store, "images"])
    return result.exit_code, result.output


@pytest.mark.docker
def test_images_lists_local_and_stored_images_with_their_runs(
    tmp_path: Path,
    local_store_url: str,
    make_image: ImageFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"imgs-{uuid.uuid4().hex[:8]}"
    root = write_project(tmp_path / "project", name, 'image_repository = "team/envs"\n')
    client = docker.from_env()
    local_only, stored_only = make_image(1), make_image(1)
    client.images.get(local_only).tag("team/envs", "local")
    client.images.get(stored_only).tag("team/envs", "stored")
    store = open_store(local_store_url)
    save_image(store, stored_only, ("team/envs:stored",), QUIET)
    remove_image(stored_only)
    run_id = "20261201-000000-0123abcd"
    record = {"run_id": run_id, "task": "greet", "image_id": stored_only, "status": "succeeded"}
    store.put_run_record(name, run_id, record)

    code, output = images_output(root, local_store_url, monkeypatch)

    assert code == 0, output
    cells = [[cell.strip() for cell in line.split("│")] for line in output.splitlines()[2:]]
    rows = {row[0]: row for row in cells}
    local_row = rows[local_only.removeprefix("sha256:")[:12]]
    stored_row = rows[stored_only.removeprefix("sha256:")[:12]]
    assert local_row[1:4] == ["team/envs:local", "yes", "no"]
    assert stored_row[1:4] == ["team/envs:stored", "no", "yes"]
    assert stored_row[-1] == run_id
    assert local_row[-1] == "-"


def test_images_of_a_project_without_any(
    tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"imgs-{uuid.uuid4().hex[:8]}"
    root = write_project(tmp_path / "project", name)
    code, output = images_output(root, local_store_url, monkeypatch)
    assert code == 0, output
    assert output == f"no environment images of aeromancy/{name} here or in the store\n"


def test_a_bad_image_repository_is_refused_in_one_line(
    tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "project", "demo", 'image_repository = "Team Envs"\n')
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["--store", local_store_url, "images"])
    assert result.exit_code == 2
    assert "image_repository 'Team Envs' is not a Docker repository name" in result.output
    assert len(result.output.strip().splitlines()) == 1
