"""Whether each task of a plan is up to date, decided without running anything.

Used by ``aeromancy list`` and the planning benchmark. The executor makes the same
decision task by task while it runs, because a stale upstream task may still produce
byte-identical outputs, and then its consumers stay up to date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aeromancy.fingerprint import CodeIdentity, fingerprint
from aeromancy.planning import Plan
from aeromancy.records import RecordIndex
from aeromancy.store.manifest import ArtifactVersion

if TYPE_CHECKING:
    from aeromancy.store import Store


@dataclass(frozen=True)
class TaskStatus:
    """One task's status: up to date (with the run it would reuse) or why it would run."""

    task: str
    up_to_date: bool
    reason: str
    run_id: str | None = None
    outputs: Sequence[ArtifactVersion] = field(default_factory=tuple)


def plan_status(
    plan: Plan,
    store: Store,
    index: RecordIndex,
    code: Mapping[str, CodeIdentity],
    environment_keys: Callable[[str], Sequence[str]],
) -> dict[str, TaskStatus]:
    """Return the status of each planned task, in plan order.

    ``environment_keys(task)`` gives the environment keys a matching run may have had:
    the current one when known, else those of the task's earlier runs.
    """
    statuses: dict[str, TaskStatus] = {}
    check = _StatusCheck(plan, store, index, statuses)
    for name in plan.order:
        statuses[name] = check.status(name, code[name], environment_keys(name))
    return statuses


@dataclass(frozen=True)
class _StatusCheck:
    plan: Plan
    store: Store
    index: RecordIndex
    statuses: Mapping[str, TaskStatus]

    def _input_digests(self, name: str) -> dict[str, str]:
        graph = self.plan.graph
        digests = {}
        for ref in graph.specs[name].inputs:
            producer = graph.producer_of(ref)
            if producer is not None and producer in self.statuses:
                wanted = graph.local_name(ref)
                outputs = self.statuses[producer].outputs
                digests[ref] = next(v.digest for v in outputs if v.name == wanted)
            else:
                digests[ref] = self.plan.store_inputs[ref].digest
        return digests

    def status(self, name: str, code: CodeIdentity, environments: Sequence[str]) -> TaskStatus:
        ups = self.plan.graph.upstream[name]
        stale = [up for up in ups if up in self.statuses and not self.statuses[up].up_to_date]
        if stale:
            return TaskStatus(name, False, f"upstream {', '.join(stale)} will run")
        digests = self._input_digests(name)
        config = self.plan.configs[name]
        for environment in environments:
            key = fingerprint(name, code.digest, config, digests, environment)
            found = self.index.reusable(self.store, key)
            if found is not None:
                record, outputs = found
                return TaskStatus(name, True, "up to date", str(record["run_id"]), tuple(outputs))
        latest = self.index.latest.get(name)
        return TaskStatus(name, False, _why_stale(latest, code, config, digests))


def _why_stale(
    latest: Mapping[str, Any] | None,
    code: CodeIdentity,
    config: Mapping[str, Any],
    digests: Mapping[str, str],
) -> str:
    """Return what differs from the task's newest successful run ('never run' if none)."""
    if latest is None:
        return "never run"
    changes = []
    if latest.get("code", {}).get("digest") != code.digest:
        changes.append("code")
    if latest.get("config") != dict(config):
        changes.append("config")
    recorded = {str(i.get("ref")): i.get("digest") for i in latest.get("inputs", ())}
    if recorded != dict(digests):
        changes.append("inputs")
    if not changes:
        return "environment changed or outputs gone from the store"
    return f"{', '.join(changes)} changed"
