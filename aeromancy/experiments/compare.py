"""Comparing two run records: their output files and their environment facts.

``aeromancy rerun --verify`` and ``aeromancy diff`` both read these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aeromancy.records import version_of_entry

if TYPE_CHECKING:
    from aeromancy.store import Store

# Environment facts compared when outputs differ: (label, where in the record).
ENVIRONMENT_FACTS = (
    ("image id", ("image_id",)),
    ("base image", ("base_image_id",)),
    ("lockfile", ("lockfile_hash",)),
    ("Debian packages", ("environment", "debian_packages")),
    ("Python", ("environment", "python", "version")),
)


@dataclass(frozen=True)
class Difference:
    """One way two runs differ: an output file, or an environment fact."""

    what: str
    original: str
    rerun: str


def compare_outputs(
    store: Store, original: Mapping[str, Any], again: Mapping[str, Any]
) -> list[Difference]:
    """Return every output file whose sha256 differs, or that only one run has ([] if none)."""
    before, after = output_files(store, original), output_files(store, again)
    differences = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path, "missing"), after.get(path, "missing")
        if old != new:
            differences.append(Difference(path, short(old), short(new)))
    return differences


def compare_environments(original: Mapping[str, Any], again: Mapping[str, Any]) -> list[Difference]:
    """Return each environment fact (image, base image, lockfile, packages) that changed."""
    differences = []
    for label, path in ENVIRONMENT_FACTS:
        old, new = dig(original, path), dig(again, path)
        if old != new:
            differences.append(Difference(label, short(old), short(new)))
    return differences


def output_files(store: Store, record: Mapping[str, Any]) -> dict[str, str]:
    """Return the sha256 of every file of the record's outputs, keyed ``output/path``."""
    files: dict[str, str] = {}
    for entry in record.get("outputs") or []:
        version = version_of_entry(store, entry)
        for item in version.files:
            files[f"{version.name}/{item.path}"] = item.sha256
    return files


def dig(record: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """Return the value at ``path`` in ``record`` as text (JSON unless a string), or unknown."""
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None:
        return "unknown"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def short(value: str) -> str:
    """Return a digest as its first 12 hex digits; other long text cut to 80 characters."""
    if value.startswith("sha256:"):
        value = value[7:]
    return value[:12] if len(value) == 64 else (value if len(value) <= 80 else value[:77] + "...")
