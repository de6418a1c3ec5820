"""Code packages on both store backends: real git repositories, real stores (no Docker)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from aeromancy.environments.code_package import (
    fetch,
    find,
    materialized_path,
    package_key,
    publish,
)
from aeromancy.errors import StoreDamaged, UsageError
from aeromancy.launcher.git_gate import check_committed_tree
from aeromancy.store import open_store
from aeromancy.store.blobs import BLOBS_PREFIX

Git = Callable[..., str]


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return its stdout."""
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    allow_file = ["-c", "protocol.file.allow=always"]
    return subprocess.run(
        ["git", "-C", str(repo), *identity, *allow_file, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """Return a git repository at ``root`` with ``files`` committed on branch main."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change", "--allow-empty")


def blob_count(store_url: str) -> int:
    return len(open_store(store_url).backend.list_prefix(BLOBS_PREFIX))


def test_publish_stores_the_tree_and_materializes_it_read_only(
    tmp_path: Path, store_url: str
) -> None:
    root = make_repo(tmp_path / "demo", {"pipeline.py": "X = 1\n", "pkg/util.py": "Y = 2\n"})
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("pkg/util.py", root / "util_link.py")
    (root / ".gitignore").write_text("ignored.txt\n")
    (root / "ignored.txt").write_text("not committed")
    write(root, {})
    store = open_store(store_url)

    package = publish(store, "demo", check_committed_tree(root))

    assert store.backend.exists(package_key("demo", package.commit))
    assert package.digest.startswith("sha256:")
    folder = materialized_path(package.digest)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        ".gitignore", "pipeline.py", "pkg", "pkg/util.py", "run.sh", "util_link.py",
    ]  # fmt: skip
    assert (folder / "pkg/util.py").read_text() == "Y = 2\n"
    assert os.readlink(folder / "util_link.py") == "pkg/util.py"
    assert stat.S_IMODE((folder / "pipeline.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((folder / "run.sh").stat().st_mode) == 0o555
    assert find(store, "demo", package.commit) == package


def test_the_same_tree_gives_the_same_digest_and_a_code_change_uploads_one_blob(
    tmp_path: Path, store_url: str
) -> None:
    root = make_repo(tmp_path / "demo", {"a.py": "A = 1\n", "b.py": "B = 1\n"})
    store = open_store(store_url)
    first = publish(store, "demo", check_committed_tree(root))
    write(root, {})  # an empty commit: another commit, the same tree
    again = publish(store, "demo", check_committed_tree(root))
    assert again.commit != first.commit
    assert again.digest == first.digest
    blobs = blob_count(store_url)

    write(root, {"b.py": "B = 2\n"})
    changed = publish(store, "demo", check_committed_tree(root))

    assert changed.digest != first.digest
    assert blob_count(store_url) == blobs + 1  # only the changed file went up


def test_another_machine_fetches_the_package_from_the_store(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "demo", {"pipeline.py": "X = 1\n", "data/rows.csv": "1,2\n"})
    package = publish(open_store(store_url), "demo", check_committed_tree(root))
    monkeypatch.setenv("AEROMANCY_CACHE", str(tmp_path / "other-machine-cache"))
    assert not materialized_path(package.digest).exists()

    folder = fetch(open_store(store_url), "demo", package.commit, package.digest)

    assert folder == materialized_path(package.digest)
    assert (folder / "data/rows.csv").read_text() == "1,2\n"
    assert (folder / "pipeline.py").read_text() == "X = 1\n"


def test_a_project_in_a_subdirectory_packs_only_that_directory(
    tmp_path: Path, store_url: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"top.txt": "x\n", "proj/pipeline.py": "X = 1\n"})
    package = publish(open_store(store_url), "demo", check_committed_tree(repo / "proj"))
    assert [entry.path for entry in package.files] == ["pipeline.py"]


def test_committed_submodules_are_part_of_the_package(tmp_path: Path, store_url: str) -> None:
    library = make_repo(tmp_path / "library", {"shared/__init__.py": "VALUE = 42\n"})
    inner = make_repo(tmp_path / "inner", {"deep.py": "DEEP = 1\n"})
    git(library, "submodule", "add", "-q", str(inner), "vendor/inner")
    git(library, "commit", "-q", "-m", "nested submodule")
    root = make_repo(tmp_path / "demo", {"pipeline.py": "import shared\n"})
    git(root, "submodule", "add", "-q", str(library), "lib")
    git(root, "submodule", "update", "--init", "--recursive", "-q")
    git(root, "commit", "-q", "-m", "add the library")

    package = publish(open_store(store_url), "demo", check_committed_tree(root))

    paths = {entry.path for entry in package.files}
    assert {"lib/shared/__init__.py", "lib/vendor/inner/deep.py", ".gitmodules"} <= paths
    folder = materialized_path(package.digest)
    assert (folder / "lib/shared/__init__.py").read_text() == "VALUE = 42\n"


def test_a_submodule_not_checked_out_is_refused_in_one_line(tmp_path: Path, store_url: str) -> None:
    library = make_repo(tmp_path / "library", {"shared.py": "VALUE = 42\n"})
    source = make_repo(tmp_path / "source", {"pipeline.py": "import shared\n"})
    git(source, "submodule", "add", "-q", str(library), "lib")
    git(source, "commit", "-q", "-m", "add the library")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(source), str(clone))  # without --recurse-submodules

    with pytest.raises(UsageError) as caught:
        publish(open_store(store_url), "demo", check_committed_tree(clone))

    assert "submodule lib is not checked out" in str(caught.value)
    assert "git submodule update --init --recursive" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_package_that_does_not_match_its_digest_is_refused(
    tmp_path: Path, local_store_url: str
) -> None:
    root = make_repo(tmp_path / "demo", {"pipeline.py": "X = 1\n"})
    package = publish(open_store(local_store_url), "demo", check_committed_tree(root))
    key_path = Path(local_store_url) / package.key
    key_path.write_text(key_path.read_text().replace('"size": 6', '"size": 7'))

    with pytest.raises(StoreDamaged, match="does not match its digest"):
        find(open_store(local_store_url), "demo", package.commit)


def test_gc_deletes_the_packages_no_record_uses_and_keeps_the_others(
    tmp_path: Path, store_url: str
) -> None:
    from aeromancy.store.gc import GcOptions, collect

    root = make_repo(tmp_path / "demo", {"pipeline.py": "X = 1\n", "shared.py": "S = 1\n"})
    store = open_store(store_url)
    used = publish(store, "demo", check_committed_tree(root))
    write(root, {"pipeline.py": "X = 2\n"})
    unused = publish(store, "demo", check_committed_tree(root))
    record = {"run_id": "r1", "git_commit": used.commit, "code_package": used.digest}
    store.put_run_record("demo", "r1", record)

    dry = collect(store.backend, GcOptions(dry_run=True, grace_seconds=0))
    assert dry.code_packages == [unused.key]
    assert store.backend.exists(unused.key)
    report = collect(store.backend, GcOptions(grace_seconds=0))

    assert report.code_packages == [unused.key]
    assert not store.backend.exists(unused.key)
    assert find(store, "demo", used.commit) == used
    assert store.has_blobs(entry.sha256 for entry in used.files)
    (changed,) = [entry for entry in unused.files if entry.path == "pipeline.py"]
    assert not store.has_blobs([changed.sha256])  # its own blob went; shared.py's stayed
    write(root, {"pipeline.py": "X = 3\n"})
    fresh = publish(store, "demo", check_committed_tree(root))
    young = collect(store.backend, GcOptions())  # within the grace period: maybe a live run
    assert young.code_packages == []
    assert store.backend.exists(fresh.key)


def test_rerun_takes_the_recorded_package_else_says_it_packs_from_git(
    tmp_path: Path, store_url: str
) -> None:
    import io

    from rich.console import Console

    from aeromancy.launcher.rerun import recorded_code

    root = make_repo(tmp_path / "demo", {"pipeline.py": "X = 1\n"})
    store = open_store(store_url)
    package = publish(store, "demo", check_committed_tree(root))
    said = io.StringIO()
    console = Console(file=said, width=300)
    record = {"run_id": "r1", "git_commit": package.commit, "code_package": package.digest}

    assert recorded_code(store, "demo", record, console) == package
    assert said.getvalue() == ""
    older = {"run_id": "r0", "git_commit": package.commit}  # a record from before packages
    assert recorded_code(store, "demo", older, console) is None
    store.backend.delete(package.key)
    assert recorded_code(store, "demo", record, console) is None

    assert said.getvalue().splitlines() == [
        f"code from git: no code package of run r0 is recorded; packing commit "
        f"{package.commit[:12]} from the repository",
        f"code from git: code package {package.digest[7:19]} of run r1 is not in the store; "
        f"packing commit {package.commit[:12]} from the repository",
    ]
