"""``aeromancy run``: run the task graph, tracked in a container or ``--dev`` on the host."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType

import click
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from aeromancy.cli.output import (
    column,
    print_error,
    print_heading,
    print_table,
    print_warning,
    stderr_console,
    stdout_console,
    table,
)
from aeromancy.cli.owner import check_project
from aeromancy.cli.state import CliState
from aeromancy.errors import TaskFailed, UsageError
from aeromancy.execution.backend import LocalBackend
from aeromancy.execution.executor import BackendFactory, Executor, raise_for_results
from aeromancy.execution.invocation import Invocation, invocation_id
from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.experiments.params import load_layers
from aeromancy.identity import RunIdentity, dev_environment_key, identity_from_git
from aeromancy.launcher import inside_container, launch_tracked_run
from aeromancy.planning import Plan, build_plan, load_graph
from aeromancy.run_options import RunOptions
from aeromancy.store.manifest import Namespace
from aeromancy.tracking import TRACKERS, make_tracker
from aeromancy.tracking.base import Tracker
from aeromancy.tracking.none import NoneTracker

# The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def split_assignments(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Return ``--set KEY=VALUE`` options as (key, raw value) pairs."""
    pairs = []
    for value in values:
        key, equals, raw = value.partition("=")
        if not equals or not key:
            raise UsageError(f"--set {value}: expected TASK.PARAM=VALUE")
        pairs.append((key.strip(), raw))
    return tuple(pairs)


def split_pins(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Return ``--artifact-override NAME:vN`` options as (name, label) pairs."""
    pairs = []
    for value in values:
        name, colon, label = value.rpartition(":")
        if not colon or not name or not label:
            raise UsageError(f"--artifact-override {value}: expected NAME:vN")
        pairs.append((name, label))
    return tuple(pairs)


def split_commas(values: Iterable[str]) -> tuple[str, ...]:
    """Return comma-separated option values (repeatable) as one flat tuple."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


class RunProgress:
    """A spinner naming the tasks running now; silent when stderr is not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.running: list[str] = []
        self.lock = threading.Lock()
        self.status: Status | None = None

    def __enter__(self) -> RunProgress:
        if self.console.is_terminal:
            self.status = self.console.status("planning")
            self.status.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status is not None:
            self.status.stop()

    def __call__(self, task: str, result: TaskResult | None) -> None:
        with self.lock:
            if result is None:
                self.running.append(task)
            elif task in self.running:
                self.running.remove(task)
            if self.status is not None:
                self.status.update("running " + (", ".join(self.running) or "…"))


def _outcome_text(result: TaskResult) -> str:
    if result.outcome is Outcome.SKIPPED:
        return "[green]skipped[/] (up to date)"
    if result.outcome is Outcome.RAN and result.infrastructure is not None:
        return "[yellow]ran[/] (record not saved)"
    if result.outcome is Outcome.RAN:
        return "[green]ran[/]"
    if result.outcome is Outcome.FAILED:
        return "[red]failed[/]"
    return f"[yellow]not run[/] (upstream {escape(', '.join(result.blocked_by))} failed)"


def print_summary(console: Console, results: Mapping[str, TaskResult]) -> None:
    """Print one row per task: what happened, the output versions, the run id."""
    rows = table(
        "task", column("result", "text"), column("outputs", "text"), "run", column("why", "text")
    )
    for name, result in results.items():
        outputs = ", ".join(f"{v.name}:{v.label}" for v in result.outputs)
        rows.add_row(
            escape(name),
            _outcome_text(result),
            escape(outputs) or "-",
            result.run_id or "-",
            escape(result.reason) or "-",
        )
    print_table(console, rows)


def print_failures(console: Console, results: Mapping[str, TaskResult]) -> None:
    """Print the traceback of each failed task."""
    for name, result in results.items():
        if result.outcome is Outcome.FAILED:
            print_heading(console, f"task {name} failed")
            console.print(result.error or "", markup=False, highlight=False, soft_wrap=True)


def open_tracker(name: str, warn: Console) -> Tracker:
    """Return the tracker ``name``; a tracker that cannot even start is reported and skipped."""
    try:
        return make_tracker(name)
    except UsageError:
        raise
    except Exception as exc:
        print_warning(
            warn, f"tracker {name} unavailable ({type(exc).__name__}: {exc}); running untracked"
        )
        return NoneTracker()


def run_graph(
    state: CliState,
    options: RunOptions,
    namespace: Namespace,
    identity: RunIdentity,
    environment_key: str,
) -> None:
    """Plan, run and summarise the graph. Raises TaskFailed (exit 1) if a task failed."""
    settings = state.settings
    err = stderr_console()
    # Opened first: the W&B tracker warms up (import, service start) in the background
    # while the task module loads and the plan is checked.
    tracker = open_tracker(options.tracker_name, err)
    graph = load_graph(options.tasks, settings.root, settings.project)
    layers = load_layers(settings.root)
    plan = build_plan(
        graph,
        state.store,
        only=options.only,
        overrides=options.overrides,
        artifact_overrides=options.artifact_overrides,
        namespace=namespace,
        layers=layers,
    )
    with where_tasks_run(state, options, identity, err, plan) as (backend, jobs):
        invocation = Invocation(
            project=settings.project,
            root=settings.root,
            tasks=options.tasks,
            namespace=namespace,
            identity=identity,
            environment_key=environment_key,
            group=invocation_id(),
            tags=options.tags,
            force=options.force,
            jobs=jobs,
        )
        if options.sweeps or options.sweep_from or options.repeat is not None:
            from aeromancy.cli.sweep import run_swept

            run_swept(
                state, options, plan, layers, invocation=invocation, tracker=tracker,
                backend=backend,
            )  # fmt: skip
            return
        results = _run_plan(
            state, plan, invocation=invocation, tracker=tracker, backend=backend, err=err
        )
    print_summary(stdout_console(), results)
    print_failures(err, results)
    raise_for_results(results)
    failed = [name for name, result in results.items() if result.outcome is Outcome.FAILED]
    if failed:
        raise TaskFailed(f"task {', '.join(failed)} failed", "see the traceback above")


def _run_plan(
    state: CliState,
    plan: Plan,
    *,
    invocation: Invocation,
    tracker: Tracker,
    backend: BackendFactory,
    err: Console,
) -> dict[str, TaskResult]:
    """Run ``plan`` with a progress spinner; Ctrl-C stops every task (exit 130)."""
    try:
        with RunProgress(err) as progress:
            executor = Executor(
                plan,
                state.store,
                invocation,
                tracker,
                listener=progress,
                warn=lambda message: print_warning(err, message),
                backend=backend,
            )
            try:
                return executor.run()
            finally:
                executor.tracker.close()
    except KeyboardInterrupt:
        print_error(err, "interrupted: every running task was stopped; nothing of theirs is kept")
        raise click.exceptions.Exit(INTERRUPTED) from None


@contextlib.contextmanager
def where_tasks_run(
    state: CliState, options: RunOptions, identity: RunIdentity, err: Console, plan: Plan
) -> Iterator[tuple[BackendFactory, int]]:
    """Yield the backend factory and the jobs: local, or on ``options.cluster``'s workers."""
    if options.cluster is None:
        yield LocalBackend, options.jobs
        return
    from aeromancy.cluster.session import (
        backend_factory,
        check_resources_offered,
        connect,
        follow_starts,
        total_threads,
    )

    store = state.settings.store
    given = dict(options.cluster_resources)
    with connect(options.cluster, identity.environment_image_id, store) as client:
        check_resources_offered(client, plan, given)
        threads = total_threads(client)
        err.print(
            f"cluster {options.cluster}: {len(client.scheduler_info()['workers'])} workers, "
            f"{threads} threads",
            markup=False,
            highlight=False,
        )

        def started(task: str, variant: str, worker: str) -> None:
            where = f"{task} [{variant}]" if variant else task
            err.print(f"{where} started on {worker}", markup=False, highlight=False)

        follow_starts(client, started)
        make = backend_factory(client, store, options.tracker_name, given)
        yield make, max(options.jobs, threads)


# Options that `run` and `rerun` share, so both spell and document them alike.
tracker_option = click.option(
    "--tracker",
    type=click.Choice(TRACKERS),
    default=None,
    help="wandb, mlflow or none. Default: [tool.aeromancy] tracker, else wandb; none with --dev.",
)
env_var_option = click.option(
    "--extra-env-var",
    "env_vars",
    multiple=True,
    metavar="VAR",
    help="Pass this variable into the container (never stored).",
)
docker_args_option = click.option(
    "--extra-docker-run-args",
    "docker_args",
    default="",
    metavar="ARGS",
    help="Extra arguments for docker run, split like a shell would.",
)


@click.command("run")
@click.argument("tasks", required=False)
@click.option("--dev", is_flag=True, help="Run on the host; outputs go to the dev namespace.")
@click.option("--only", multiple=True, metavar="NAME[,NAME]", help="Run only these tasks.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="TASK.PARAM=VALUE",
    help="Override a task's config parameter (repeatable).",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="TASK.PARAM=V1,V2",
    help="Run once per value; repeat for a grid of all combinations.",
)
@click.option("--sweep-from", metavar="NAME", help="Run the sweep [tool.aeromancy.sweeps.NAME].")
@click.option("--repeat", type=int, default=None, metavar="N", help="N variants, ctx.seed 0..N-1.")
@click.option("--yes", is_flag=True, help="Run a sweep of more than 10,000 variants.")
@click.option("--force", is_flag=True, help="Run tasks even when they are up to date.")
@click.option("--tags", multiple=True, metavar="A,B", help="Tags for the tracker.")
@click.option(
    "--artifact-override",
    "pins",
    multiple=True,
    metavar="NAME:vN",
    help="Use this version of a stored input (repeatable).",
)
@tracker_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run up to N independent tasks at once.",
)
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
@click.option("--debug-shell", is_flag=True, help="Open a shell in the container instead.")
@click.option(
    "--extra-debian-package",
    "debian_packages",
    multiple=True,
    metavar="PKG",
    help="Install this Debian package in the image (repeatable).",
)
@click.option(
    "--cluster",
    metavar="tcp://HOST:PORT",
    default=None,
    help="Run the tasks on this Dask scheduler's workers (tracked runs only). "
    "Default: AEROMANCY_CLUSTER, else [tool.aeromancy] cluster.",
)
@click.option(
    "--cluster-resources",
    "cluster_resources",
    multiple=True,
    metavar="NAME=N[,NAME=N]",
    help="Worker resources every task run needs on the cluster, over @task(resources=...).",
)
@docker_args_option
@env_var_option
@click.pass_context
def run(
    ctx: click.Context,
    *,
    tasks: str | None,
    dev: bool,
    only: tuple[str, ...],
    assignments: tuple[str, ...],
    sweeps: tuple[str, ...],
    sweep_from: str | None,
    repeat: int | None,
    yes: bool,
    force: bool,
    tags: tuple[str, ...],
    pins: tuple[str, ...],
    tracker: str | None,
    jobs: int,
    debug: bool,
    debug_shell: bool,
    debian_packages: tuple[str, ...],
    docker_args: str,
    env_vars: tuple[str, ...],
    cluster: str | None,
    cluster_resources: tuple[str, ...],
) -> None:
    """Run the task graph, skipping what is up to date.

    TASKS is a .py file or a dotted module (default: [tool.aeromancy] tasks, else
    pipeline.py).

    \b
    A tracked run (the default) needs:
      - a clean git tree (commit, stash or ignore every change),
      - pdm.lock committed and matching pyproject.toml (`pdm lock`),
      - a Docker engine and the base image ([tool.aeromancy] base_image;
        `aeromancy base-image` builds one where no registry is reachable).
    --dev runs on the host instead and needs none of these.
    """
    state = ctx.find_object(CliState) or CliState()
    state.debug = state.debug or debug
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)
    settings = state.settings
    options = RunOptions(
        tasks=tasks or settings.tasks,
        dev=dev,
        only=split_commas(only),
        overrides=split_assignments(assignments),
        force=force,
        tags=split_commas(tags),
        artifact_overrides=split_pins(pins),
        tracker=tracker or (None if dev else settings.tracker),
        jobs=jobs,
        debug=state.debug,
        debug_shell=debug_shell,
        extra_debian_packages=debian_packages,
        extra_docker_run_args=docker_args,
        extra_env_vars=env_vars,
        sweeps=sweeps,
        sweep_from=sweep_from,
        repeat=repeat,
        yes=yes,
        cluster=_cluster(cluster, dev, settings.cluster),
    )
    options = _with_resources(options, cluster_resources)
    # Task code reads relative paths (data/raw.csv) from the project root.
    os.chdir(settings.root)
    if options.dev:
        identity = identity_from_git(settings.root)
        claim_name = check_project(state, identity.git_remote or None)
        run_graph(state, options, "dev", identity, dev_environment_key(settings.root))
        claim_name()
    elif inside_container():  # the launcher on the host checked the project's name
        identity = RunIdentity.from_environ()
        run_graph(state, options, "tracked", identity, identity.environment_key())
    else:
        if options.tracker_name == "mlflow":  # refused here, before an image is built
            from aeromancy.tracking.mlflow import require_tracking_uri

            require_tracking_uri(os.environ)
        if options.cluster is not None:  # before an image is built, not after
            from aeromancy.cluster.address import check_reachable
            from aeromancy.cluster.session import check_store_kind

            check_store_kind(settings.store)
            check_reachable(options.cluster)
        claim_name = check_project(state)
        code = launch_tracked_run(settings, options)
        if code == 0:
            claim_name()
        ctx.exit(code)


def _with_resources(options: RunOptions, given: tuple[str, ...]) -> RunOptions:
    """Return ``options`` with ``--cluster-resources``; refused (exit 2) without a cluster."""
    if not given:
        return options
    from aeromancy.cluster.resources import parse_resources

    resources = parse_resources(given)
    if options.cluster is None:
        raise UsageError(
            "--cluster-resources needs a cluster (local runs ignore worker resources)",
            "add --cluster tcp://HOST:PORT, or drop --cluster-resources",
        )
    return dataclasses.replace(options, cluster_resources=tuple(sorted(resources.items())))


def _cluster(option: str | None, dev: bool, setting: str) -> str | None:
    """Return the scheduler address of a tracked run (None: run locally).

    ``--cluster`` with ``--dev`` is refused; AEROMANCY_CLUSTER and the setting apply to
    tracked runs only, so a dev run ignores them.
    """
    from aeromancy.cluster.address import choose_address

    if dev:
        if option:
            raise UsageError("--cluster runs tracked runs only", "drop --dev, or --cluster")
        return None
    return choose_address(option, os.environ, setting)


COMMANDS: list[click.Command] = [run]
