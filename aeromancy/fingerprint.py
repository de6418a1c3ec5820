"""Fingerprints: what must match for an earlier run of a task to stand in for a new one.

Fingerprint = task name + code identity + resolved config + exact input digests +
environment key. The code identity hashes the source of the task's module and of every
project-local module it imports, followed transitively. Imports are read from the
source (:mod:`aeromancy.import_names`) rather than from ``sys.modules``, so the answer
does not depend on what happened to be imported first, and modules outside the project
(the standard library, installed packages) never count: upgrading those is the
environment key's job.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeromancy.cache_files import write_atomically
from aeromancy.import_names import imported_names


@dataclass(frozen=True)
class CodeIdentity:
    """The project files a task's code consists of (relative POSIX paths) and their hash."""

    digest: str
    files: tuple[str, ...]
    # (path, sha256) of each file, so a change can be named.
    file_digests: tuple[tuple[str, str], ...] = ()


#: ``json.dumps(sort_keys=True, separators=(",", ":"))``, made once: dumps builds an
#: encoder on each call with options, half the time of a fingerprint.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

#: Part of the key of the on-disk import cache: a new scan does not reuse an old one's
#: answers (version 2 reads bytecode, which leaves statically dead imports out).
_SCAN_VERSION = b"imports-v2\0"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fingerprint(
    task: str,
    code: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str],
    environment: str,
) -> str:
    """Return ``sha256:<hex>`` over the canonical JSON of the five parts.

    ``inputs`` maps each input reference to the digest of the exact version used.
    """
    document = {
        "task": task,
        "code": code,
        "config": config,
        "inputs": dict(sorted(inputs.items())),
        "environment": environment,
    }
    return _sha256(_CANONICAL.encode(document).encode())


class CodeScanner:
    """Finds the project-local modules a module imports, with results cached per file.

    ``search_path`` holds the directories project modules are imported from; a module
    counts as project-local when its file lies under ``root``.
    """

    def __init__(
        self, root: Path, search_path: Sequence[Path], cache_dir: Path | None = None
    ) -> None:
        self.root = root.resolve()
        self.search_path = [p.resolve() for p in search_path]
        self.cache_dir = cache_dir
        self._imports: dict[Path, tuple[Path, ...]] = {}
        self._digests: dict[Path, str] = {}
        self._identities: dict[Path, CodeIdentity] = {}
        self._modules: dict[str, CodeIdentity] = {}

    def identity_of_module(self, module_name: str, path: str | None = None) -> CodeIdentity:
        """Return the code identity of a module: of its file ``path`` (default: the file of
        the module imported under that name), or of its name when it has no file."""
        if module_name not in self._modules:
            if path is None:
                path = getattr(sys.modules.get(module_name), "__file__", None)
            if path:
                self._modules[module_name] = self.identity(Path(path).resolve())
            else:
                self._modules[module_name] = CodeIdentity(_sha256(module_name.encode()), ())
        return self._modules[module_name]

    def identity(self, path: Path) -> CodeIdentity:
        """Return the identity of the module file ``path`` and its project-local imports."""
        if path not in self._identities:
            files = sorted(self._closure(path))
            listing = [[self._relative(file), self._digests[file]] for file in files]
            blob = json.dumps(listing, separators=(",", ":")).encode()
            pairs = tuple((relative, digest) for relative, digest in listing)
            self._identities[path] = CodeIdentity(
                _sha256(blob), tuple(r for r, _ in listing), pairs
            )
        return self._identities[path]

    def _relative(self, file: Path) -> str:
        if file.is_relative_to(self.root):
            return file.relative_to(self.root).as_posix()
        return file.as_posix()

    def _closure(self, start: Path) -> set[Path]:
        seen = {start}
        stack = [start]
        while stack:
            for found in self._local_imports(stack.pop()):
                if found not in seen:
                    seen.add(found)
                    stack.append(found)
        return seen

    def _local_imports(self, path: Path) -> tuple[Path, ...]:
        if path not in self._imports:
            source = path.read_bytes()
            self._digests[path] = _sha256(source)
            names = self._imported_names(path, source, self._package_of(path))
            found = (self._find(name) for name in names)
            self._imports[path] = tuple(dict.fromkeys(f for f in found if f is not None))
        return self._imports[path]

    def _imported_names(self, path: Path, source: bytes, package: str) -> list[str]:
        """Return the names ``source`` imports, from the on-disk cache when it has them.

        Parsing a large module costs far more than reading one small JSON file, and the
        answer depends only on the source and its package.
        """
        if self.cache_dir is None:
            return list(imported_names(path, source, package))
        key = hashlib.sha256(_SCAN_VERSION + source + b"\0" + package.encode()).hexdigest()
        cached = self.cache_dir / "imports" / f"{key}.json"
        try:
            return list(json.loads(cached.read_bytes()))
        except (OSError, ValueError):
            pass
        names = list(dict.fromkeys(imported_names(path, source, package)))
        write_atomically(cached, json.dumps(names).encode())
        return names

    def _package_of(self, path: Path) -> str:
        """Return the dotted package ``path`` belongs to, '' for a top-level module."""
        for directory in self.search_path:
            if path.is_relative_to(directory):
                parts = path.relative_to(directory).with_suffix("").parts
                return ".".join(parts[:-1])
        return ""

    def _find(self, dotted: str) -> Path | None:
        """Return the project file of module ``dotted``, or None when it is not project-local."""
        parts = dotted.split(".")
        for directory in self.search_path:
            base = directory.joinpath(*parts)
            for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
                if candidate.is_file():
                    resolved = candidate.resolve()
                    return resolved if resolved.is_relative_to(self.root) else None
        return None


def task_module_search_path(root: Path, tasks: str) -> list[Path]:
    """Return where the task module ``tasks`` finds project modules: ``root``, ``root/src``,
    and the module file's own directory when ``tasks`` is a path."""
    project = [root, root / "src"]
    return [(root / tasks).parent, *project] if tasks.endswith(".py") else project
