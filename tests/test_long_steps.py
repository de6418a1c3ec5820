"""Long steps print a start and an end line when stderr is not a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from aeromancy.long_steps import plain_step
from aeromancy.store.progress import MIN_BYTES_FOR_BAR, transfer_progress


def test_a_step_prints_one_line_at_start_and_one_with_time_and_detail_at_end() -> None:
    out = io.StringIO()
    name = "building image aeromancy/" + "p" * 60 + ":deps-0123456789abcdef01234567"
    with plain_step(Console(file=out, force_terminal=False, width=80), name) as step:
        assert out.getvalue() == f"{name} ...\n"  # one line, however narrow the console
        step.detail = "45.0 MiB"
    start, end = out.getvalue().splitlines()
    assert start == f"{name} ..."
    assert end.startswith(f"{name}: done in ")
    assert re.fullmatch(r"\d+\.\ds \(45\.0 MiB\)", end.removeprefix(f"{name}: done in "))


def test_a_failed_step_says_so_and_the_error_goes_on() -> None:
    out = io.StringIO()
    with (
        pytest.raises(RuntimeError),
        plain_step(Console(file=out, force_terminal=False), "downloading 3 wheels"),
    ):
        raise RuntimeError("boom")
    assert re.fullmatch(
        r"downloading 3 wheels: failed after \d+\.\ds", out.getvalue().split("\n")[1]
    )


def test_on_a_terminal_the_live_display_shows_instead() -> None:
    out = io.StringIO()
    with plain_step(Console(file=out, force_terminal=True), "building image x:1"):
        pass
    assert out.getvalue() == ""


def test_a_large_transfer_to_a_pipe_prints_its_size_at_start_and_its_time_at_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with transfer_progress("pull demo/model:v1", MIN_BYTES_FOR_BAR * 2) as advance:
        advance(MIN_BYTES_FOR_BAR)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "pull demo/model:v1 (32.0 MiB) ..."
    assert re.fullmatch(r"pull demo/model:v1 \(32\.0 MiB\): done in \d+\.\ds", lines[1])


def test_a_small_transfer_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with transfer_progress("pull demo/model:v1", 1024) as advance:
        advance(1024)
    assert capsys.readouterr().err == ""
