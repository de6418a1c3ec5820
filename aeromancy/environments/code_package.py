"""Code packages: a commit's tree in the store, mounted read-only where tasks run.

A tracked run's code no longer goes into an image. :func:`publish` (on the host,
before ``docker run``) stores the committed tree of the project directory, committed
submodules included, as a **code package**:

```
code/<project>/<commit>.json     the package: every file's path, size, sha256, exec bit,
                                 every symlink, and the package digest
blobs/sha256/<2 hex>/<64 hex>    each file's bytes, shared with every other package
```

The package **digest** (``sha256:<hex>``) is the sha256 of the canonical file list
(see :func:`package_digest`): the same tree gives the same digest on every machine,
whatever the commit. A code-only commit uploads only the files it changed.

How a container gets the code: :func:`materialize` writes the package's files into
the local cache, ``<cache>/code-packages/<64 hex of the digest>/`` (files read-only, made once
per digest, in a temporary folder renamed into place, so a reader sees all or
nothing), and returns that path. The launcher publishes, which also materializes,
and bind-mounts the folder **read-only at /app** (``-v <that path>:/app:ro``), the
project root inside the container; the environment image holds no project code.
Anything else that runs tasks in the environment image (a Dask worker, say) calls
:func:`fetch` with the ``project``, ``git_commit`` and ``code_package`` the launcher
passes in the run identity (``AEROMANCY_RUN_*``), inside its container (the store
and ``AEROMANCY_CACHE`` reachable there), and uses the returned folder as the
project root, or mounts it read-only at /app when it starts the container itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeromancy.environments.code_tree import ExportedTree, TreeFile, TreeLink, export_tree
from aeromancy.errors import NotFound, StoreDamaged
from aeromancy.launcher.git_gate import CommittedTree
from aeromancy.leftovers import abandoned, owner
from aeromancy.names import check_name
from aeromancy.settings import default_cache_dir
from aeromancy.store import Store, gc
from aeromancy.store.blobs import BlobStore
from aeromancy.store.paths import SourceFile, check_relative_path
from aeromancy.store.progress import transfer_progress

CODE_PREFIX = "code/"
FORMAT = 1
PART_PREFIX = ".part-"
PACKAGES_DIR = "code-packages"  # under the cache; its code/ holds compiled task modules
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class CodePackage:
    """One stored code package: which commit's tree it holds, and its files and links."""

    project: str
    commit: str
    tree: str
    digest: str  # sha256:<hex> of the canonical file list
    files: tuple[TreeFile, ...]
    links: tuple[TreeLink, ...] = ()

    @property
    def key(self) -> str:
        """Return the store key of this package."""
        return package_key(self.project, self.commit)

    def to_json(self) -> bytes:
        """Return the stored form (deterministic: the same package gives the same bytes)."""
        document = {
            "format": FORMAT,
            "project": self.project,
            "commit": self.commit,
            "tree": self.tree,
            "digest": self.digest,
            "files": [_file_json(entry) for entry in self.files],
            "links": [{"path": link.path, "target": link.target} for link in self.links],
        }
        return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def package_key(project: str, commit: str) -> str:
    """Return ``code/<project>/<commit>.json``; InvalidName for a bad project or commit."""
    if _COMMIT.fullmatch(commit) is None:
        raise NotFound(f"not a git commit id: {commit!r}", "give the full commit id")
    return f"{CODE_PREFIX}{check_name(project, 'project')}/{commit}.json"


def package_digest(files: Sequence[TreeFile], links: Sequence[TreeLink]) -> str:
    """Return ``sha256:<hex>`` of the canonical list of ``files`` and ``links``.

    Canonical: compact JSON, sorted keys, entries sorted by path; a file is its path,
    size, sha256 and exec bit, a link its path and target.
    """
    canonical = {
        "files": [_file_json(entry) for entry in sorted(files, key=lambda f: f.path)],
        "links": [[link.path, link.target] for link in sorted(links, key=lambda k: k.path)],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def materialized_path(digest: str) -> Path:
    """Return where the files of the package ``digest`` are (or would be) on this machine."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise NotFound(f"not a code package digest: {digest!r}", "give sha256:<64 hex digits>")
    return default_cache_dir().expanduser().resolve() / PACKAGES_DIR / match.group(1)


def publish(store: Store, project: str, committed: CommittedTree) -> CodePackage:
    """Store the code package of ``committed`` unless the store has it; return it.

    Its files are also left materialized here (see :func:`materialize`). Raises
    UsageError for a submodule that is not checked out, StoreDamaged when the store
    holds another package for the same commit.
    """
    found = find(store, project, committed.commit)
    if found is not None:
        materialize(store, found)
        return found
    with _scratch() as scratch:
        exported = export_tree(
            committed.repo_root, committed.tree, scratch, subdir=committed.subdir
        )
        package = _package_of(project, committed, exported)
        since = time.time()  # a gc running from now on may delete a blob found present
        _upload(store, package, scratch)
        if not store.backend.create(package.key, package.to_json()):
            _same_as_stored(store, package)
        _settle_with_gc(store, package, scratch, since)
        _install(scratch, materialized_path(package.digest), package.files)
    return package


def find(store: Store, project: str, commit: str) -> CodePackage | None:
    """Return the stored package of ``commit``, or None when the store has none.

    Raises StoreDamaged for a package that does not match its key or its digest.
    """
    key = package_key(project, commit)
    data = store.backend.read_bytes(key)
    return None if data is None else parse_package(data, key, (project, commit))


def fetch(store: Store, project: str, commit: str, digest: str) -> Path:
    """Return the materialized folder of the package ``digest`` of ``commit``.

    Raises NotFound when the store has no package of that commit and StoreDamaged
    when the one it has is not ``digest``.
    """
    ready = materialized_path(digest)
    if ready.is_dir():
        return ready
    package = find(store, project, commit)
    if package is None:
        raise NotFound(
            f"the code package of commit {commit[:12]} is not in the store {store.describe()}",
            "run the pipeline once from that commit on a machine that has it",
        )
    if package.digest != digest:
        raise StoreDamaged(
            f"the code package of commit {commit[:12]} in {store.describe()} is "
            f"{package.digest[:19]}, not the recorded {digest[:19]}",
            f"remove {package.key} from the store and run from that commit again",
        )
    return materialize(store, package)


def materialize(store: Store, package: CodePackage) -> Path:
    """Return the folder holding ``package``'s files, writing it from the store if absent.

    Every blob is verified against its sha256 (through the read cache) before use.
    """
    target = materialized_path(package.digest)
    if target.is_dir():
        return target
    wanted = {entry.sha256: entry.size for entry in package.files}
    workers = max(1, min(store.workers, len(wanted)))
    with (
        transfer_progress(f"code package {package.digest[7:19]}", sum(wanted.values())) as bar,
        ThreadPoolExecutor(workers) as pool,
    ):
        fetched = pool.map(lambda digest: store.cache.fetch(digest, bar, wanted[digest]), wanted)
        cached = dict(zip(wanted, fetched, strict=True))
    with _scratch() as scratch:
        for entry in package.files:
            destination = scratch / entry.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached[entry.sha256], destination)
        for link in package.links:
            (scratch / link.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link.target, scratch / link.path)
        _install(scratch, target, package.files)
    return target


def parse_package(data: bytes, key: str, expected: tuple[str, str]) -> CodePackage:
    """Return the package stored at ``key``; StoreDamaged unless it is well formed, of
    ``expected`` (project, commit), and its files give its digest."""
    try:
        document: Any = json.loads(data)
        files = tuple(
            TreeFile(check_relative_path(str(f["path"])), int(f["size"]), str(f["sha256"]),
                     bool(f["executable"]))
            for f in document["files"]
        )  # fmt: skip
        links = tuple(
            TreeLink(check_relative_path(str(k["path"])), str(k["target"]))
            for k in document["links"]
        )
        package = CodePackage(
            str(document["project"]), str(document["commit"]), str(document["tree"]),
            str(document["digest"]), files, links,
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise _damaged(key, f"is unreadable ({exc})") from exc
    if (package.project, package.commit) != expected:
        raise _damaged(key, f"describes {package.project}@{package.commit[:12]}")
    if package_digest(files, links) != package.digest:
        raise _damaged(key, "does not match its digest")
    return package


def _damaged(key: str, problem: str) -> StoreDamaged:
    return StoreDamaged(
        f"the store is damaged: the code package {key} {problem}",
        "remove it; the next tracked run from that commit stores it again",
    )


def _package_of(project: str, committed: CommittedTree, tree: ExportedTree) -> CodePackage:
    digest = package_digest(tree.files, tree.links)
    return CodePackage(
        project, committed.commit, committed.tree, digest, tuple(tree.files), tuple(tree.links)
    )


def _upload(store: Store, package: CodePackage, scratch: Path) -> None:
    """Store each file's blob that the store lacks (no stat cache: scratch files are
    written once and gone)."""
    blobs = BlobStore(store.backend, store.workers)
    sources = [SourceFile(entry.path, scratch / entry.path, entry.size) for entry in package.files]
    with transfer_progress(
        f"storing code package {package.digest[7:19]}", sum(e.size for e in package.files)
    ) as progress:
        stored = blobs.put_files(sources, progress)
    for entry, blob in zip(package.files, stored, strict=True):
        if blob.sha256 != entry.sha256:
            raise StoreDamaged(f"{entry.path} changed while its code package was stored")


def _same_as_stored(store: Store, package: CodePackage) -> None:
    """A package for this commit was stored meanwhile (a concurrent run): it must agree."""
    stored = find(store, package.project, package.commit)
    if stored is None or stored.digest != package.digest:
        raise StoreDamaged(
            f"the store holds another code package for commit {package.commit[:12]} "
            f"({stored.digest[:19] if stored else 'unreadable'}, here {package.digest[:19]})",
            f"remove {package.key} from the store and run again",
        )


def _settle_with_gc(store: Store, package: CodePackage, scratch: Path, since: float) -> None:
    """If a gc ran since ``since``, put back any of the package's blobs it removed."""
    if not gc.overlapped(store.backend, since):
        return
    gc.wait_for_gc(store.backend)
    if not store.has_blobs(entry.sha256 for entry in package.files):
        _upload(store, package, scratch)


class _scratch:  # a context manager, named like tempfile's
    """A temporary folder next to the materialized packages, named by its owner."""

    def __enter__(self) -> Path:
        root = default_cache_dir().expanduser().resolve() / PACKAGES_DIR
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{PART_PREFIX}{owner()}-", dir=root))
        return self.folder / "tree"

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _sweep(root: Path) -> None:
    """Remove the temporary folders of processes that died while writing a package."""
    for entry in root.glob(f"{PART_PREFIX}*"):
        try:
            if abandoned(entry.name, entry.stat().st_mtime):
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _install(scratch: Path, target: Path, files: Sequence[TreeFile]) -> None:
    """Make the files read-only and rename ``scratch`` to ``target`` (first writer wins)."""
    scratch.mkdir(parents=True, exist_ok=True)
    executable = {entry.path for entry in files if entry.executable}
    for path in scratch.rglob("*"):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(scratch).as_posix()
            path.chmod(0o555 if relative in executable else 0o444)
    try:
        os.rename(scratch, target)
    except OSError:
        if not target.is_dir():
            raise


def _file_json(entry: TreeFile) -> dict[str, Any]:
    return {
        "path": entry.path,
        "size": entry.size,
        "sha256": entry.sha256,
        "executable": entry.executable,
    }
