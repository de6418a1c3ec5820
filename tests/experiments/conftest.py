"""Fixtures for the experiments suites: a real git project with a diamond graph, a CLI driver."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
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
name = "exp"
version = "0.1.0"

[tool.aeromancy]
project = "exp"
tasks = "pipeline.py"
"""

# A diamond: prepare feeds train and baseline, report reads both.
PIPELINE = """\
import json

from aeromancy import Context, task


@task(outputs=["data"])
def prepare(ctx: Context, rows: int = 4) -> None:
    path = ctx.workdir / "data.json"
    path.write_text(json.dumps(list(range(rows))))
    ctx.save("data", path)


@task(inputs=["data"], outputs=["model"])
def train(ctx: Context, lr: float = 0.1, optimizer: dict = {"name": "sgd", "beta": 0.9}) -> None:
    data = json.loads((ctx.load("data") / "data.json").read_text())
    for step in range(3):
        ctx.log({"loss": lr * (3 - step), "accuracy": 0.5 + 0.1 * step + lr}, step=step)
    path = ctx.workdir / "model.json"
    path.write_text(json.dumps({"w": sum(data) * lr, "opt": optimizer}))
    ctx.save("model", path)


@task(inputs=["data"], outputs=["baseline"])
def baseline(ctx: Context) -> None:
    data = json.loads((ctx.load("data") / "data.json").read_text())
    path = ctx.workdir / "baseline.json"
    path.write_text(json.dumps({"mean": sum(data) / len(data)}))
    ctx.save("baseline", path)


@task(inputs=["model", "baseline"], outputs=["report"])
def report(ctx: Context) -> None:
    model = json.loads((ctx.load("model") / "model.json").read_text())
    base = json.loads((ctx.load("baseline") / "baseline.json").read_text())
    ctx.log({"gain": model["w"] - base["mean"]})
    path = ctx.workdir / "report.txt"
    path.write_text(f"{model['w']} {base['mean']}")
    ctx.save("report", path)
"""


@dataclass
class Project:
    """The experiments demo project in a real git repository."""

    root: Path
    store_url: str
    monkeypatch: pytest.MonkeyPatch

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def commit(self, message: str = "change") -> str:
        repo = git.Repo(self.root)
        repo.git.add(A=True)
        return str(repo.index.commit(message).hexsha)

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """Run ``aeromancy --store URL ARGS`` in the project directory; return the result."""
        self.monkeypatch.chdir(self.root)
        return CliRunner().invoke(
            main, ["--store", self.store_url, *args], env={"COLUMNS": "250", **(env or {})}
        )

    def ok(self, *args: str) -> Result:
        """Run the CLI and assert it exited 0; return the result."""
        result = self.cli(*args)
        assert result.exit_code == 0, result.output
        return result

    def store(self) -> Store:
        return open_store(self.store_url)

    def records(self, namespace: str = "dev") -> list[dict[str, Any]]:
        found = self.store().list_run_records("exp", namespace=namespace)
        return sorted(found, key=lambda r: (r["started"], r["run_id"]))

    def records_of(self, task: str, namespace: str = "dev") -> list[dict[str, Any]]:
        return [r for r in self.records(namespace) if r["task"] == task]


def make_project(root: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """Create the demo project under ``root`` as a committed git repository."""
    root.mkdir(parents=True, exist_ok=True)
    project = Project(root, store_url, monkeypatch)
    project.write("pyproject.toml", PYPROJECT)
    project.write("pipeline.py", PIPELINE)
    repo = git.Repo.init(root)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    project.commit("initial")
    return project


@pytest.fixture
def project(tmp_path: Path, local_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The experiments project with a local store."""
    return make_project(tmp_path / "exp", local_store_url, monkeypatch)


@pytest.fixture
def s3_project(tmp_path: Path, s3_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The experiments project with its store on the loopback S3 server."""
    return make_project(tmp_path / "exp", s3_store_url, monkeypatch)
