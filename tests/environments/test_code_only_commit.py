"""A code-only commit builds no image; the code reaches the task as a mounted package.

The project's Dockerfile.template carries a label of its own (see conftest), so its
environment image and tag are this test's alone, and image events on the engine that
name that tag can only come from this test.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from aeromancy.environments.code_package import package_key
from aeromancy.store import open_store

from .conftest import ProjectFactory, aeromancy, forget_images, records, unique_template

pytestmark = pytest.mark.docker

TWO_MODULE_PIPELINE = """\
from aeromancy import Context, task

import helper


@task(outputs=["greeting"])
def greet(ctx: Context) -> None:
    out = ctx.workdir / "greeting.txt"
    out.write_text(helper.GREETING)
    ctx.save("greeting", out)
"""

SUBMODULE_PIPELINE = """\
from aeromancy import Context, task

from lib.shared import VALUE


@task(outputs=["value"])
def show(ctx: Context) -> None:
    out = ctx.workdir / "value.txt"
    out.write_text(str(VALUE))
    ctx.save("value", out)
"""


def image_events(tags: list[str], since: float) -> list[str]:
    """Return ``action name`` of each image event since ``since`` naming one of ``tags``."""
    events = docker.from_env().events(
        since=int(since), until=int(time.time()) + 1, decode=True, filters={"type": "image"}
    )
    return [
        f"{event.get('Action')} {name}"
        for event in events
        if (name := str(event.get("Actor", {}).get("Attributes", {}).get("name", ""))) in tags
    ]


def test_code_only_commit_builds_no_image_and_keeps_unchanged_tasks_up_to_date(
    make_project: ProjectFactory, store_url: str, commit: Callable[..., str]
) -> None:
    root = make_project(
        pipeline=TWO_MODULE_PIPELINE,
        files={"Dockerfile.template": unique_template(), "helper.py": 'GREETING = "hi"\n'},
    )
    first = aeromancy(root, store_url, "run", "--tracker", "none")
    assert first.returncode == 0, first.stderr
    (original,) = records(store_url)
    tags = list(docker.from_env().images.get(original["image_id"]).tags)
    assert tags
    assert open_store(store_url).backend.exists(package_key("demo", original["git_commit"]))

    (root / "README.md").write_text("notes\n")
    commit(root, "docs only")
    since = time.time()
    docs_only = aeromancy(root, store_url, "run", "--tracker", "none")

    assert docs_only.returncode == 0, docs_only.stderr
    assert "skipped (up to date)" in docs_only.stdout
    assert len(records(store_url)) == 1
    # A build would tag its image at its end (and a load would be a load event).
    assert image_events(tags, since) == []
    assert "(already built)" in docs_only.stderr

    (root / "helper.py").write_text('GREETING = "hello"\n')
    commit(root, "the task's helper changes")
    since = time.time()
    changed = aeromancy(root, store_url, "run", "--tracker", "none")

    assert changed.returncode == 0, changed.stderr
    assert image_events(tags, since) == []
    _, again = records(store_url)
    assert again["image_id"] == original["image_id"]
    assert again["code_package"] != original["code_package"]
    store = open_store(store_url)
    folder = store.materialize(store.resolve("greeting", "demo"), root.parent / "out")
    assert (folder / "greeting.txt").read_text() == "hello"
    forget_images(original)


def test_a_task_imports_code_from_a_committed_submodule(
    make_project: ProjectFactory, local_store_url: str, tmp_path: Path, git: Callable[..., str]
) -> None:
    library = tmp_path / "library"
    (library / "shared").mkdir(parents=True)
    (library / "shared" / "__init__.py").write_text("VALUE = 42\n")
    git(library, "init", "-q", "-b", "main")
    git(library, "add", "-A")
    git(library, "commit", "-q", "-m", "library")
    root = make_project(
        pipeline=SUBMODULE_PIPELINE, files={"Dockerfile.template": unique_template()}
    )
    subprocess.run(
        ["git", "-C", str(root), "-c", "protocol.file.allow=always", "submodule", "add", "-q",
         str(library), "lib"],
        check=True, capture_output=True,
    )  # fmt: skip
    git(root, "commit", "-q", "-m", "the library as a submodule")

    done = aeromancy(root, local_store_url, "run", "--tracker", "none")

    assert done.returncode == 0, done.stdout + done.stderr
    (record,) = records(local_store_url)
    store = open_store(local_store_url)
    folder = store.materialize(store.resolve("value", "demo"), tmp_path / "out")
    assert (folder / "value.txt").read_text() == "42"
    forget_images(record)
