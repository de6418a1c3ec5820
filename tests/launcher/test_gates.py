"""The git gate and the lockfile gate, on real git repositories and the real pdm."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.errors import DirtyTree, InfrastructureError, LockfileError, UsageError
from aeromancy.launcher import launch_tracked_run
from aeromancy.launcher.engine import docker_client
from aeromancy.launcher.git_gate import check_committed_tree
from aeromancy.launcher.lockfile import check_lockfile, pdm_executable
from aeromancy.run_options import RunOptions
from aeromancy.settings import load_settings

ProjectFactory = Callable[..., Path]
Git = Callable[..., str]


def _images_of(project: str) -> list[str]:
    """Return the tags of the project's images, or [] when no engine answers."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        return [tag for image in client.images.list(f"aeromancy/{project}") for tag in image.tags]
    except Exception:
        return []


def unique() -> str:
    """Return a project name no image has yet (images are listed to prove none was built)."""
    return f"p{uuid.uuid4().hex[:8]}"


def _refused(root: Path, error: type[Exception], match: str) -> None:
    settings = load_settings(root)
    with pytest.raises(error, match=match) as caught:
        launch_tracked_run(settings, RunOptions(tasks="pipeline.py"))
    assert caught.value.exit_code == 2  # type: ignore[attr-defined]
    assert _images_of(settings.project) == []


def test_modified_file_is_refused_and_listed(make_project: ProjectFactory) -> None:
    root = make_project(name=unique())
    (root / "pipeline.py").write_text("# edited\n")
    _refused(root, DirtyTree, r"modified: pipeline\.py.*commit or stash this file, add to")


def test_untracked_file_is_refused_and_listed(make_project: ProjectFactory) -> None:
    root = make_project(name=unique())
    (root / "notes").mkdir()
    (root / "notes" / "todo.md").write_text("x")
    _refused(root, DirtyTree, r"untracked: notes/todo\.md.*add to \.gitignore, or use --dev")


def test_staged_file_is_refused_and_listed(make_project: ProjectFactory, git: Git) -> None:
    root = make_project(name=unique())
    (root / "extra.py").write_text("x = 1\n")
    git(root, "add", "extra.py")
    _refused(root, DirtyTree, r"staged added: extra\.py")


def test_every_dirty_path_is_listed(make_project: ProjectFactory, git: Git) -> None:
    root = make_project()
    (root / "pipeline.py").write_text("# edited\n")
    (root / "new.txt").write_text("x")
    (root / "staged.txt").write_text("x")
    git(root, "add", "staged.txt")
    with pytest.raises(DirtyTree) as caught:
        check_committed_tree(root)
    message = str(caught.value)
    assert "modified: pipeline.py" in message
    assert "untracked: new.txt" in message
    assert "staged added: staged.txt" in message
    assert "these 3 files" in message


def test_ignored_files_do_not_count(make_project: ProjectFactory, git: Git) -> None:
    root = make_project()
    (root / "ignored.txt").write_text("scratch")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0")
    committed = check_committed_tree(root)
    assert committed.commit == git(root, "rev-parse", "HEAD").strip()
    assert committed.branch == "main"
    assert committed.subdir == ""


def test_project_in_a_subdirectory_builds_from_that_directory(
    tmp_path: Path, git: Git, commit: Git
) -> None:
    repo = tmp_path / "repo"
    (repo / "ml").mkdir(parents=True)
    (repo / "ml" / "pipeline.py").write_text("")
    git(repo, "init", "-q", "-b", "main")
    commit(repo)
    committed = check_committed_tree(repo / "ml")
    assert committed.subdir == "ml"
    assert committed.tree == git(repo, "rev-parse", "HEAD:ml").strip()


def test_no_git_repository_has_its_own_message(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "{unique()}"\n')
    _refused(tmp_path, UsageError, r"not inside a git repository.*git init.*--dev")


def test_repository_without_commits_has_its_own_message(
    make_project: ProjectFactory,
) -> None:
    root = make_project(name=unique(), commit=False)
    _refused(root, UsageError, r"no commits yet.*commit the project first")


def test_detached_head_has_its_own_message(make_project: ProjectFactory, git: Git) -> None:
    root = make_project(name=unique())
    git(root, "checkout", "-q", "--detach")
    _refused(root, UsageError, r"HEAD is detached.*git switch -c")
    assert check_committed_tree(root, allow_detached=True).branch == ""


def test_missing_git_binary_has_its_own_message(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    monkeypatch.setenv("PATH", str(root))  # a PATH without git
    with pytest.raises(UsageError, match="git is not installed"):
        check_committed_tree(root)


def test_missing_lockfile_is_refused(make_project: ProjectFactory) -> None:
    root = make_project(name=unique(), lock=False)
    _refused(root, LockfileError, r"pdm\.lock is missing.*run `pdm lock`")


def test_stale_lockfile_is_refused(make_project: ProjectFactory, commit: Git) -> None:
    root = make_project(name=unique())
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = []", 'dependencies = ["six"]')
    )
    commit(root, "add a dependency without locking")
    _refused(root, LockfileError, r"pdm\.lock does not match pyproject\.toml.*run `pdm lock`")


def test_ignored_lockfile_is_refused(make_project: ProjectFactory, git: Git, commit: Git) -> None:
    root = make_project()
    git(root, "rm", "-q", "--cached", "pdm.lock")
    (root / ".gitignore").write_text((root / ".gitignore").read_text() + "pdm.lock\n")
    commit(root, "stop tracking the lock")
    committed = check_committed_tree(root)
    with pytest.raises(LockfileError, match="not committed"):
        check_lockfile(root, committed)


def test_fresh_lockfile_passes_and_leaves_the_tree_clean(
    make_project: ProjectFactory, git: Git
) -> None:
    root = make_project()
    committed = check_committed_tree(root)
    check_lockfile(root, committed)
    check_lockfile(root, committed)  # the remembered pass
    assert git(root, "status", "--porcelain", "--ignored") == ""


def test_missing_pdm_is_a_usage_error(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_project(name=unique())  # no remembered lock check
    real_git = shutil.which("git")
    assert real_git is not None
    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(real_git)
    monkeypatch.setenv("PATH", str(only_git))
    # Nor beside the interpreter (where scripts/setup puts it, in .venv/bin).
    monkeypatch.setattr(sys, "executable", str(only_git / "python3"))
    with pytest.raises(UsageError, match="pdm is not on PATH"):
        check_lockfile(root)


def test_pdm_beside_the_interpreter_is_found_without_pdm_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    beside = Path(sys.executable).parent / "pdm"
    if not beside.is_file():
        pytest.skip("pdm is not installed beside this interpreter (pdm sync --group tools)")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pdm_executable() == str(beside)


def test_cli_refuses_a_dirty_tree_with_exit_2(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(name=unique())
    (root / "pipeline.py").write_text("# edited\n")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2
    assert "modified: pipeline.py" in result.output
    assert "or use --dev" in result.output


def test_missing_docker_engine_is_exit_3(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = make_project(name=unique())
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    docker_client.cache_clear()
    try:
        with pytest.raises(InfrastructureError, match="no Docker engine answers") as caught:
            launch_tracked_run(load_settings(root), RunOptions(tasks="pipeline.py"))
    finally:
        docker_client.cache_clear()
    assert caught.value.exit_code == 3
