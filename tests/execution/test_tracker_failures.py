"""A tracker that fails at every call never costs a task its outputs or its run record.

The tracker here is a real implementation of the Tracker protocol that raises on
purpose; the store is a real local store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from aeromancy.execution.executor import Executor
from aeromancy.execution.invocation import Invocation
from aeromancy.execution.outcomes import Outcome
from aeromancy.identity import RunIdentity
from aeromancy.planning import build_plan, load_graph
from aeromancy.store import ArtifactVersion, open_store
from aeromancy.tracking.base import TaskRunInfo


class BrokenRun:
    @property
    def path(self) -> str | None:
        raise ConnectionError("tracker path lost")

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        raise ConnectionError("tracker log lost")

    def log_outputs(self, outputs: Sequence[ArtifactVersion], blob_uris: Mapping[str, str]) -> None:
        raise ConnectionError("tracker outputs lost")

    def attach_log(self, path: Path) -> None:
        raise ConnectionError("tracker log file lost")

    def finish(self, record: Mapping[str, Any], succeeded: bool) -> None:
        raise ConnectionError("tracker finish lost")


class BrokenTracker:
    def __init__(self, fail_start: bool) -> None:
        self.fail_start = fail_start

    def start(self, info: TaskRunInfo) -> BrokenRun:
        if self.fail_start:
            raise ConnectionError("tracker unreachable")
        return BrokenRun()


PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["numbers"])
def produce(ctx: Context, count: int = 3) -> None:
    ctx.log({"count": count})
    path = ctx.workdir / "numbers.txt"
    path.write_text(" ".join(str(i) for i in range(count)))
    ctx.save("numbers", path)
"""


def run_with(tracker: BrokenTracker, store_url: str, root: Path) -> tuple[Any, list[str]]:
    store = open_store(store_url)
    (root / "pipeline.py").write_text(PIPELINE)
    graph = load_graph("pipeline.py", root, "demo")
    plan = build_plan(graph, store, namespace="dev")
    invocation = Invocation(
        project="demo",
        root=root,
        tasks="pipeline.py",
        namespace="dev",
        identity=RunIdentity(),
        environment_key="test-env",
        group="g1",
    )
    warnings: list[str] = []
    results = Executor(plan, store, invocation, tracker, warn=warnings.append).run()
    return results, warnings


@pytest.mark.parametrize("fail_start", [False, True], ids=["calls-fail", "start-fails"])
def test_tracker_failures_keep_outputs_and_record_and_warn_once(
    local_store_url: str, tmp_path: Path, fail_start: bool
) -> None:
    results, warnings = run_with(BrokenTracker(fail_start), local_store_url, tmp_path)
    assert results["produce"].outcome is Outcome.RAN
    assert len(warnings) == 1
    assert "ConnectionError" in warnings[0]
    assert "outputs and run records are kept" in warnings[0]
    store = open_store(local_store_url)
    [record] = store.list_run_records("demo", namespace="dev")
    assert record["status"] == "succeeded"
    assert record["wandb_run"] is None
    assert record["metrics"] == {"count": 3}
    assert [v.label for v in store.list_versions("demo", "numbers", namespace="dev")] == ["dev1"]
