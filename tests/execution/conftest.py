"""Fixtures for the executor suites: a real git project in a temp dir and a CLI driver."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main
from aeromancy.store import Store, open_store

PYPROJECT = """\
[project]
name = "demo"
version = "0.1.0"

[tool.aeromancy]
project = "demo"
tasks = "pipeline.py"
"""

# A diamond (evaluate reads raw and model) plus a helper module the tasks import.
PIPELINE = """\
import json

import helpers

from aeromancy import Context, task


@task(outputs={"raw": "dataset"})
def ingest(ctx: Context, rows: int = 5) -> None:
    path = ctx.workdir / "raw.txt"
    path.write_text("\\n".join(str(i) for i in range(rows)))
    ctx.save("raw", path)


@task(inputs=["raw"], outputs={"model": "model"})
def train(ctx: Context, scale: float = 1.0) -> None:
    values = [int(x) for x in (ctx.load("raw") / "raw.txt").read_text().split()]
    for step in range(3):
        ctx.log({"loss": 1.0 / (step + scale)}, step=step)
    out = ctx.workdir / "model.json"
    out.write_text(json.dumps({"w": helpers.weight(values) * scale}))
    ctx.save("model", out, metadata={"scale": scale})


@task(inputs=["raw", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    rows = len((ctx.load("raw") / "raw.txt").read_text().split())
    model = json.loads((ctx.load("model") / "model.json").read_text())
    ctx.log({"rows": rows})
    out = ctx.workdir / "report.txt"
    out.write_text(f"rows={rows} w={model['w']}")
    ctx.save("report", out)
"""

HELPERS = "def weight(values):\n    return sum(values) / len(values)\n"


@dataclass
class Project:
    """A demo project in a real git repository, and a way to run the CLI inside it."""

    root: Path
    store_url: str
    monkeypatch: pytest.MonkeyPatch

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def commit(self, message: str = "change") -> None:
        repo = git.Repo(self.root)
        repo.git.add(A=True)
        repo.index.commit(message)

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """Run ``aeromancy --store URL ARGS`` in the project directory; return the result."""
        self.monkeypatch.chdir(self.root)
        return CliRunner().invoke(
            main, ["--store", self.store_url, *args], env={"COLUMNS": "250", **(env or {})}
        )

    def store(self) -> Store:
        return open_store(self.store_url)

    def records(self, namespace: str = "dev") -> list[dict[str, Any]]:
        return self.store().list_run_records("demo", namespace=namespace)

    def records_of(self, task: str, namespace: str = "dev") -> list[dict[str, Any]]:
        return [r for r in self.records(namespace) if r["task"] == task]

    def labels(self, name: str, namespace: str = "dev") -> list[str]:
        return [v.label for v in self.store().list_versions("demo", name, namespace=namespace)]

    def store_is_empty(self) -> bool:
        store = self.store()
        return all(
            not store.list_run_records("demo", namespace=space)
            and not store.list_artifacts("demo", namespace=space)
            for space in ("dev", "tracked")
        )


def make_project(
    root: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, pipeline: str = PIPELINE
) -> Project:
    """Create the demo project under ``root`` as a committed git repository."""
    root.mkdir(parents=True, exist_ok=True)
    project = Project(root, store_url, monkeypatch)
    project.write("pyproject.toml", PYPROJECT)
    project.write("pipeline.py", pipeline)
    project.write("helpers.py", HELPERS)
    project.write("README.md", "# demo\n")
    repo = git.Repo.init(root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    project.commit("initial")
    return project


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The demo project, with its store on each backend in turn."""
    return make_project(tmp_path / "demo", store_url, monkeypatch)


@pytest.fixture
def local_project(tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The demo project with a local store only (for checks that do not involve the store)."""
    return make_project(tmp_path / "demo", local_store_url, monkeypatch)


ProjectFactory = Callable[[str], Project]


@pytest.fixture
def project_with(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> ProjectFactory:
    """Return a factory making the demo project with another pipeline.py."""

    def make(pipeline: str) -> Project:
        return make_project(tmp_path / "demo", store_url, monkeypatch, textwrap.dedent(pipeline))

    return make


@pytest.fixture
def local_project_with(
    tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> ProjectFactory:
    """Return a factory making the demo project with another pipeline.py, local store only."""

    def make(pipeline: str) -> Project:
        return make_project(
            tmp_path / "demo", local_store_url, monkeypatch, textwrap.dedent(pipeline)
        )

    return make
