"""Messages and help a new user meets first, each checked on the real CLI.

Dev runs need no Docker; the tracked-mode refusals happen before anything is built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main

PIPELINE = """\
from aeromancy import Context, task


@task(outputs={"model": "model"})
def train(ctx: Context) -> None:
    out = ctx.workdir / "model.txt"
    out.write_text("weights")
    ctx.save("model", out)
"""

PYPROJECT = '[project]\nname = "msgs"\nversion = "0.1.0"\ndependencies = []\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "msgs"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "pipeline.py").write_text(PIPELINE)
    monkeypatch.setenv("AEROMANCY_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(root)
    return root


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "-C", str(root), *identity, *args], check=True, capture_output=True)


def only_line(result: Result) -> str:
    (line,) = result.stderr.strip().splitlines()
    return line


def test_rerun_of_a_dev_run_says_it_is_a_dev_run_not_that_there_is_none(project: Path) -> None:
    assert cli("run", "--dev").exit_code == 0
    listed = cli("runs")
    run_id = listed.stdout.splitlines()[2].split()[0]
    result = cli("rerun", run_id)
    assert result.exit_code == 2
    line = only_line(result)
    assert f"run {run_id} is a --dev run; only tracked runs can be rerun" in line
    assert "no run" not in line


def test_rerun_of_an_unknown_run_still_says_no_run(project: Path) -> None:
    result = cli("rerun", "20000101-000000-00000000")
    assert result.exit_code == 2
    assert "no run 20000101-000000-00000000" in only_line(result)


def test_show_by_bare_name_finds_a_dev_only_artifact(project: Path) -> None:
    assert cli("run", "--dev").exit_code == 0
    result = cli("show", "model")
    assert result.exit_code == 0, result.output
    assert "msgs/model:dev1" in result.stdout
    assert "model.txt" in result.stdout


def test_an_http_store_url_points_at_s3_and_aws_endpoint_url(project: Path) -> None:
    result = cli("--store", "http://127.0.0.1:9000/bucket", "artifacts")
    assert result.exit_code == 2
    line = only_line(result)
    assert "s3://BUCKET/PREFIX" in line
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:9000" in line


def test_one_dirty_file_is_this_file_and_pdm_lock_is_never_to_be_ignored(project: Path) -> None:
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    (project / "pdm.lock").write_text("# made by hand\n")
    result = cli("run")
    assert result.exit_code == 2
    line = only_line(result)
    assert "untracked: pdm.lock" in line
    assert "commit or stash this file, or use --dev" in line
    assert ".gitignore" not in line
    assert "1 file" not in line

    (project / "notes.txt").write_text("scratch\n")
    (project / "pdm.lock").unlink()
    (project / "more.txt").write_text("scratch\n")
    two = only_line(cli("run"))
    assert "commit or stash these 2 files, add to .gitignore, or use --dev" in two


def test_a_missing_task_module_points_at_aeromancy_init(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "from aeromancy.cli import main; main()", "run", "--dev"],
        cwd=empty,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "task module pipeline.py not found" in result.stderr
    assert "`aeromancy init`" in result.stderr


@pytest.mark.parametrize(
    "argv", [["run", "--dev", "--debug"], ["--debug", "run", "--dev"]], ids=["after", "before"]
)
def test_debug_shows_debug_logs_wherever_it_is_given(project: Path, argv: list[str]) -> None:
    command = [sys.executable, "-c", "from aeromancy.cli import main; main()"]
    plain = subprocess.run([*command, "run", "--dev"], capture_output=True, text=True, check=False)
    assert plain.returncode == 0, plain.stderr
    assert "DEBUG:" not in plain.stderr
    debug = subprocess.run(
        [*command, *argv, "--force"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert debug.returncode == 0, debug.stderr
    assert "DEBUG:" in debug.stderr


def test_runs_limit_has_help() -> None:
    help_text = cli("runs", "--help").stdout
    assert "-n, --limit N  Show at most N runs (the newest)." in help_text


def test_rerun_tracker_help_names_no_option_rerun_lacks() -> None:
    help_text = cli("rerun", "--help").stdout
    assert "--tracker" in help_text
    assert "--dev" not in help_text
    assert "no such option" in cli("rerun", "--dev", "x").output.lower()


def test_run_help_says_what_a_tracked_run_needs() -> None:
    help_text = " ".join(cli("run", "--help").stdout.split())
    assert "a clean git tree" in help_text
    assert "pdm.lock committed and matching pyproject.toml" in help_text
    assert "a Docker engine and the base image" in help_text
    assert "aeromancy base-image" in help_text
