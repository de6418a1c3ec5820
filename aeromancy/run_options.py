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
    tracker: str | None = None  # "wandb" | "mlflow" | "none"; None = wandb tracked, none --dev
    jobs: int = 1
    debug: bool = False
    debug_shell: bool = False
    extra_debian_packages: tuple[str, ...] = ()
    extra_docker_run_args: str = ""
    extra_env_vars: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()  # raw ``--sweep TASK.PARAM=V1,V2`` options
    repeat: int | None = None
    yes: bool = False
    sweep_from: str | None = None  # a [tool.aeromancy.sweeps.NAME] table
    cluster: str | None = None  # tcp://HOST:PORT of a Dask scheduler (tracked runs only)
    # Worker resources every task run needs on the cluster, over the task's own.
    cluster_resources: tuple[tuple[str, float], ...] = ()

    @property
    def tracker_name(self) -> str:
        """Return the tracker to use after defaults: wandb when tracked, none in --dev."""
        if self.tracker:
            return self.tracker
        return "none" if self.dev else "wandb"

    def to_argv(self) -> list[str]:
        """Return the ``aeromancy run`` arguments that reproduce these options in a container.

        Launcher-only options (Debian packages, docker args, env vars, debug shell) are left
        out: they shape the container, not the graph run inside it.
        """
        argv = [self.tasks]
        if self.only:
            argv += ["--only", ",".join(self.only)]
        for key, value in self.overrides:
            argv += ["--set", f"{key}={value}"]
        if self.force:
            argv.append("--force")
        if self.tags:
            argv += ["--tags", ",".join(self.tags)]
        for name, label in self.artifact_overrides:
            argv += ["--artifact-override", f"{name}:{label}"]
        for sweep in self.sweeps:
            argv += ["--sweep", sweep]
        if self.sweep_from is not None:
            argv += ["--sweep-from", self.sweep_from]
        if self.repeat is not None:
            argv += ["--repeat", str(self.repeat)]
        if self.yes:
            argv.append("--yes")
        if self.cluster is not None:
            argv += ["--cluster", self.cluster]
        for name, amount in self.cluster_resources:
            argv += ["--cluster-resources", f"{name}={amount!r}"]
        argv += ["--tracker", self.tracker_name, "-j", str(self.jobs)]
        if self.debug:
            argv.append("--debug")
        return argv
