"""What the run records name, for garbage collection: gc never deletes what they use.

Every run record of every project, dev and tracked, is read once. A record names:

- the versions it read (``inputs``): ``--keep-last``/``--older-than`` keep them;
- its output log (``log``, a blob's sha256);
- the environment images it ran in (``image_id``, ``environment_image_id``,
  ``base_image_id``) and the code package it ran from (``code_package``, or its
  project and ``git_commit``): gc keeps those images and packages.

A record that cannot be read names nothing gc can see, so while one exists gc deletes
no version, image or code package (only blobs nothing else names), and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aeromancy.store.backend import Backend

RUN_PREFIXES = ("runs/", "dev/runs/")
IMAGE_FIELDS = ("image_id", "environment_image_id", "base_image_id")


@dataclass
class RecordRefs:
    """Everything the readable run records name."""

    #: (project, name, label) of every version a record read.
    inputs: set[tuple[str, str, str]] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    #: Image ids as 64 hex digits (no ``sha256:``).
    images: set[str] = field(default_factory=set)
    #: Code package digests, ``sha256:<hex>``.
    code_packages: set[str] = field(default_factory=set)
    #: (project, commit) of every record.
    commits: set[tuple[str, str]] = field(default_factory=set)
    unreadable: list[str] = field(default_factory=list)


def record_refs(backend: Backend) -> RecordRefs:
    """Read every run record and return what they name."""
    refs = RecordRefs()
    for prefix in RUN_PREFIXES:
        for key in backend.list_prefix(prefix):
            if not key.endswith(".json"):
                continue
            record = _read(backend, key)
            if record is None:
                refs.unreadable.append(key)
                continue
            project = key[len(prefix) :].split("/", 1)[0]
            _add(refs, project, record)
    return refs


def _read(backend: Backend, key: str) -> dict[str, Any] | None:
    data = backend.read_bytes(key)
    if data is None:
        return {}  # deleted since it was listed: names nothing
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _add(refs: RecordRefs, project: str, record: dict[str, Any]) -> None:
    for entry in record.get("inputs") or ():
        if isinstance(entry, dict) and all(k in entry for k in ("project", "name", "label")):
            refs.inputs.add((str(entry["project"]), str(entry["name"]), str(entry["label"])))
    log = record.get("log")
    if isinstance(log, str):
        refs.logs.add(log)
    for name in IMAGE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value:
            refs.images.add(value.removeprefix("sha256:"))
    package = record.get("code_package")
    if isinstance(package, str) and package:
        refs.code_packages.add(package)
    commit = record.get("git_commit")
    if isinstance(commit, str) and commit:
        refs.commits.add((project, commit))
