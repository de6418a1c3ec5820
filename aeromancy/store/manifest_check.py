"""Checking a manifest against its key and its own content before anything uses it.

A manifest is trusted only when it is well-formed JSON of the expected shape, names
the very project, artifact, namespace and version its key does, lists each file
once with a normalised relative path, a size (an integer >= 0) and a sha256 (64
lowercase hex), and its ``digest`` is the digest of that list. Anything else is
damage (exit 3). Whether each blob really holds its bytes is checked when it is
read (the cache hashes every blob before use).
"""

from __future__ import annotations

import json
from typing import Any

from aeromancy.errors import InvalidName, StoreDamaged
from aeromancy.store.layout import blob_key
from aeromancy.store.manifest import MANIFEST_FORMAT, ArtifactVersion, FileEntry, Namespace
from aeromancy.store.paths import check_relative_path


class _Problem(Exception):
    """What is wrong with a manifest, in a few words."""


def parse_manifest(
    data: bytes,
    where: str,
    expected: tuple[Namespace, str, str, int],
) -> ArtifactVersion:
    """Return the version ``data`` describes, checked against (namespace, project, name, number).

    ``where`` names the manifest in messages. Raises StoreDamaged (exit 3).
    """
    try:
        version = _parse(data)
        _check_identity(version, expected)
    except _Problem as exc:
        raise StoreDamaged(
            f"the store is damaged: manifest {where} {exc}",
            "delete that manifest or restore it from a backup",
        ) from exc
    return version


def _parse(data: bytes) -> ArtifactVersion:
    try:
        doc = _document(data)
        files = tuple(_file_entry(item) for item in _field(doc, "files", list))
        version = ArtifactVersion.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise _Problem(f"is unreadable: {exc}") from exc
    if doc.get("format") != MANIFEST_FORMAT:
        raise _Problem(f"has format {doc.get('format')!r}, not {MANIFEST_FORMAT}")
    for key, kind in (("project", str), ("name", str), ("type", str), ("digest", str)):
        _field(doc, key, kind)
    if not isinstance(doc.get("metadata") or {}, dict):
        raise _Problem("has metadata that is not a JSON object")
    paths = [entry.path for entry in files]
    if len(set(paths)) != len(paths):
        raise _Problem("lists a file twice")
    if doc["digest"] != version.digest:
        raise _Problem("has a digest that does not match its file list")
    return version


def _document(data: bytes) -> dict[str, Any]:
    """Return the manifest's JSON object; raise ValueError when it is not one."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def _field(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Problem(f"has no valid {key!r}")
    return value


def _file_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise _Problem("lists a file that is not a JSON object")
    path, size, sha256 = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str):
        raise _Problem("lists a file without a path")
    try:
        check_relative_path(path)
    except InvalidName as exc:
        raise _Problem(f"lists a bad path: {exc.message}") from exc
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Problem(f"gives {path!r} an invalid size {size!r}")
    if not isinstance(sha256, str):
        raise _Problem(f"gives {path!r} no sha256")
    try:
        blob_key(sha256)
    except InvalidName as exc:
        raise _Problem(f"gives {path!r} an invalid sha256 {sha256!r}") from exc
    return FileEntry(path, size, sha256)


def _check_identity(version: ArtifactVersion, expected: tuple[Namespace, str, str, int]) -> None:
    namespace, project, name, number = expected
    found = (version.namespace, version.project, version.name, version.version)
    if found != expected:
        raise _Problem(
            f"describes {version.project}/{version.name} {version.namespace} {version.version},"
            f" not {project}/{name} {namespace} {number} as its key says"
        )
