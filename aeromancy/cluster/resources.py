"""Worker resources: what a task run needs of the worker it runs on (``gpu=1``).

A task declares them (``@task(resources={"GPU": 1})``) and ``--cluster-resources
GPU=1`` adds or overrides them for every task run of one run; on a cluster each
task run is submitted with them as Dask's ``resources=``, so it runs only on a worker
started with at least that much (``dask worker --resources "GPU=1"``, ``aeromancy
cluster up --resources GPU=1``) and a worker runs at most as many at once as its
amounts allow. Names are matched exactly, as Dask does. Local runs ignore them.

A task whose resources no worker of the cluster has would wait forever in Dask, so
the run refuses it before anything is submitted (:func:`missing`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aeromancy.errors import UsageError

Resources = Mapping[str, float]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def check_resources(given: Mapping[Any, Any], where: str) -> dict[str, float]:
    """Return ``given`` as {name: amount}; raise UsageError for a bad name or amount."""
    if not isinstance(given, Mapping):
        raise UsageError(f"{where}: resources must be a mapping of name to amount")
    return {_name(name, where): _amount(amount, name, where) for name, amount in given.items()}


def parse_resources(values: Iterable[str], where: str = "--cluster-resources") -> dict[str, float]:
    """Return the resources of ``NAME=AMOUNT`` strings (each may be a comma list)."""
    found: dict[str, float] = {}
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, amount = item.partition("=")
            if not sep:
                raise UsageError(f"{where} {item}: expected NAME=AMOUNT", "e.g. GPU=1")
            try:
                number = float(amount)
            except ValueError:
                raise UsageError(
                    f"{where} {item}: {amount!r} is not a number", "e.g. GPU=1"
                ) from None
            found[_name(name.strip(), where)] = _amount(number, name, where)
    return found


def merged(declared: Resources, given: Resources) -> dict[str, float]:
    """Return the task's declared resources with the run's ``given`` ones over them."""
    return {**declared, **given}


def missing(needed: Resources, workers: Mapping[str, Resources]) -> str | None:
    """Return what no single worker offers of ``needed`` (``GPU=1``), or None when one does.

    ``workers`` maps each worker's address to the resources it advertises.
    """
    if not needed:
        return None
    for offered in workers.values():
        if all(offered.get(name, 0) >= amount for name, amount in needed.items()):
            return None
    return describe(needed)


def describe(resources: Resources) -> str:
    """Return ``GPU=1, MEMORY=2e9`` (sorted), or ``none``."""
    if not resources:
        return "none"
    return ", ".join(f"{name}={_number(amount)}" for name, amount in sorted(resources.items()))


def as_options(resources: Resources) -> list[str]:
    """Return the ``--cluster-resources`` arguments that give ``resources`` again."""
    return [f"{name}={_number(amount)}" for name, amount in sorted(resources.items())]


def _number(amount: float) -> str:
    return str(int(amount)) if float(amount).is_integer() else repr(float(amount))


def _name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"{where}: {name!r} is not a resource name",
            "use letters, digits, '_', '.' or '-', e.g. GPU",
        )
    return name


def _amount(amount: Any, name: Any, where: str) -> float:
    ok = isinstance(amount, int | float) and not isinstance(amount, bool)
    if not ok or not math.isfinite(amount) or amount <= 0:
        raise UsageError(f"{where}: resource {name} needs a positive amount, not {amount!r}")
    return float(amount)
