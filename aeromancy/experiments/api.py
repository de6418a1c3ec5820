"""``aeromancy.results(...)``: the results table as a pandas DataFrame."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeromancy.errors import UsageError
from aeromancy.experiments.record_cache import all_row_sources
from aeromancy.experiments.results import Query, table_of_sources
from aeromancy.experiments.table import ResultTable

if TYPE_CHECKING:
    from aeromancy.store import Store

PANDAS_MISSING = "aeromancy.results() needs pandas, an optional extra"
PANDAS_HINT = "pip install 'aeromancy[pandas]' (or add pandas to the project)"


def load_results(
    store: Store, project: str, query: Query, warn: Callable[[str], None]
) -> ResultTable:
    """Return the results table of ``project``'s run records that ``query`` selects."""
    return table_of_sources(all_row_sources(store, project, warn), query)


def results(
    task: str | None = None,
    *,
    all_runs: bool = False,
    since: str | None = None,
    group: str | None = None,
    where: Sequence[str] = (),
    sort: str | None = None,
    metrics: Sequence[str] = ("last",),
    group_by_config: bool = False,
    store: str | None = None,
    root: str | Path | None = None,
) -> Any:
    """Return the results table as a pandas DataFrame, one row per task run.

    The arguments are those of ``aeromancy results``; ``root`` is a directory of the
    project (default: the current one), ``store`` overrides its store. Raises UsageError
    when pandas is not installed.
    """
    try:
        import pandas
    except ImportError as exc:
        raise UsageError(PANDAS_MISSING, PANDAS_HINT) from exc
    from aeromancy.settings import load_settings
    from aeromancy.store import open_store

    settings = load_settings(Path(root) if root is not None else None, store=store)
    query = Query(task, all_runs, since, group, tuple(where), sort, tuple(metrics), group_by_config)
    table = load_results(open_store(settings.store), settings.project, query, _warn)
    return pandas.DataFrame(table.as_dicts(), columns=table.columns)


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)
