"""The check that a project name in the store is this project's (see store/owners.py)."""

from __future__ import annotations

from collections.abc import Callable

from aeromancy.cli.output import print_warning, stderr_console
from aeromancy.cli.state import CliState


def check_project(state: CliState, remote: str | None = None) -> Callable[[], None]:
    """Warn in one line when another project owns this project's name in the store.

    Returns what to call once the command has written something: it records this
    project as the owner of a name nobody owned yet. ``remote``: the git remote, when
    the caller already knows it.
    """
    from aeromancy.store.owners import claim, mixing_warning, origin_of, read_owner

    project, backend = state.settings.project, state.store.backend
    here = origin_of(state.settings.root, remote)
    owner = read_owner(backend, project)
    if owner is not None and not owner.same_project(here):
        print_warning(stderr_console(), mixing_warning(project, owner, here))

    def claim_name() -> None:
        if owner is None:
            claim(backend, project, here)

    return claim_name
