"""Which stored code packages the run records use: what ``aeromancy gc`` may delete.

A run record names its package by ``git_commit`` (the key, ``code/<project>/<commit>.json``)
and ``code_package`` (the digest). A package no record names, older than the grace
period, is unused: a run publishes its package before it writes any record, so a
young package may belong to a run still going.
"""

from __future__ import annotations

import json
import time

from aeromancy.store.backend import Backend

CODE_PREFIX = "code/"  # code/<project>/<commit>.json (see code_package.py)
RUNS_PREFIX = "runs/"  # tracked records only: dev runs have no code package


def code_packages_in_use(backend: Backend) -> set[str]:
    """Return the keys of the code packages that run records name (an unreadable record
    names none)."""
    used: set[str] = set()
    for key in backend.list_prefix(RUNS_PREFIX):
        project = key[len(RUNS_PREFIX) :].split("/", 1)[0]
        data = backend.read_bytes(key) if key.endswith(".json") else None
        try:
            record = json.loads(data) if data is not None else {}
            commit, digest = record.get("git_commit"), record.get("code_package")
        except (ValueError, AttributeError):
            continue
        if isinstance(commit, str) and isinstance(digest, str) and digest:
            used.add(f"{CODE_PREFIX}{project}/{commit}.json")
    return used


def unused_code_packages(backend: Backend, grace_seconds: float) -> list[str]:
    """Return the keys of stored code packages no record names, older than ``grace_seconds``."""
    used = code_packages_in_use(backend)
    cutoff = time.time() - grace_seconds
    return [
        info.key
        for info in backend.list_objects(CODE_PREFIX)
        if info.key.endswith(".json") and info.key not in used and info.modified < cutoff
    ]
