"""Fixtures of the launcher tests: a local base image, tiny projects in real git repos.

- ``base_image``: a Debian bookworm image (minbase + python3, python3-venv, python3-pip)
  built once with mmdebstrap and ``docker import``, since no registry can be pulled
  from here; ``AEROMANCY_TEST_BASE_IMAGE`` names one to use instead (CI sets it to the
  image its own ``scripts/setup`` just built, so no image left on the engine is relied
  on). Tests that need it are skipped, with the reason, when no Docker engine answers
  or mmdebstrap is missing.
- ``launcher_cache``: one launcher cache (wheelhouse, .debs, Aeromancy wheel) for the
  whole session, so wheels are downloaded once.
- ``make_project``: a committed project in a temp git repository whose base image is
  the local one, with a pdm.lock made by pdm itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.launcher.debian_base import (
    DEFAULT_MIRROR,
    PYTHON_PACKAGES,
    build_debian_base_image,
)
from aeromancy.launcher.lockfile import pdm_executable

BASE_PACKAGES = PYTHON_PACKAGES
BASE_SUITE = "bookworm"
BASE_IMAGE_ENV = "AEROMANCY_TEST_BASE_IMAGE"
MIRROR = os.environ.get("AEROMANCY_TEST_DEBIAN_MIRROR", DEFAULT_MIRROR)

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = "{requires_python}"
dependencies = [{dependencies}]

[tool.pdm]
distribution = false

[tool.aeromancy]
base_image = "{base_image}"
{extra}"""

GITIGNORE = ".venv/\n__pycache__/\n.pdm-python\nwandb/\nignored.txt\n"

PIPELINE = """\
from pathlib import Path

from aeromancy import Context, task


@task(outputs=["greeting"])
def greet(ctx: Context, name: str = "world") -> None:
    out = ctx.workdir / "greeting.txt"
    out.write_text(f"hello {name}\\n")
    ctx.save("greeting", out)
"""


def _engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def base_image() -> str:
    """Return the tag of the local bookworm base image, building it once if absent."""
    if not _engine_answers():
        pytest.skip("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    if os.environ.get(BASE_IMAGE_ENV):
        return os.environ[BASE_IMAGE_ENV]
    recipe = f"{BASE_SUITE} minbase {' '.join(BASE_PACKAGES)}"
    tag = f"aeromancy-test-base:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is missing (apt-get install mmdebstrap) to build the base image")
    build_debian_base_image(tag, BASE_SUITE, BASE_PACKAGES, MIRROR)
    return tag


@pytest.fixture(scope="session")
def session_launcher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the launcher cache directory shared by the session."""
    return tmp_path_factory.mktemp("launcher-cache")


@pytest.fixture(autouse=True)
def launcher_cache(
    session_launcher_cache: Path, monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> Path:
    """Point the launcher at the session's cache (wheels are downloaded once)."""
    monkeypatch.setenv("AEROMANCY_LAUNCHER_CACHE", str(session_launcher_cache))
    # pdm builds the Aeromancy wheel in an isolated env; keep its cache across tests.
    monkeypatch.setenv("PDM_CACHE_DIR", str(session_launcher_cache / "pdm-cache"))
    return session_launcher_cache


def run_git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return its stdout (fails on error)."""
    result = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def commit_all(repo: Path, message: str = "change") -> str:
    """Commit every change in ``repo``; return the new commit id."""
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD").strip()


def pdm_lock(root: Path) -> None:
    """Lock ``root`` with pdm, leaving no virtualenv or .pdm-python behind."""
    env = {**os.environ, "PDM_USE_VENV": "false", "PDM_CHECK_UPDATE": "false"}
    env["PDM_PYTHON"] = shutil.which("python3") or "python3"
    subprocess.run(
        [pdm_executable(), "lock", "--quiet", "--project", str(root)],
        env=env,
        check=True,
        capture_output=True,
    )


ProjectFactory = Callable[..., Path]


@pytest.fixture
def git() -> Callable[..., str]:
    """Return ``git(repo, *args) -> stdout`` (raises on failure)."""
    return run_git


@pytest.fixture
def commit() -> Callable[..., str]:
    """Return ``commit(repo, message) -> commit id`` committing every change."""
    return commit_all


@pytest.fixture
def make_project(tmp_path: Path, base_image_name: str) -> ProjectFactory:
    """Yield a function making a committed project; ``base_image`` may be unbuilt."""

    def make(
        *,
        name: str = "demo",
        pipeline: str = PIPELINE,
        dependencies: str = "",
        requires_python: str = ">=3.10",
        extra: str = "",
        files: dict[str, str] | None = None,
        lock: bool = True,
        commit: bool = True,
    ) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "pyproject.toml").write_text(
            PYPROJECT.format(
                name=name,
                dependencies=dependencies,
                requires_python=requires_python,
                base_image=base_image_name,
                extra=extra,
            )
        )
        (root / "pipeline.py").write_text(pipeline)
        (root / ".gitignore").write_text(GITIGNORE)
        # A fresh tree per test: images are tagged by content, so an image left by an
        # earlier session would otherwise be reused instead of built.
        (root / "nonce.txt").write_text(uuid.uuid4().hex)
        for relative, text in (files or {}).items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
        if lock:
            pdm_lock(root)
        run_git(root, "init", "-q", "-b", "main")
        if commit:
            commit_all(root, "initial")
        return root

    return make


@pytest.fixture
def base_image_name(request: pytest.FixtureRequest) -> str:
    """Return the base image tag: the built one for docker tests, a placeholder otherwise."""
    if request.node.get_closest_marker("docker"):
        return str(request.getfixturevalue("base_image"))
    return "aeromancy-test-base:not-built"
