"""A commit's tree written into a directory: ``git archive``, submodules included.

The files come from git's object store, never the working directory: ``git archive``
of the tree (a tree id, not the commit, so ``export-subst`` cannot stamp commit
details into the bytes: the same tree gives the same files). Each submodule the tree
commits (a gitlink) is archived the same way from its checkout, at the commit the
tree records, under its path; nested submodules too. A submodule that is not checked
out cannot be packed and is refused in one line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aeromancy.errors import InvalidName, UsageError
from aeromancy.store.hashing import CHUNK_SIZE, write_all
from aeromancy.store.paths import check_relative_path


@dataclass(frozen=True)
class TreeFile:
    """One regular file of the tree: relative path, size, sha256 hex, executable bit."""

    path: str
    size: int
    sha256: str
    executable: bool


@dataclass(frozen=True)
class TreeLink:
    """One symbolic link of the tree and the target git stores for it."""

    path: str
    target: str


@dataclass
class ExportedTree:
    """What :func:`export_tree` wrote, sorted by path."""

    files: list[TreeFile]
    links: list[TreeLink]


def export_tree(
    repo: Path, tree: str, dest: Path, *, subdir: str = "", prefix: str = ""
) -> ExportedTree:
    """Write the files of ``tree`` (a tree id of the repository whose top level is
    ``repo``; of its directory ``subdir``) under ``dest``/``prefix``, with every committed
    submodule's files; return what was written.

    git runs at the top level: in a subdirectory, ``git archive`` and ``git ls-tree``
    would keep only the paths under it. Raises UsageError for a submodule that is not
    checked out.
    """
    exported = _extract(repo, tree, dest, prefix)
    for path, commit in submodules(repo, tree):
        checkout = repo / subdir / path
        _check_checkout(checkout, f"{prefix}{path}", commit)
        inner = export_tree(checkout, f"{commit}^{{tree}}", dest, prefix=f"{prefix}{path}/")
        exported.files += inner.files
        exported.links += inner.links
    exported.files.sort(key=lambda entry: entry.path)
    exported.links.sort(key=lambda entry: entry.path)
    return exported


def submodules(repo: Path, tree: str) -> list[tuple[str, str]]:
    """Return (path, commit) of each gitlink in ``tree``, sorted by path."""
    listed = _git(repo, "ls-tree", "-r", "-z", tree)
    found = []
    for entry in listed.stdout.decode().split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        _mode, kind, object_id = meta.split(" ")
        if kind == "commit":
            found.append((path, object_id))
    return sorted(found)


def _check_checkout(checkout: Path, shown: str, commit: str) -> None:
    top = _git(checkout, "rev-parse", "--show-toplevel", check=False)
    inside = top.returncode == 0 and Path(top.stdout.decode().strip()) == checkout.resolve()
    if (
        not inside
        or _git(checkout, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode
    ):
        raise UsageError(
            f"submodule {shown} is not checked out at its committed {commit[:12]}, so its "
            "code cannot reach the container",
            "run `git submodule update --init --recursive`, then try again",
        )


def _extract(where: Path, tree: str, dest: Path, prefix: str) -> ExportedTree:
    """Stream ``git archive`` of ``tree`` into ``dest``, hashing each file as it is written."""
    command = ["git", "-C", str(where), "archive", "--format=tar", tree]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    exported = ExportedTree([], [])
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                _place(archive, member, dest, prefix, exported)
    except tarfile.TarError as exc:
        raise UsageError(f"git archive of {tree} in {where} is unreadable: {exc}") from exc
    finally:
        stderr = process.stderr.read() if process.stderr is not None else b""
        process.stdout.close()
        code = process.wait()
    if code != 0:
        raise UsageError(f"git archive of {tree} in {where} failed: {stderr.decode().strip()}")
    return exported


def _place(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    dest: Path,
    prefix: str,
    exported: ExportedTree,
) -> None:
    if member.type in (tarfile.XGLTYPE, tarfile.XHDTYPE) or member.name == "pax_global_header":
        return
    relative = prefix + member.name.rstrip("/")
    try:
        check_relative_path(relative)
    except InvalidName as exc:
        raise UsageError(
            f"the committed tree holds a path Aeromancy cannot pack: {relative!r}",
            "rename it in git",
        ) from exc
    target = dest / relative
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if member.issym():
        os.symlink(member.linkname, target)
        exported.links.append(TreeLink(relative, member.linkname))
    elif member.isfile():
        handle = archive.extractfile(member)
        assert handle is not None
        digest = _write(handle, target)
        exported.files.append(TreeFile(relative, member.size, digest, bool(member.mode & 0o100)))


def _write(source: IO[bytes], target: Path) -> str:
    digest = hashlib.sha256()
    with open(target, "xb", buffering=0) as writer:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
            write_all(writer, memoryview(chunk))
    return digest.hexdigest()


def _git(where: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, check=False)
    if check and done.returncode != 0:
        raise UsageError(f"git {args[0]} in {where} failed: {done.stderr.decode().strip()}")
    return done
