"""Sweeps and repeats: the grid of ``--sweep`` values (times ``--repeat`` seeds) as variants.

A variant is one point of the grid. The swept tasks and every task downstream of them
form the variant part of the graph, planned once per variant with that point's values
set last; the tasks upstream of all swept tasks form the shared part, planned once.
With ``--repeat N`` every selected task is in the variant part and each variant's
config gains ``seed`` (0..N-1), which the task reads as ``ctx.seed``.

Everything is checked before anything runs: a bad option is a UsageError (exit 2).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aeromancy.errors import UsageError
from aeromancy.experiments.params import Assignment, Layer, resolve_configs, split_key
from aeromancy.planning import Plan, TaskGraph

if TYPE_CHECKING:
    from aeromancy.store.manifest import ArtifactVersion

SWEEP = "--sweep"
SEED = "seed"
MAX_VARIANTS = 10_000


@dataclass(frozen=True)
class Axis:
    """One ``--sweep KEY=V1,V2,...``: the key and its raw values, in order."""

    key: str
    values: tuple[str, ...]

    @property
    def task(self) -> str:
        return self.key.partition(".")[0]


@dataclass(frozen=True)
class Variant:
    """One point of the grid: its index, the raw value of each axis, and its seed."""

    index: int
    point: tuple[tuple[str, str], ...]
    seed: int | None = None

    @property
    def label(self) -> str:
        """Return how summaries name the variant: ``train.lr=0.1 seed=0``."""
        parts = [f"{key}={raw}" for key, raw in self.point]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return " ".join(parts) or f"variant {self.index}"


@dataclass(frozen=True)
class SweepPlan:
    """The shared plan (run once) and one plan per variant (run after it)."""

    shared: Plan
    variants: tuple[tuple[Variant, Plan], ...]
    repeat: int | None = None


def split_values(raw: str) -> list[str]:
    """Return ``raw`` split at commas outside JSON brackets and quotes: ``[1,2],3`` -> 2 values."""
    values: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in raw:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current))
            current = []
            continue
        current.append(char)
    values.append("".join(current))
    return [value.strip() for value in values]


def parse_axes(options: Iterable[str]) -> list[Axis]:
    """Return the axes of ``--sweep TASK.PARAM=V1,V2`` options; raise UsageError if malformed."""
    axes: list[Axis] = []
    for option in options:
        key, equals, raw = option.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(f"{SWEEP} {option}: expected TASK.PARAM=V1,V2,...")
        split_key(key, raw, SWEEP)
        values = tuple(v for v in split_values(raw) if v != "")
        if not values:
            raise UsageError(f"{SWEEP} {option}: no values", f"e.g. {SWEEP} {key}=0.1,0.2")
        if any(axis.key == key for axis in axes):
            raise UsageError(f"{SWEEP} {key} is given twice", "list all its values in one option")
        axes.append(Axis(key, values))
    return axes


def declared_sweep(pyproject: Mapping[str, Any], name: str) -> tuple[list[Axis], int | None]:
    """Return the axes and repeat count of ``[tool.aeromancy.sweeps.NAME]``.

    Each key but ``repeat`` is ``"TASK.PARAM" = [values]``. Raises UsageError when there
    is no such sweep or it is malformed.
    """
    import json

    declared = pyproject.get("tool", {}).get("aeromancy", {}).get("sweeps", {})
    table = declared.get(name) if isinstance(declared, Mapping) else None
    where = f"[tool.aeromancy.sweeps.{name}]"
    if not isinstance(table, Mapping):
        known = ", ".join(sorted(declared)) if isinstance(declared, Mapping) else ""
        raise UsageError(
            f"--sweep-from {name}: pyproject.toml has no {where}", f"sweeps: {known or 'none'}"
        )
    axes, repeat = [], table.get("repeat")
    if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int)):
        raise UsageError(f"{where} repeat must be a whole number")
    for key, values in table.items():
        if key == "repeat":
            continue
        split_key(str(key), "", where)
        if not isinstance(values, list) or not values:
            raise UsageError(f"{where} {key} must be a non-empty list of values")
        raws = tuple(v if isinstance(v, str) else json.dumps(v) for v in values)
        axes.append(Axis(str(key), raws))
    return axes, repeat


def check_request(
    axes: Sequence[Axis], repeat: int | None, overrides: Iterable[tuple[str, str]], yes: bool
) -> int:
    """Return the number of variants; raise UsageError for a request that cannot run."""
    if repeat is not None and repeat < 1:
        raise UsageError(f"--repeat {repeat}: needs at least 1", "e.g. --repeat 3")
    set_keys = {key for key, _ in overrides}
    for axis in axes:
        if axis.key in set_keys:
            raise UsageError(f"{axis.key} is both swept and --set", "drop one of them")
    if repeat is not None and any(key.endswith(f".{SEED}") for key in set_keys):
        raise UsageError("--repeat sets each task's seed, so --set of a seed conflicts")
    count = math.prod(len(axis.values) for axis in axes) * (repeat or 1)
    if count > MAX_VARIANTS and not yes:
        raise UsageError(
            f"the sweep has {count} variants, more than {MAX_VARIANTS}", "add --yes to run them"
        )
    return count


def variants(axes: Sequence[Axis], repeat: int | None) -> list[Variant]:
    """Return every grid point (each axis's values in order) times each seed."""
    seeds: list[int | None] = list(range(repeat)) if repeat else [None]
    grid = itertools.product(*([(axis.key, v) for v in axis.values] for axis in axes))
    found: list[Variant] = []
    for point in grid:
        for seed in seeds:
            found.append(Variant(len(found), tuple(point), seed))
    return found


def variant_tasks(graph: TaskGraph, selected: Sequence[str], swept: set[str]) -> list[str]:
    """Return the selected tasks that are swept or downstream of a swept one, in order."""
    chosen = set(selected)
    reached = set(swept)
    for name in selected:  # ``selected`` is in dependency order
        if any(up in reached for up in graph.upstream[name]):
            reached.add(name)
    return [name for name in selected if name in reached and name in chosen]


def plan_sweep(
    base: Plan,
    axes: Sequence[Axis],
    repeat: int | None,
    overrides: Sequence[tuple[str, str]],
    layers: Sequence[Layer],
) -> SweepPlan:
    """Return the shared plan and each variant's plan, every config resolved and checked.

    ``base`` is the checked plan of the run without sweeps. Raises UsageError naming an
    unknown task or parameter, a value that does not parse, or a swept task not selected.
    """
    graph = base.graph
    for axis in axes:
        if axis.task in graph.specs and not base.is_selected(axis.task):
            raise UsageError(f"{SWEEP} names task {axis.task}, which --only leaves out")
    swept = set(base.order) if repeat else {axis.task for axis in axes}
    in_variants = variant_tasks(graph, base.order, swept)
    shared_order = tuple(name for name in base.order if name not in in_variants)
    shared = _subplan(base, shared_order, base.store_inputs)
    specs = {name: graph.specs[name] for name in in_variants}
    own = [(key, raw) for key, raw in overrides if key.partition(".")[0] in specs]
    planned = []
    for variant in variants(axes, repeat):
        point = [split_key(key, raw, SWEEP) for key, raw in variant.point]
        # Unknown tasks are named against the whole graph, not only the variant part.
        for item in point:
            if item.task not in specs:
                resolve_configs(graph.specs, (), (), [item])
        resolved = resolve_configs(specs, own, layers, point)
        configs = {name: resolved.configs[name] for name in in_variants}
        sources = {name: resolved.sources[name] for name in in_variants}
        if variant.seed is not None:
            configs = {name: {**config, SEED: variant.seed} for name, config in configs.items()}
            sources = {name: {**src, SEED: "--repeat"} for name, src in sources.items()}
        record = _variant_record(variant, point, configs)
        plan = replace(
            base,
            order=tuple(in_variants),
            configs=configs,
            config_sources=sources,
            variant=record,
        )
        planned.append((variant, plan))
    return SweepPlan(shared, tuple(planned), repeat)


def _subplan(
    base: Plan, order: tuple[str, ...], store_inputs: Mapping[str, ArtifactVersion]
) -> Plan:
    return replace(
        base,
        order=order,
        configs={name: base.configs[name] for name in order},
        config_sources={name: base.config_sources.get(name, {}) for name in order},
        store_inputs=store_inputs,
    )


def _variant_record(
    variant: Variant, point: Sequence[Assignment], configs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in point:
        node: Any = configs.get(item.task, {})
        for key in item.path:
            node = node.get(key) if isinstance(node, Mapping) else None
        values[item.key] = node
    return {"index": variant.index, "label": variant.label, "point": values, "seed": variant.seed}


def with_shared_outputs(
    plan: Plan, shared_outputs: Mapping[str, Sequence[ArtifactVersion]]
) -> Plan:
    """Return a variant plan whose inputs made by shared tasks are those tasks' outputs.

    ``shared_outputs`` maps each shared task to the versions it produced or reused.
    """
    graph = plan.graph
    inputs = dict(plan.store_inputs)
    for name in plan.order:
        for ref in graph.specs[name].inputs:
            producer = graph.producer_of(ref)
            if producer is not None and producer in shared_outputs:
                local = graph.local_name(ref)
                inputs[ref] = next(v for v in shared_outputs[producer] if v.name == local)
    return replace(plan, store_inputs=inputs)
