"""Two different projects with one name in one store: the second is warned, in one line.

Real git repositories in temp folders, real ``aeromancy push`` and ``run --dev`` on
both backends.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main
from aeromancy.store.owners import normalise_remote

PIPELINE = """
from aeromancy import task

@task(outputs=["out"])
def make(ctx):
    (ctx.workdir / "f.txt").write_text("made")
    ctx.save("out", ctx.workdir)
"""


class RawAccess(Protocol):
    def keys(self, prefix: str = "") -> list[str]: ...


def make_project(folder: Path, remote: str | None) -> Path:
    """A project named demo in ``folder``: a git repository with ``remote`` (None: no git)."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "data.txt").write_text(f"data of {folder.name}")
    if remote is not None:
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
        subprocess.run(["git", "-C", str(folder), "remote", "add", "origin", remote], check=True)
    return folder


def cli(monkeypatch: pytest.MonkeyPatch, where: Path, store_url: str, *args: str) -> Result:
    monkeypatch.chdir(where)
    result = CliRunner().invoke(main, ["--store", store_url, *args])
    assert result.exit_code == 0, result.output
    return result


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "belongs to another project" in line]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://example.invalid/acme/one.git", "https://example.invalid/acme/two.git"),
        (None, None),  # two folders, no git: told apart by their roots
    ],
    ids=["other-remote", "no-git"],
)
def test_a_second_project_with_the_same_name_is_warned_in_one_line(
    *,
    store_url: str,
    raw: RawAccess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: str | None,
    second: str | None,
) -> None:
    one = make_project(tmp_path / "one", first)
    two = make_project(tmp_path / "two", second)

    claimed = cli(monkeypatch, one, store_url, "push", "data", "data.txt")
    pushed = cli(monkeypatch, two, store_url, "push", "data", "data.txt")
    ran = cli(monkeypatch, two, store_url, "run", "--dev")
    again = cli(monkeypatch, one, store_url, "push", "data", "data.txt")

    assert warnings(claimed) == []
    [line] = warnings(pushed)
    assert line.startswith("warning: project name 'demo' in this store belongs to another")
    assert str(one.resolve()) in line
    assert (first or "no git remote").removesuffix(".git").split("//")[-1] in line
    assert "delete projects/demo.json from the store" in line
    assert len(warnings(ran)) == 1
    assert warnings(again) == []
    assert "projects/demo.json" in raw.keys("projects/")


def test_clones_of_one_repository_are_one_project(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = make_project(tmp_path / "ana" / "demo", "git@example.invalid:acme/demo.git")
    https = make_project(tmp_path / "ben" / "work", "https://ben@Example.invalid/acme/demo/")

    first = cli(monkeypatch, ssh, store_url, "push", "data", "data.txt")
    second = cli(monkeypatch, https, store_url, "run", "--dev")

    assert warnings(first) == warnings(second) == []


def test_the_owner_is_recorded_only_once_something_was_written(
    store_url: str, raw: RawAccess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo", "https://example.invalid/acme/demo.git")
    monkeypatch.chdir(project)

    refused = CliRunner().invoke(main, ["--store", store_url, "push", "data", "missing.txt"])
    assert refused.exit_code == 2
    assert raw.keys("") == []

    cli(monkeypatch, project, store_url, "push", "data", "data.txt")
    [key] = raw.keys("projects/")
    assert key == "projects/demo.json"


def test_the_owner_file_names_remote_root_and_host_and_no_secret(
    local_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo", "https://ci:s3cret@example.invalid/acme/demo.git")

    cli(monkeypatch, project, local_store_url, "push", "data", "data.txt")

    owner = json.loads((Path(local_store_url) / "projects" / "demo.json").read_text())
    assert owner["remote"] == "example.invalid/acme/demo"
    assert owner["root"] == str(project.resolve())
    assert owner["host"] == socket.gethostname()
    assert "s3cret" not in json.dumps(owner)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:Acme/demo.git", "github.com/Acme/demo"),
        ("https://github.com/Acme/demo", "github.com/Acme/demo"),
        ("https://user:secret@GitHub.com/Acme/demo.git/", "github.com/Acme/demo"),
        ("ssh://git@github.com/Acme/demo.git", "github.com/Acme/demo"),
        ("https://git.example.com:8443/a/b.git", "git.example.com:8443/a/b"),
        ("/srv/git/demo.git", "/srv/git/demo"),
        ("", ""),
    ],
)
def test_remotes_are_compared_without_scheme_user_or_dot_git(url: str, expected: str) -> None:
    assert normalise_remote(url) == expected
