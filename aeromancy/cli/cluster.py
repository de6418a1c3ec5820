"""``aeromancy cluster up/down``: a Dask cluster of the project's image on this machine."""

from __future__ import annotations

import os

import click

from aeromancy.cli.output import stderr_console, stdout_console
from aeromancy.cli.state import CliState
from aeromancy.names import check_name


@click.group("cluster")
def cluster() -> None:
    """Start or stop a Dask scheduler and workers of the project's image on this machine."""


@cluster.command("up")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Per worker."
)
@click.option("--name", default=None, help="The cluster's name. Default: the project's name.")
@click.option(
    "--resources",
    "resources",
    multiple=True,
    metavar="NAME=N[,NAME=N]",
    help="Worker resources each worker advertises (Dask's), e.g. GPU=1.",
)
@click.pass_context
def up(
    ctx: click.Context, workers: int, threads: int, name: str | None, resources: tuple[str, ...]
) -> None:
    """Start a scheduler and N workers as containers of the project's image.

    The image is the tracked run's (the same gates: a clean tree and a current
    pdm.lock). Prints the scheduler's address, for `aeromancy run --cluster`, and
    the dashboard's URL.
    """
    from aeromancy.cluster.containers import (
        ClusterPlan,
        refuse_if_up,
        start_cluster,
        uses_host_network,
    )
    from aeromancy.cluster.resources import describe, parse_resources
    from aeromancy.cluster.session import check_store_kind
    from aeromancy.environments.code_package import materialize, publish
    from aeromancy.launcher.git_gate import check_committed_tree
    from aeromancy.launcher.image import ensure_image, plan_image
    from aeromancy.launcher.lockfile import check_lockfile
    from aeromancy.store import open_store

    offered = parse_resources(resources, "--resources")
    state = ctx.find_object(CliState) or CliState()
    settings = state.settings
    cluster_name = check_name(name or settings.project, "cluster name")
    check_store_kind(settings.store)
    refuse_if_up(cluster_name)  # before an image is built, not after
    err = stderr_console()
    committed = check_committed_tree(settings.root)
    check_lockfile(settings.root, committed)
    recipe = plan_image(
        settings.project, committed, settings.base_image, settings.debian_packages, err,
        repository=settings.image_repository,
    )  # fmt: skip
    store = open_store(settings.store)
    code = publish(store, settings.project, committed)  # mounted at /app: the image has none
    image = ensure_image(recipe, err, store)
    plan = ClusterPlan(
        cluster_name,
        image.id,
        image.environment_id,
        workers,
        threads,
        uses_host_network(settings, os.environ),
        str(materialize(store, code)),
        offered,
    )
    each = f" (each with {describe(offered)})" if offered else ""
    err.print(
        f"starting cluster {cluster_name}: {workers} workers of {recipe.tag}{each}", markup=False
    )
    running = start_cluster(plan, settings, os.environ)
    out = stdout_console()
    out.print(f"scheduler {running.address}", markup=False, highlight=False)
    out.print(f"dashboard {running.dashboard}", markup=False, highlight=False)
    out.print(f"run with: aeromancy run --cluster {running.address}", markup=False, highlight=False)


@cluster.command("down")
@click.option("--name", default=None, help="The cluster's name. Default: the project's name.")
@click.pass_context
def down(ctx: click.Context, name: str | None) -> None:
    """Stop and remove the cluster's containers and network."""
    from aeromancy.cluster.containers import stop_cluster

    state = ctx.find_object(CliState) or CliState()
    cluster_name = check_name(name or state.settings.project, "cluster name")
    removed = stop_cluster(cluster_name)
    if removed:
        stdout_console().print(
            f"cluster {cluster_name} stopped ({removed} containers)", markup=False
        )
    else:
        stdout_console().print(f"no cluster {cluster_name} is up", markup=False)
