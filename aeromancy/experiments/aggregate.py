"""``--group-by-config``: one row per task and config, with mean, std and n over its runs.

Runs that differ only in their seed (repeats) fall into one group. ``std`` is the
sample standard deviation (as pandas computes it), empty for a group of one.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from typing import Any

from aeromancy.experiments.metrics import is_number
from aeromancy.experiments.table import ResultTable

SEED = "seed"


def _key(row: Mapping[str, Any], config_columns: list[str]) -> tuple[str, ...]:
    return (
        str(row.get("task")),
        *(json.dumps(row.get(name), sort_keys=True) for name in config_columns),
    )


def group_by_config(results: ResultTable) -> ResultTable:
    """Return ``results`` aggregated per task and config (seed left out)."""
    config = [name for name in results.config_columns if name != SEED]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in results.rows:
        groups.setdefault(_key(row, config), []).append(row)
    metric_columns = [
        f"{name}.{stat}" for name in results.metric_columns for stat in ("mean", "std")
    ]
    rows = [_aggregate(members, config, results.metric_columns) for members in groups.values()]
    columns = ["task", *config, "n", *metric_columns]
    return ResultTable(columns, rows, config, metric_columns)


def _aggregate(
    members: list[dict[str, Any]], config: list[str], metrics: list[str]
) -> dict[str, Any]:
    first = members[0]
    row: dict[str, Any] = {"task": first.get("task"), "n": len(members)}
    row.update({name: first.get(name) for name in config})
    for name in metrics:
        values = [m[name] for m in members if is_number(m.get(name))]
        row[f"{name}.mean"] = statistics.fmean(values) if values else None
        row[f"{name}.std"] = statistics.stdev(values) if len(values) > 1 else None
    return row
