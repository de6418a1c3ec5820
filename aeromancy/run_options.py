"""The options of ``aeromancy run``, shared by the CLI, the executor and the launcher."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    """Everything ``aeromancy run`` was asked to do, already split from the CLI strings.

    ``overrides`` maps ``task.param`` to the raw string given with ``--set``;
    ``artifact_overrides`` maps an artifact name to a pinned version label (``v3``).
    Launcher-only options (image, container, secrets) are never stored in a record.
    """

    tasks: str
    dev: bool = False
    only: tuple[str, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()
    force: bool = False
    tags: tuple[str, ...] = ()
    artifact_overrides: tuple[tuple[str, str], ...] = ()
    tracker: str | None = None  # "wandb" | "none"; None = wandb when tracked, none in --dev
    jobs: int = 1
    debug: bool = False
    debug_shell: bool = False
    extra_debian_packages: tuple[str, ...] = ()
    extra_docker_run_args: str = ""
    extra_env_vars: tuple[str, ...] = ()

    @property
    def tracker_name(self) -> str:
        """Return the tracker to use after defaults: wandb when tracked, none in --dev."""
        if self.tracker:
            return self.tracker
        return "none" if self.dev else "wandb"
