"""The task graph: producers, edges, order, cycles, duplicate producers."""

from __future__ import annotations

from typing import Any

import pytest

from aeromancy import Context, GraphError, NotFound, task
from aeromancy.planning import build_graph, select_tasks
from aeromancy.tasks import SPEC_ATTRIBUTE, TaskSpec


def specs(*fns: Any) -> dict[str, TaskSpec]:
    return {fn.__name__: getattr(fn, SPEC_ATTRIBUTE) for fn in fns}


@task(outputs=["raw"])
def ingest(ctx: Context) -> None:
    pass


@task(inputs=["raw"], outputs=["model"])
def train(ctx: Context) -> None:
    pass


@task(inputs=["raw", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    pass


@task(inputs=["proj/raw", "other/pretrained"], outputs=["extra"])
def side(ctx: Context) -> None:
    pass


def test_diamond_orders_producers_first() -> None:
    graph = build_graph(specs(evaluate, train, ingest), "proj")
    assert graph.order() == ["ingest", "train", "evaluate"]
    assert graph.upstream["evaluate"] == ("ingest", "train")
    assert graph.downstream("ingest") == ["evaluate", "train"]


def test_own_project_prefix_is_local_and_other_project_is_external() -> None:
    graph = build_graph(specs(ingest, side), "proj")
    assert graph.upstream["side"] == ("ingest",)
    assert graph.producer_of("other/pretrained") is None


def test_duplicate_producer_is_refused() -> None:
    @task(outputs=["raw"])
    def ingest2(ctx: Context) -> None:
        pass

    with pytest.raises(GraphError, match="'raw' is produced by both ingest and ingest2"):
        build_graph(specs(ingest, ingest2), "proj")


def test_cycle_is_refused_and_named() -> None:
    @task(inputs=["b"], outputs=["a"])
    def make_a(ctx: Context) -> None:
        pass

    @task(inputs=["a"], outputs=["b"])
    def make_b(ctx: Context) -> None:
        pass

    with pytest.raises(GraphError, match=r"cycle: make_[ab] -> make_[ab] -> make_[ab]"):
        build_graph(specs(make_a, make_b), "proj")


def test_self_loop_is_a_cycle() -> None:
    @task(inputs=["a"], outputs=["a"])
    def loop(ctx: Context) -> None:
        pass

    with pytest.raises(GraphError, match="cycle"):
        build_graph(specs(loop), "proj")


def test_only_selects_and_orders_and_refuses_unknown() -> None:
    graph = build_graph(specs(evaluate, train, ingest), "proj")
    assert select_tasks(graph, ["evaluate", "ingest"]) == ["ingest", "evaluate"]
    with pytest.raises(NotFound, match="unknown task nope"):
        select_tasks(graph, ["nope"])


def _random_specs(seed: int, size: int, cyclic: bool = False) -> dict[str, TaskSpec]:
    import random

    from aeromancy.tasks import not_imported

    rng = random.Random(seed)
    made = {}
    for i in rng.sample(range(size), size):  # names in a random order
        earlier = [f"o{j}" for j in range(i) if rng.random() < 3 / (i + 1)]
        if cyclic and i == 1:
            earlier.append(f"o{size - 1}")
        made[f"t{i}"] = TaskSpec(f"t{i}", not_imported, tuple(earlier), {f"o{i}": "artifact"})
    return made


@pytest.mark.parametrize("seed", range(20))
def test_the_order_is_graphlibs_static_order_exactly(seed: int) -> None:
    graph = build_graph(_random_specs(seed, 60), "proj")
    names = set(graph.specs)
    assert graph.order() == list(graph.sorter(names).static_order())
    subset = {name for name in names if (int(name[1:]) + seed) % 3}
    assert graph.order(subset) == list(graph.sorter(subset).static_order())


def test_a_cycle_in_a_large_graph_is_named_as_graphlib_names_it() -> None:
    with pytest.raises(GraphError, match=r"the task graph has a cycle: t\d+ -> .* -> t\d+"):
        build_graph(_random_specs(3, 60, cyclic=True), "proj")
