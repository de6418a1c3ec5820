"""How every ``aeromancy`` command prints: consoles, tables, timestamps, durations, sizes.

Results go to stdout, progress, warnings and errors to stderr. On a terminal rich
fits output to the window; when piped there is no window, so output is never wrapped
or cut to rich's default 80 columns: one table row, one tree node, one message is one
line, whatever its length, ready for ``grep`` and ``cut``.

Tables share one box style. Their columns come in three kinds: ``id`` (run ids,
digests, refs, timestamps — never wrapped or truncated), ``text`` (free text, folded
on a narrow terminal) and ``number`` (right-aligned, never wrapped).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timezone
from typing import Literal

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table

#: Width for output that is not a terminal: wide enough that no row is ever wrapped
#: or cut, while nothing printed pads itself to the full width (no rules, panels, or
#: centred text go to a pipe).
PIPE_WIDTH = 4096

#: The one table box: column separators without outer edges, a line under the header.
TABLE_BOX = box.MINIMAL

#: Human timestamps, always UTC so two machines print the same run the same way.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

ColumnKind = Literal["id", "text", "number"]


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    # soft_wrap: plain prints are never broken into lines; tables get PIPE_WIDTH to grow in.
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


def stdout_console() -> Console:
    """Return the console for a command's results (stdout)."""
    return _console(stderr=False)


def stderr_console() -> Console:
    """Return the console for progress, warnings and errors (stderr)."""
    return _console(stderr=True)


def column(header: str, kind: ColumnKind = "id") -> Column:
    """Return a table column of ``kind`` (see the module docstring)."""
    if kind == "text":
        return Column(header, overflow="fold")
    return Column(header, no_wrap=True, justify="right" if kind == "number" else "left")


def table(*columns: Column | str) -> Table:
    """Return an empty table in the shared style; a bare string is an ``id`` column."""
    made = [column(c) if isinstance(c, str) else c for c in columns]
    return Table(*made, box=TABLE_BOX, show_edge=False, header_style="bold", pad_edge=False)


def print_table(console: Console, rows: Table) -> None:
    """Print ``rows``: untouched lines when piped; on a terminal, ids are never cut.

    On a terminal rich squeezes every column, ids included, once folding text columns
    is not enough; printing at the table's minimum width lets the terminal wrap instead.
    """
    if not console.is_terminal:
        # Cells are padded to their column's width; trailing blanks only get in a pipe's way.
        with console.capture() as captured:
            console.print(rows)
        console.file.write("".join(f"{line.rstrip()}\n" for line in captured.get().splitlines()))
        return
    unbounded = console.options.update_width(PIPE_WIDTH)
    for col in rows.columns:
        if col.no_wrap:
            # rich's minimum for a cell is its longest word; a no-wrap cell needs all of it.
            cells = [Measurement.get(console, unbounded, cell).maximum for cell in col.cells]
            col.min_width = max([col.min_width or 0, *cells])
    needed = Measurement.get(console, unbounded, rows).minimum
    window = console.width
    console.width = max(window, needed)  # print(width=...) is capped at the console's width
    try:
        console.print(rows, crop=False)
    finally:
        console.width = window


def print_plain_table(
    console: Console,
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    right: Collection[int] = (),
) -> None:
    """Print rows of plain text (no markup) laid out as :func:`print_table` pipes a table.

    For tables of many thousand rows, which rich would take seconds to measure: the
    columns are aligned by their longest cell, one row a line, never wrapped. The
    columns whose index is in ``right`` (numbers) are right-aligned.
    """
    lines = [tuple(headers), *(tuple(row) for row in rows)]
    widths = [max(len(line[index]) for line in lines) for index in range(len(headers))]
    rule = "─┼─".join("─" * width for width in widths)
    aligns = [str.rjust if i in right else str.ljust for i in range(len(headers))]
    text = [_plain_row(line, widths, aligns) for line in lines]
    text.insert(1, rule)
    console.file.write("".join(f"{line}\n" for line in text))


def _plain_row(
    cells: Sequence[str], widths: Sequence[int], aligns: Sequence[Callable[[str, int], str]]
) -> str:
    padded = (align(c, w) for c, w, align in zip(cells, widths, aligns, strict=True))
    return " │ ".join(padded).rstrip()


def print_fields(console: Console, fields: Iterable[tuple[str, str]]) -> None:
    """Print ``label value`` lines with the values aligned; values are printed verbatim."""
    pairs = list(fields)
    width = max((len(label) for label, _ in pairs), default=0)
    for label, value in pairs:
        console.print(f"[bold]{label:<{width}}[/bold]  {escape(value)}", soft_wrap=True)


def print_heading(console: Console, text: str) -> None:
    """Print a section heading: a rule on a terminal, a plain ``== text ==`` line otherwise."""
    if console.is_terminal:
        console.rule(escape(text), style="red")
    else:
        console.print(f"== {text} ==", markup=False, highlight=False)


def print_warning(console: Console, message: str) -> None:
    """Print ``warning: message`` as one line."""
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


def print_error(console: Console, message: str) -> None:
    """Print ``error: message`` as one line."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def parse_timestamp(stamp: str) -> datetime | None:
    """Return an ISO timestamp as an aware datetime (naive means UTC); None if it does not parse."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def timestamp(stamp: str) -> str:
    """Return an ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` in UTC.

    Returns the text unchanged when it does not parse, and ``-`` when it is empty.
    """
    moment = parse_timestamp(stamp)
    if moment is None:
        return stamp or "-"
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def duration(seconds: float) -> str:
    """Return ``seconds`` as ``0.2s``, ``42.0s``, ``3m12s`` or ``2h05m``."""
    if seconds < 60:
        return f"{max(seconds, 0.0):.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def duration_between(started: str, ended: str) -> str:
    """Return the duration between two ISO timestamps, or ``-`` if either does not parse."""
    start, end = parse_timestamp(started), parse_timestamp(ended)
    if start is None or end is None:
        return "-"
    return duration((end - start).total_seconds())


def human_size(size: int) -> str:
    """Return ``size`` bytes as a short human-readable figure (``1.5 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def status_markup(status: str) -> str:
    """Return a run status coloured: green when it succeeded, red when it failed, else yellow."""
    colour = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
    return f"[{colour}]{escape(status)}[/]"
