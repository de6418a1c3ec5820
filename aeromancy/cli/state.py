"""What the command line shares between the group and its commands."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aeromancy.settings import Settings
    from aeromancy.store import Store


@dataclass
class CliState:
    """Global options, with settings and store opened lazily on first use."""

    store_override: str | None = None
    debug: bool = False

    @cached_property
    def settings(self) -> Settings:
        # Imported here: ``aeromancy --version`` and ``--help`` read no settings (tomllib).
        from aeromancy.settings import load_settings

        return load_settings(store=self.store_override)

    @cached_property
    def store(self) -> Store:
        from aeromancy.store import open_store

        return open_store(self.settings.store)
