"""Running a sweep: the shared tasks once, then each variant, ``jobs`` variants at a time.

Each variant is an ordinary executor run of its own plan, whose inputs made by shared
tasks are pinned to the versions the shared run produced or reused, so every consumer
reads its own variant's upstream outputs and never another's. Up-to-date variants are
skipped like any task. All variants share the invocation (one W&B group).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aeromancy.execution.outcomes import Outcome, TaskResult
from aeromancy.experiments.sweeps import SweepPlan, Variant, with_shared_outputs

if TYPE_CHECKING:
    from aeromancy.execution.executor import Executor
    from aeromancy.execution.invocation import Invocation
    from aeromancy.planning import Plan

ExecutorFactory = Callable[["Plan", "Invocation"], "Executor"]
BAD = (Outcome.FAILED, Outcome.NOT_RUN)


@dataclass(frozen=True)
class SweepResults:
    """What the shared run and each variant did, by task."""

    shared: dict[str, TaskResult]
    variants: list[tuple[Variant, dict[str, TaskResult]]]

    def rows(self) -> dict[str, TaskResult]:
        """Return every result keyed as summaries show it: ``task`` or ``task [variant]``."""
        rows = dict(self.shared)
        for variant, results in self.variants:
            rows.update({f"{name} [{variant.label}]": r for name, r in results.items()})
        return rows


def run_sweep(
    sweep: SweepPlan,
    invocation: Invocation,
    make_executor: ExecutorFactory,
    stop: Callable[[], None] = lambda: None,
) -> SweepResults:
    """Run the shared plan, then every variant (``invocation.jobs`` at once).

    On Ctrl-C (KeyboardInterrupt, raised again) ``stop`` ends the running variants'
    task processes and the variants not started yet never start.
    """
    shared = make_executor(sweep.shared, invocation).run() if sweep.shared.order else {}
    failed = tuple(name for name, result in shared.items() if result.outcome in BAD)
    if failed:
        blocked = [(v, _not_run(plan, failed)) for v, plan in sweep.variants]
        return SweepResults(shared, blocked)
    outputs = {name: result.outputs for name, result in shared.items()}
    one_at_a_time = replace(invocation, jobs=1)

    def run_variant(item: tuple[Variant, Plan]) -> tuple[Variant, dict[str, TaskResult]]:
        variant, plan = item
        return variant, make_executor(with_shared_outputs(plan, outputs), one_at_a_time).run()

    with ThreadPoolExecutor(max(1, invocation.jobs)) as pool:
        try:
            done = list(pool.map(run_variant, sweep.variants))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            stop()  # before the pool waits for the variants running
            raise
    return SweepResults(shared, done)


def _not_run(plan: Plan, failed: tuple[str, ...]) -> dict[str, TaskResult]:
    return {name: TaskResult(name, Outcome.NOT_RUN, blocked_by=failed) for name in plan.order}


@dataclass(frozen=True)
class Determinism:
    """Whether a task gave identical output files across the repeats of one grid point."""

    task: str
    point: str
    deterministic: bool
    differing: tuple[str, ...] = ()


def determinism(results: SweepResults) -> list[Determinism]:
    """Return, per task and grid point repeated with seeds, whether its outputs matched."""
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[TaskResult]] = {}
    for variant, by_task in results.variants:
        if variant.seed is None:
            continue
        for name, result in by_task.items():
            if result.outcome in (Outcome.RAN, Outcome.SKIPPED):
                groups.setdefault((name, variant.point), []).append(result)
    report = []
    for (name, point), members in groups.items():
        if len(members) < 2:
            continue
        label = " ".join(f"{k}={v}" for k, v in point)
        differing = _differing_files([_files(m) for m in members])
        report.append(Determinism(name, label, not differing, differing))
    return report


def _files(result: TaskResult) -> dict[str, str]:
    return {f"{v.name}/{f.path}": f.sha256 for v in result.outputs for f in v.files}


def _differing_files(listings: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    paths = sorted({path for listing in listings for path in listing})
    return tuple(p for p in paths if len({listing.get(p) for listing in listings}) > 1)
