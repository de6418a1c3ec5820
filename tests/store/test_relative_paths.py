"""The fast string test of artifact paths accepts exactly what the full check accepts."""

from __future__ import annotations

import itertools

import pytest

from aeromancy.errors import InvalidName
from aeromancy.store.paths import _plainly_relative, check_relative_path, path_problem

# Every character that matters to the check, and one that does not.
ALPHABET = ("a", "/", ".", "\\", ":", "\x00")


def every_string(longest: int) -> list[str]:
    return [
        "".join(chars)
        for length in range(longest + 1)
        for chars in itertools.product(ALPHABET, repeat=length)
    ]


def test_the_fast_test_and_the_full_check_agree_on_every_short_string() -> None:
    strings = every_string(5)
    disagreeing = [s for s in strings if _plainly_relative(s) != (path_problem(s) is None)]
    assert disagreeing == []
    accepted = [s for s in strings if _plainly_relative(s)]
    assert "a/a" in accepted
    assert "a./.a" in accepted
    assert len(accepted) > 30


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "is empty"),
        ("/a", "is absolute"),
        ("c:a", "is absolute"),
        ("a/../b", "contains '..'"),
        ("a//b", "is not normalised"),
        ("./a", "is not normalised"),
        ("a\\b", "is not normalised"),
    ],
)
def test_a_refused_path_says_what_is_wrong(path: str, problem: str) -> None:
    with pytest.raises(InvalidName, match=problem):
        check_relative_path(path)
