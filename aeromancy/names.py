"""The naming rule shared by artifacts and tasks (W&B-compatible)."""

from __future__ import annotations

import re

from aeromancy.errors import InvalidName

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: W&B's limit for artifact names, and far below every store's limit on a key's part.
MAX_NAME_LENGTH = 128


def is_valid_name(name: str) -> bool:
    """Return True when ``name`` may name an artifact, task or project."""
    return len(name) <= MAX_NAME_LENGTH and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str, kind: str = "artifact") -> str:
    """Return ``name`` unchanged, or raise InvalidName saying what is allowed."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"{kind} name {name[:40]!r}... is {len(name)} characters long",
            f"use at most {MAX_NAME_LENGTH} characters",
        )
    if not is_valid_name(name):
        raise InvalidName(
            f"invalid {kind} name {name!r}",
            "names start with a letter or digit and use only letters, digits, '_', '.', '-'",
        )
    return name
