"""Artifact references: ``name``, ``name:latest``, ``name:vN``, ``name:devN``, ``proj/name:vN``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aeromancy.errors import InvalidName
from aeromancy.names import check_name
from aeromancy.store.manifest import Namespace

_VERSION = re.compile(r"(v|dev)([1-9][0-9]*)")


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``version`` None means the newest; ``project`` None the default."""

    name: str
    project: str | None = None
    version: int | None = None
    namespace: Namespace | None = None

    def display(self, default_project: str) -> str:
        """Return the reference as text with its project filled in."""
        label = "latest" if self.version is None else f"{_label(self.namespace)}{self.version}"
        return f"{self.project or default_project}/{self.name}:{label}"


def _label(namespace: Namespace | None) -> str:
    return "dev" if namespace == "dev" else "v"


def parse_ref(text: str) -> Reference:
    """Return the reference ``text`` spells; raise InvalidName saying the accepted forms."""
    body, colon, version_text = text.partition(":")
    project, _, name = body.rpartition("/")
    if "/" in project:
        raise _bad(text)
    check_name(name, "artifact")
    if project:
        check_name(project, "project")
    if colon and not version_text:
        raise _bad(text)
    if not version_text or version_text == "latest":
        return Reference(name=name, project=project or None)
    match = _VERSION.fullmatch(version_text)
    if match is None:
        raise _bad(text)
    namespace: Namespace = "dev" if match.group(1) == "dev" else "tracked"
    return Reference(name, project or None, int(match.group(2)), namespace)


def _bad(text: str) -> InvalidName:
    return InvalidName(
        f"invalid artifact reference {text!r}",
        "use NAME, NAME:latest, NAME:vN, NAME:devN or PROJECT/NAME:vN",
    )
