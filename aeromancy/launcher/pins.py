"""Locked pins: the ``name==version --hash=...`` lines that ``pdm export`` writes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.utils import canonicalize_name

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_VERSION = re.compile(r"===?\s*([^\s;,\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    """One locked distribution: canonical name, exact version, allowed sha256 hashes."""

    name: str
    version: str
    hashes: frozenset[str]
    marker: str = ""

    def applies_to(self, environment: Mapping[str, str]) -> bool:
        """Return whether the pin's environment marker holds in ``environment`` (True if none)."""
        return not self.marker or Marker(self.marker).evaluate(dict(environment))

    def requirement_line(self) -> str:
        """Return the pin as one requirements line that pip checks with --require-hashes."""
        hashes = " ".join(f"--hash=sha256:{digest}" for digest in sorted(self.hashes))
        return f"{self.name}=={self.version} {hashes}"


def parse_requirements(text: str) -> list[Pin]:
    """Return the pins of a requirements file with hashes (comments and options skipped)."""
    pins: list[Pin] = []
    for statement in _statements(text):
        name_match = _NAME.match(statement)
        version_match = _VERSION.search(statement.split("--hash", 1)[0])
        if name_match is None or version_match is None:
            continue
        requirement = statement.split("--hash", 1)[0]
        marker = requirement.split(";", 1)[1].strip() if ";" in requirement else ""
        pins.append(
            Pin(
                name=str(canonicalize_name(name_match.group(1))),
                version=version_match.group(1),
                hashes=frozenset(_HASH.findall(statement)),
                marker=marker,
            )
        )
    return pins


def _statements(text: str) -> Iterable[str]:
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("-"):
            yield current.strip()
        current = ""
