"""``aeromancy run --sweep/--repeat``: plan the variants, run them, summarise each."""

from __future__ import annotations

from collections.abc import Sequence

import click

from aeromancy.cli.output import print_error, print_warning, stderr_console, stdout_console
from aeromancy.cli.run import INTERRUPTED, RunProgress, print_failures, print_summary
from aeromancy.cli.state import CliState
from aeromancy.errors import TaskFailed, UsageError
from aeromancy.execution.backend import LocalBackend
from aeromancy.execution.executor import BackendFactory, Executor, raise_for_results
from aeromancy.execution.interpreter import project_python
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome
from aeromancy.execution.process import ChildProcesses
from aeromancy.experiments.params import Layer
from aeromancy.experiments.sweep_run import determinism, run_sweep
from aeromancy.experiments.sweeps import check_request, declared_sweep, parse_axes, plan_sweep
from aeromancy.planning import Plan
from aeromancy.run_options import RunOptions
from aeromancy.settings import read_pyproject
from aeromancy.store.run_packs import RunPacker
from aeromancy.tracking.base import Tracker


def run_swept(
    state: CliState,
    options: RunOptions,
    base: Plan,
    layers: Sequence[Layer],
    *,
    invocation: Invocation,
    tracker: Tracker,
    backend: BackendFactory = LocalBackend,
) -> None:
    """Run every variant of the sweep; raise TaskFailed (exit 1) if a task failed."""
    err = stderr_console()
    axes = parse_axes(options.sweeps)
    repeat = options.repeat
    if options.sweep_from is not None:
        declared, declared_repeat = declared_sweep(
            read_pyproject(state.settings.root), options.sweep_from
        )
        axes = [*declared, *axes]
        repeat = repeat if repeat is not None else declared_repeat
    keys = [axis.key for axis in axes]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise UsageError(f"--sweep {twice[0]} is given twice", "once in the option or the table")
    count = check_request(axes, repeat, options.overrides, options.yes)
    sweep = plan_sweep(base, axes, repeat, options.overrides, layers)
    err.print(f"{count} variants; shared tasks: {', '.join(sweep.shared.order) or 'none'}")
    # One set of task processes (one fork server) and one run pack for every variant.
    children = ChildProcesses(project_python(invocation.root))
    packer = RunPacker(state.store.backend, invocation.namespace, invocation.project)
    try:
        with RunProgress(err) as progress:

            def make_executor(plan: Plan, inv: Invocation) -> Executor:
                return Executor(
                    plan,
                    state.store,
                    inv,
                    tracker,
                    listener=progress,
                    warn=lambda message: print_warning(err, message),
                    children=children,
                    backend=backend,
                    packer=packer,
                )

            def stop() -> None:
                children.stop_all()
                everywhere = getattr(backend, "stop_everywhere", None)  # a cluster's
                if everywhere is not None:
                    everywhere()

            results = run_sweep(sweep, invocation, make_executor, stop=stop)
    except KeyboardInterrupt:
        print_error(err, "interrupted: every running task was stopped; nothing of theirs is kept")
        raise click.exceptions.Exit(INTERRUPTED) from None
    finally:
        children.close()
    packer.close()
    rows = results.rows()
    out = stdout_console()
    print_summary(out, rows)
    for found in determinism(results):
        where = f"{found.task} [{found.point}]" if found.point else found.task
        if found.deterministic:
            out.print(f"{where}: deterministic (identical outputs across seeds)", markup=False)
        else:
            files = ", ".join(found.differing)
            out.print(f"{where}: nondeterministic (differ across seeds: {files})", markup=False)
    print_failures(err, rows)
    raise_for_results(rows)
    failed = [name for name, result in rows.items() if result.outcome is Outcome.FAILED]
    if failed:
        raise TaskFailed(f"task {', '.join(failed)} failed", "see the traceback above")
