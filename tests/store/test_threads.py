"""map_in_threads: every result in order, inline items on the calling thread, errors raised."""

from __future__ import annotations

import threading

import pytest

from aeromancy.store.threads import map_in_threads


def test_results_come_back_in_order_threaded_items_first() -> None:
    assert map_in_threads(lambda n: n * n, [1, 2, 3, 4], 3, inline=[5, 6]) == [1, 4, 9, 16, 25, 36]
    assert map_in_threads(lambda n: n + 1, [], 4, inline=[1]) == [2]
    assert map_in_threads(lambda n: n + 1, [1, 2], 1) == [2, 3]


def test_inline_items_run_on_the_calling_thread_and_the_others_do_not() -> None:
    seen: dict[str, set[int]] = {"threaded": set(), "inline": set()}
    lock = threading.Lock()

    def work(item: str) -> str:
        with lock:
            seen[item.split("-", maxsplit=1)[0]].add(threading.get_ident())
        return item

    threaded = [f"threaded-{n}" for n in range(50)]
    inline = [f"inline-{n}" for n in range(50)]
    assert map_in_threads(work, threaded, 4, inline) == threaded + inline
    assert seen["inline"] == {threading.get_ident()}
    assert threading.get_ident() not in seen["threaded"]


def test_the_first_error_is_raised_and_the_threads_stop_taking_items() -> None:
    done: list[int] = []

    def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3 is bad")
        done.append(item)
        return item

    with pytest.raises(ValueError, match="item 3 is bad"):
        map_in_threads(work, list(range(1000)), 2)
    assert len(done) < 999
