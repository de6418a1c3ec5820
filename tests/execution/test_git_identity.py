"""The git identity of a dev run, read with the git command in real repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from aeromancy.identity import RunIdentity, identity_from_git


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "pdm.lock").write_text("lock\n")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "first line\n\nthe body")
    return root


def test_commit_branch_message_and_a_clean_tree(tmp_path: Path) -> None:
    root = repository(tmp_path)
    found = identity_from_git(root / ".")
    assert found.git_commit == git(root, "rev-parse", "HEAD")
    assert found.git_branch == "main"
    assert found.git_message == "first line"
    assert found.git_dirty is False
    assert found.git_remote == ""
    assert found.lockfile_hash.startswith("sha256:")


def test_a_subdirectory_finds_the_repository(tmp_path: Path) -> None:
    root = repository(tmp_path)
    (root / "sub").mkdir()
    assert identity_from_git(root / "sub").git_commit == git(root, "rev-parse", "HEAD")


def test_untracked_modified_and_staged_files_make_it_dirty(tmp_path: Path) -> None:
    root = repository(tmp_path)
    (root / "new.txt").write_text("x")
    assert identity_from_git(root).git_dirty is True
    (root / "new.txt").unlink()
    (root / "pdm.lock").write_text("changed\n")
    assert identity_from_git(root).git_dirty is True
    git(root, "add", "pdm.lock")
    assert identity_from_git(root).git_dirty is True
    (root / ".gitignore").write_text("ignored.txt\n")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "two")
    (root / "ignored.txt").write_text("x")
    assert identity_from_git(root).git_dirty is False


def test_detached_head_has_no_branch(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "checkout", "--quiet", "--detach")
    found = identity_from_git(root)
    assert found.git_branch == ""
    assert found.git_commit == git(root, "rev-parse", "HEAD")


def test_the_first_remote_is_recorded_without_its_credentials(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "remote", "add", "origin", "https://ci-token:s3cret@example.com/team/repo.git")
    git(root, "remote", "add", "backup", "https://example.org/repo.git")
    found = identity_from_git(root)
    assert "s3cret" not in found.git_remote
    assert found.git_remote.endswith("@example.com/team/repo.git")


def test_no_repository_or_no_commit_gives_an_empty_identity(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert identity_from_git(outside) == RunIdentity()
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    assert identity_from_git(empty) == RunIdentity()
