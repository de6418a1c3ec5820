"""Image builds on the real Docker engine from the local mmdebstrap base image."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import pytest
from rich.console import Console

from aeromancy.errors import ImageBuildError, UsageError
from aeromancy.launcher.git_gate import check_committed_tree
from aeromancy.launcher.image import RunImage, ensure_image, plan_image
from aeromancy.launcher.lockfile import check_lockfile
from aeromancy.settings import load_settings

pytestmark = pytest.mark.docker

ProjectFactory = Callable[..., Path]
Git = Callable[..., str]
QUIET = Console(stderr=True, quiet=True)
AEROMANCY_LAYERS = 4  # COPY and RUN of Aeromancy's runtime wheels, then of its own wheel


def build(root: Path, packages: Sequence[str] = ()) -> RunImage:
    """Gate, plan and build (or reuse) the image of the project at ``root``."""
    settings = load_settings(root)
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    recipe = plan_image(
        settings.project, committed, settings.base_image, [*settings.debian_packages, *packages],
        QUIET,
    )  # fmt: skip
    return ensure_image(recipe, QUIET)


def layers(image_id: str) -> list[str]:
    """Return the image's filesystem layer digests, base first."""
    return list(docker.from_env().images.get(image_id).attrs["RootFS"]["Layers"])


def run_in(image_id: str, command: str) -> str:
    """Return the output of ``sh -c command`` in a throwaway container of the image."""
    output = docker.from_env().containers.run(image_id, ["sh", "-c", command], remove=True)
    return bytes(output).decode()


def test_clean_tree_builds_once_then_reuses_the_image(
    make_project: ProjectFactory, commit: Git
) -> None:
    root = make_project()
    # The image holds no code, so only the recipe names it: a nonce in the committed
    # lock makes this one's tag new, whatever "demo" images earlier tests built.
    with (root / "pdm.lock").open("a") as lock:
        lock.write(f"# test nonce {uuid.uuid4().hex}\n")
    commit(root, "a lock of this test's own")
    (root / "ignored.txt").write_text("not committed")  # ignored: must not reach the image
    first = build(root)
    assert first.built
    assert first.recipe.tag.startswith("aeromancy/demo:")
    second = build(root)
    assert not second.built
    assert second.id == first.id
    listing = run_in(
        first.id,
        "ls -A /app; aeromancy --version; /opt/aeromancy/venv/bin/python -c 'import boto3'",
    )
    # The image holds no project file: the code is a package mounted when a run starts.
    assert listing.splitlines()[0].startswith("aeromancy, version")
    assert "pipeline.py" not in listing


def test_code_only_commit_builds_no_image(make_project: ProjectFactory, commit: Git) -> None:
    root = make_project()
    before = build(root)
    (root / "pipeline.py").write_text((root / "pipeline.py").read_text() + "\n# tweak\n")
    commit(root, "tweak the code")
    after = build(root)
    assert not after.built
    assert after.id == before.id
    assert after.recipe.tag == before.recipe.tag


def test_changed_lockfile_rebuilds_the_dependency_layer(
    make_project: ProjectFactory, commit: Git
) -> None:
    from aeromancy.launcher.selfdist import source_checkout

    root = make_project()
    before = build(root)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = []", 'dependencies = ["six==1.16.0"]')
    )
    subprocess.run(
        ["pdm", "lock", "--quiet", "--project", str(root)],
        check=True,
        env={**os.environ, "PDM_USE_VENV": "false"},
    )
    commit(root, "depend on six")
    after = build(root)
    old, new = layers(before.id), layers(after.id)
    # Layers: the base image's, WORKDIR /app, Aeromancy's runtime and its wheel (copied
    # in, installed), then the project's wheels copied in: the first to change.
    dependency_layer = len(layers(after.recipe.base.id)) + 1 + AEROMANCY_LAYERS
    assert old[:dependency_layer] == new[:dependency_layer]
    assert old[dependency_layer] != new[dependency_layer]
    assert after.recipe.lockfile_hash != before.recipe.lockfile_hash
    assert run_in(after.id, "python3 -c 'import six; print(six.__version__)'").strip() == "1.16.0"
    assert source_checkout() is not None  # these tests run from a checkout


def test_project_template_is_used(make_project: ProjectFactory) -> None:
    from aeromancy.launcher.dockerfile import default_template

    template = default_template().replace(
        "{{ project_code }}", "ENV PROJECT_FLAVOUR=custom\n{{ project_code }}"
    )
    root = make_project(files={"Dockerfile.template": template})
    image = build(root)
    assert "ENV PROJECT_FLAVOUR=custom" in image.recipe.dockerfile
    assert run_in(image.id, "echo $PROJECT_FLAVOUR").strip() == "custom"


def test_template_without_the_code_is_refused(make_project: ProjectFactory) -> None:
    root = make_project(files={"Dockerfile.template": "FROM {{ base_image }}\n"})
    with pytest.raises(UsageError, match=r"Dockerfile.template has no \{\{ aeromancy \}\}"):
        build(root)


def test_failing_build_step_is_an_image_build_error(make_project: ProjectFactory) -> None:
    from aeromancy.launcher.dockerfile import default_template

    template = default_template().replace(
        "{{ project_code }}", "RUN echo about to fail && false\n{{ project_code }}"
    )
    root = make_project(files={"Dockerfile.template": template})
    with pytest.raises(
        ImageBuildError, match="image build failed at `RUN echo about to fail"
    ) as err:
        build(root)
    assert err.value.exit_code == 3


def test_missing_base_image_is_an_image_build_error(make_project: ProjectFactory) -> None:
    root = make_project()
    settings = load_settings(root)
    committed = check_committed_tree(root)
    with pytest.raises(ImageBuildError, match="not present and could not be pulled") as err:
        plan_image(settings.project, committed, "aeromancy-missing-base:nope", [], QUIET)
    assert err.value.exit_code == 3


def test_unknown_debian_package_is_a_usage_error(make_project: ProjectFactory) -> None:
    root = make_project()
    with pytest.raises(UsageError, match="apt-get cannot provide") as err:
        build(root, ["aeromancy-no-such-package"])
    assert err.value.exit_code == 2


def test_extra_debian_package_is_installed_from_host_debs(make_project: ProjectFactory) -> None:
    root = make_project()
    image = build(root, ["hello"])
    assert "# Debian packages: hello" in image.recipe.dockerfile
    assert run_in(image.id, "hello").strip() == "Hello, world!"
