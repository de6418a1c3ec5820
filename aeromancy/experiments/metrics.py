"""What a run record keeps of the metrics a task logs: per metric the last, min and max."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def is_number(value: Any) -> bool:
    """Return True for an int or a finite float (bool is not a number here)."""
    kind = type(value)
    if kind is int or kind is float:  # the common case, without isinstance's cost
        return kind is int or math.isfinite(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


class MetricSummary:
    """Accumulates ``ctx.log`` calls: every metric's last value, and min/max of numbers."""

    def __init__(self) -> None:
        self._summary: dict[str, dict[str, Any]] = {}

    def update(self, metrics: Mapping[str, Any]) -> None:
        """Fold one ``ctx.log`` call in."""
        for name, value in metrics.items():
            entry = self._summary.setdefault(str(name), {"count": 0})
            entry["last"] = value
            entry["count"] += 1
            if is_number(value):
                entry["min"] = value if "min" not in entry else min(entry["min"], value)
                entry["max"] = value if "max" not in entry else max(entry["max"], value)

    def as_record(self) -> dict[str, dict[str, Any]]:
        """Return the summary as the run record stores it, ``{metric: {last, min, max, count}}``."""
        return {name: dict(entry) for name, entry in self._summary.items()}
