"""The bulk blob check of a status pass: one listing for many blobs, probes for few."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeromancy.errors import InvalidName
from aeromancy.status import LIST_AT_MOST, blobs_present
from aeromancy.store import Store, open_store

ABSENT = "0" * 64


@pytest.fixture
def stored(store_url: str, tmp_path: Path) -> tuple[Store, list[str]]:
    """Return a store holding 12 blobs, and their digests."""
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(12):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    store = open_store(store_url)
    version = store.publish("demo", "files", folder)
    return store, [entry.sha256 for entry in version.files]


def test_many_blobs_are_checked_against_one_listing(stored: tuple[Store, list[str]]) -> None:
    store, digests = stored
    assert len(digests) * LIST_AT_MOST > 12  # the listing path, not the fallback
    assert blobs_present(store, digests, list_from=5)
    assert not blobs_present(store, [*digests[1:], ABSENT], list_from=5)
    assert blobs_present(store, [], list_from=0)


def test_a_store_holding_far_more_blobs_is_probed(stored: tuple[Store, list[str]]) -> None:
    store, digests = stored
    assert 2 * LIST_AT_MOST <= 12  # the listing would be cut: each blob is probed
    assert blobs_present(store, digests[:2], list_from=2)
    assert not blobs_present(store, [digests[0], ABSENT], list_from=2)


def test_a_string_that_is_no_digest_is_refused_either_way(
    stored: tuple[Store, list[str]],
) -> None:
    store, digests = stored
    for list_from in (1, 100):
        with pytest.raises(InvalidName):
            blobs_present(store, [*digests, "not-a-digest"], list_from=list_from)
