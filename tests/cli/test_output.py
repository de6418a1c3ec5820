"""The shared output helpers: formats, and tables on a real rich terminal console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aeromancy.cli.output import (
    column,
    duration,
    duration_between,
    human_size,
    print_table,
    table,
    timestamp,
)

RUN_ID = "20261122-060724-a0558fbb"
DIGEST = "sha256:899bda4f65cb6461744f57b6846c3e2d7aad67c35a485a4030f78902dcb38c9a"


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("2026-11-22T06:07:24.408107+00:00", "2026-11-22 06:07:24"),
        ("2026-11-22T08:07:24+02:00", "2026-11-22 06:07:24"),  # shown in UTC
        ("2026-11-22T06:07:24", "2026-11-22 06:07:24"),  # naive means UTC
        ("yesterday", "yesterday"),
        ("", "-"),
    ],
)
def test_timestamp_is_utc_to_the_second(stamp: str, shown: str) -> None:
    assert timestamp(stamp) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.21, "0.2s"), (42.0, "42.0s"), (192.4, "3m12s"), (3600 + 5 * 60 + 20, "1h05m")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_duration_between_timestamps_and_when_one_is_missing() -> None:
    start = "2026-11-22T06:07:24.000000+00:00"
    assert duration_between(start, "2026-11-22T06:10:36.000000+00:00") == "3m12s"
    assert duration_between(start, "") == "-"


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**3, "5.0 GiB"),
        (2 * 1024**4, "2.0 TiB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


def rendered(width: int) -> str:
    """Return a runs-like table printed on a terminal console ``width`` columns wide."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system=None)
    rows = table("run", "digest", column("note", "text"), column("size", "number"))
    rows.add_row(RUN_ID, DIGEST, "a long free-text note that may fold " * 2, "1.5 KiB")
    print_table(console, rows)
    return buffer.getvalue()


def test_a_narrow_terminal_folds_text_but_never_cuts_ids() -> None:
    text = rendered(60)
    assert RUN_ID in text
    assert DIGEST in text
    assert "…" not in text


def test_a_wide_terminal_keeps_a_row_on_one_line() -> None:
    lines = rendered(300).splitlines()
    assert len(lines) == 3  # header, rule, one row
    assert RUN_ID in lines[2]
    assert DIGEST in lines[2]
    assert lines[2].rstrip().endswith("1.5 KiB")
