"""The results table: one row per task run, built from run records alone.

Columns, in order: the run's own facts (``run``, ``task``, ``status``, ``invocation``,
``started``, ``duration``, ``cpu``, ``memory``), then every config key (nested dicts
flattened to dotted keys: ``optimizer.lr``), then every metric's final value (``loss``;
with ``metrics=("min", "max")`` also ``loss.min`` and ``loss.max``), then ``outputs``.
A metric named like a config key or a fixed column is shown as ``metric.NAME``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aeromancy.errors import UsageError
from aeromancy.experiments.aggregate import group_by_config
from aeromancy.experiments.flatten import flatten
from aeromancy.experiments.table import ResultTable

FIXED_COLUMNS = ("run", "task", "status", "invocation", "started", "duration", "cpu", "memory")
STATISTICS = ("last", "min", "max")


@dataclass(frozen=True)
class Query:
    """Which runs and columns a results table shows; the defaults show the newest invocation."""

    task: str | None = None
    all_runs: bool = False
    since: str | None = None
    group: str | None = None
    where: Sequence[str] = ()
    sort: str | None = None
    metrics: Sequence[str] = ("last",)
    group_by_config: bool = False


def results_table(records: Sequence[Mapping[str, Any]], query: Query) -> ResultTable:
    """Return the results of ``records`` (oldest first) that ``query`` selects."""
    return table_of_sources([row_source(record) for record in records], query)


def table_of_sources(sources: Sequence[Mapping[str, Any]], query: Query) -> ResultTable:
    """Return the results of the runs whose :func:`row_source` is in ``sources`` (oldest
    first) that ``query`` selects."""
    _check_statistics(query.metrics)
    chosen = select_runs(sources, query)
    results = build_table(chosen, query.metrics)
    for condition in query.where:
        results.rows = [r for r in results.rows if _matcher(results, condition)(r)]
    if query.group_by_config:
        results = group_by_config(results)
    if query.sort:
        sort_rows(results, query.sort)
    return results


def row_source(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the table shows of one run record, as JSON (the local cache keeps it).

    ``fixed`` holds the run's own cells, ``config`` the flattened config, ``metrics``
    each metric's ``last``, ``min`` and ``max`` and ``outputs`` the output versions.
    """
    return {
        "fixed": fixed_cells(record),
        "config": flatten(record.get("config") or {}),
        "metrics": {
            name: {s: summary[s] for s in STATISTICS if s in summary}
            for name, summary in metric_summary(record).items()
        },
        "outputs": " ".join(f"{o['name']}:{o['label']}" for o in record.get("outputs") or ()),
    }


def _check_statistics(statistics: Sequence[str]) -> None:
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown or not statistics:
        raise UsageError(
            f"--metrics {','.join(statistics)}: unknown statistic {', '.join(unknown) or '(none)'}",
            "choose from last, min, max",
        )


def select_runs(sources: Sequence[Mapping[str, Any]], query: Query) -> list[Mapping[str, Any]]:
    """Return the row sources of ``query.task`` in the asked-for invocation, period or all."""
    chosen = [s for s in sources if query.task is None or s["fixed"]["task"] == query.task]
    if query.group is not None:
        return _of_group(chosen, query.group)
    if query.since is not None:
        start = parse_since(query.since)
        return [s for s in chosen if _started(s) >= start]
    if query.all_runs or not chosen:
        return chosen
    newest = max(chosen, key=lambda s: (str(s["fixed"]["started"] or ""), str(s["fixed"]["run"])))
    group = newest["fixed"]["invocation"]
    return [s for s in chosen if s["fixed"]["invocation"] == group]


def _of_group(sources: Sequence[Mapping[str, Any]], group: str) -> list[Mapping[str, Any]]:
    found = [s for s in sources if s["fixed"]["invocation"] == group]
    if not found:
        known = list(dict.fromkeys(str(s["fixed"]["invocation"]) for s in reversed(sources)))
        shown = ", ".join(known[:5]) or "none"
        raise UsageError(f"--group {group}: no runs of that invocation", f"newest: {shown}")
    return found


_RELATIVE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """Return the moment ``--since`` means: ``30m``, ``2h``, ``7d``, ``1w`` ago, or an ISO date.

    Raises UsageError for anything else.
    """
    now = now or datetime.now(timezone.utc)
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text}: not a time", "use 30m, 2h, 7d, 1w or a date like 2026-12-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _started(source: Mapping[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(source["fixed"]["started"] or ""))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def build_table(sources: Iterable[Mapping[str, Any]], statistics: Sequence[str]) -> ResultTable:
    """Return one row per row source with its fixed, config, metric and output columns."""
    config_columns: dict[str, None] = {}
    metric_names: dict[str, None] = {}
    chosen = list(sources)
    for source in chosen:
        config_columns.update(dict.fromkeys(source["config"]))
        metric_names.update(dict.fromkeys(source["metrics"]))
    taken = set(FIXED_COLUMNS) | set(config_columns) | {"outputs"}
    labels = {name: f"metric.{name}" if name in taken else name for name in metric_names}
    columns_of = {
        name: [(s, _statistic_column(labels[name], s)) for s in statistics] for name in metric_names
    }
    rows = []
    for source in chosen:
        row = dict(source["fixed"])
        row.update(source["config"])
        for name, summary in source["metrics"].items():
            for statistic, column in columns_of[name]:
                row[column] = summary.get(statistic)
        row["outputs"] = source["outputs"]
        rows.append(row)
    metric_columns = [column for name in metric_names for _, column in columns_of[name]]
    columns = [*FIXED_COLUMNS, *config_columns, *metric_columns, "outputs"]
    return ResultTable(columns, rows, list(config_columns), metric_columns)


def _statistic_column(label: str, statistic: str) -> str:
    return label if statistic == "last" else f"{label}.{statistic}"


def metric_summary(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Return each metric's ``{last, min, max}``; records before summaries have only ``last``."""
    summary = record.get("metric_summary")
    if isinstance(summary, Mapping):
        return {str(k): v for k, v in summary.items() if isinstance(v, Mapping)}
    return {str(k): {"last": v} for k, v in (record.get("metrics") or {}).items()}


def fixed_cells(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run's own columns: id, task, status, invocation, start, and its resources.

    ``cpu`` is the task process's user + system CPU seconds and ``memory`` its peak RSS
    in bytes (record fields ``cpu_user_s``, ``cpu_system_s``, ``max_rss_bytes``), empty
    for records written before task processes measured them.
    """
    return {
        "run": record.get("run_id"),
        "task": record.get("task"),
        "status": record.get("status"),
        "invocation": record.get("group"),
        "started": record.get("started"),
        "duration": _seconds_between(record.get("started"), record.get("ended")),
        "cpu": _cpu_seconds(record),
        "memory": record.get("max_rss_bytes"),
    }


def _cpu_seconds(record: Mapping[str, Any]) -> float | None:
    user, system = record.get("cpu_user_s"), record.get("cpu_system_s")
    if user is None and system is None:
        return None
    return round(float(user or 0) + float(system or 0), 6)


def _seconds_between(started: Any, ended: Any) -> float | None:
    try:
        start = datetime.fromisoformat(str(started))
        end = datetime.fromisoformat(str(ended))
    except ValueError:
        return None
    return round((end - start).total_seconds(), 6)


_CONDITION = re.compile(r"^(?P<key>[^=!<>]+?)\s*(?P<op>==|!=|>=|<=|=|>|<)\s*(?P<value>.*)$")


def _matcher(results: ResultTable, condition: str) -> Callable[[Mapping[str, Any]], bool]:
    """Return the row test of one ``--where``: ``KEY=VALUE``, or ``!=``, ``<``, ``>`` and so on."""
    found = _CONDITION.match(condition)
    if found is None:
        raise UsageError(f"--where {condition}: expected KEY=VALUE", "e.g. --where lr=0.01")
    key, op, raw = found.group("key").strip(), found.group("op"), found.group("value").strip()
    if key not in results.columns:
        raise UsageError(
            f"--where {condition}: no column {key!r}",
            f"columns: {', '.join(results.columns)}",
        )
    wanted = parse_literal(raw)
    if op in ("=", "==", "!="):
        same = op != "!="
        return lambda row: _equal(row.get(key), wanted, raw) is same
    if not _is_plain_number(wanted):
        raise UsageError(f"--where {condition}: {op} needs a number", f"e.g. --where {key}{op}0.5")
    compare = _ORDERINGS[op]
    return lambda row: _is_plain_number(row.get(key)) and compare(row[key], wanted)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
}


def parse_literal(raw: str) -> Any:
    """Return ``raw`` as JSON when it is JSON (``0.01``, ``true``, ``[1,2]``), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _is_plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(cell: Any, wanted: Any, raw: str) -> bool:
    if cell is None:
        return raw in ("", "null", "None")
    if isinstance(cell, str):
        return cell == raw
    return bool(cell == wanted) and isinstance(cell, bool) == isinstance(wanted, bool)


def sort_rows(table: ResultTable, spec: str) -> None:
    """Sort rows by ``spec``: ``col`` ascending, ``-col`` descending, comma-separated.

    Rows without a value come last either way.
    """
    keys = [part.strip() for part in spec.split(",") if part.strip()]
    for key in reversed(keys):  # stable sorts, last key first
        descending = key.startswith("-")
        name = key.lstrip("-")
        if name not in table.columns:
            raise UsageError(
                f"--sort {spec}: no column {name!r}", f"columns: {', '.join(table.columns)}"
            )
        present = [r for r in table.rows if r.get(name) is not None]
        absent = [r for r in table.rows if r.get(name) is None]
        present.sort(key=lambda r: _sort_key(r[name]), reverse=descending)
        table.rows = present + absent


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its natural order."""
    if _is_plain_number(value):
        return (0, value)
    return (1, str(value))
