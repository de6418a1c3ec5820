"""The naming rule shared by artifacts and tasks (W&B-compatible)."""

from __future__ import annotations

import re

from aeromancy.errors import InvalidName

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_valid_name(name: str) -> bool:
    """Return True when ``name`` may name an artifact, task or project."""
    return NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str, kind: str = "artifact") -> str:
    """Return ``name`` unchanged, or raise InvalidName saying what is allowed."""
    if not is_valid_name(name):
        raise InvalidName(
            f"invalid {kind} name {name!r}",
            "names start with a letter or digit and use only letters, digits, '_', '.', '-'",
        )
    return name
