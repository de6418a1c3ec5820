"""One tabular value, ``ResultTable``, and its renderings as CSV, JSON and markdown.

The terminal rendering lives with the command (``aeromancy.cli.results``), which
shares the other commands' table style; every rendering here is plain text for
programs: CSV and JSON keep full precision, markdown shows what a terminal does.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("table", "csv", "json", "markdown")


@dataclass
class ResultTable:
    """Named columns and rows (each a mapping of column to value; a missing key is empty).

    ``config_columns`` and ``metric_columns`` say which columns hold config values and
    which metrics, for aggregating.
    """

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    config_columns: list[str] = field(default_factory=list)
    metric_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def column_values(self, name: str) -> Iterator[Any]:
        """Yield the values of column ``name``, None where a row has none."""
        return (row.get(name) for row in self.rows)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return every row with every column (None where a row has no value)."""
        return [{name: row.get(name) for name in self.columns} for row in self.rows]


def exact_text(value: Any) -> str:
    """Return a cell as CSV writes it: strings as they are, other values as JSON, None empty.

    Reading a cell back with ``json.loads`` (falling back to the text) gives the value.
    """
    if isinstance(value, str):
        return value
    kind = type(value)
    if value is None:
        return ""
    if kind is int:
        return str(value)  # as json.dumps writes it, without its cost (a table has 100,000s)
    if kind is float and math.isfinite(value):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def short_text(value: Any) -> str:
    """Return a cell as people read it: floats to 6 significant digits, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return exact_text(value)


def to_csv(table: ResultTable) -> str:
    """Return the table as CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([exact_text(row.get(name)) for name in table.columns])
    return buffer.getvalue()


def to_json(table: ResultTable) -> str:
    """Return the table as a JSON list of objects, one per row, every column present."""
    return json.dumps(table.as_dicts(), indent=2) + "\n"


def _markdown_cell(value: Any) -> str:
    return short_text(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: ResultTable) -> str:
    """Return the table as a GitHub-flavoured markdown table."""
    lines = [
        "| " + " | ".join(_markdown_cell(name) for name in table.columns) + " |",
        "|" + "|".join(" --- " for _ in table.columns) + "|",
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(_markdown_cell(row.get(n)) for n in table.columns) + " |")
    return "\n".join(lines) + "\n"


RENDERERS = {"csv": to_csv, "json": to_json, "markdown": to_markdown}


def render(table: ResultTable, fmt: str) -> str:
    """Return ``table`` rendered as ``fmt`` (csv, json or markdown)."""
    return RENDERERS[fmt](table)


def parse_cell(text: str) -> Any:
    """Return the value of a CSV cell written by :func:`exact_text` (empty is None)."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
