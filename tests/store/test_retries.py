"""S3 requests that meet throttling, 5xx answers or dropped connections are retried.

Between the store and moto's server (both real, on loopback) sits a small HTTP proxy
that forwards every request but fails some on purpose: it answers ``503 SlowDown``
as S3 does when throttling, or closes the connection without an answer. Nothing
in boto3 or botocore is patched; the retries are botocore's own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from aeromancy.errors import StoreUnavailable
from aeromancy.store import open_store
from aeromancy.store.s3 import MULTIPART_THRESHOLD

pytestmark = pytest.mark.s3

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FailSome:
    """Decides, for the proxy, which requests fail: as ``how`` says (503 or drop).

    With ``every=N``, every N-th distinct request fails once and its retries pass,
    so that a push succeeds however the concurrent requests interleave. With
    ``every=1``, every request fails, retries included.
    """

    def __init__(self, every: int, how: str) -> None:
        self.every, self.how = every, how
        self.requests = self.failed = 0
        self.failed_once: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.url = ""

    def __call__(self, request: Any) -> str | tuple[str, int, bytes]:
        if not self.should_fail(request.method, request.path):
            return "forward"
        if self.how == "drop":
            return "drop"  # close without a word: the client sees the connection go
        return ("answer", 503, SLOW_DOWN)

    def should_fail(self, method: str, path: str) -> bool:
        with self.lock:
            self.requests += 1
            if self.every > 1 and (method, path) in self.failed_once:
                return False  # a retry of a request that failed already
            fail = self.requests % self.every == 0
            if fail:
                self.failed += 1
                self.failed_once.add((method, path))
            return fail


@pytest.fixture
def proxy_for(s3_proxy: Any) -> Any:
    """Return start(every, how): a proxy in front of moto failing some requests."""

    def start(every: int, how: str) -> FailSome:
        rule = FailSome(every, how)
        rule.url = s3_proxy(rule).url
        return rule

    return start


def make_data(root: Path) -> dict[str, bytes]:
    """Twenty small files (one PUT each) and one past the multipart threshold."""
    files = {f"small-{index:02d}.bin": os.urandom(20_000) for index in range(20)}
    files["large.bin"] = os.urandom(MULTIPART_THRESHOLD + (1 << 20))
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


@pytest.mark.parametrize("how", ["503", "drop"])
def test_push_and_pull_succeed_through_failing_requests(
    s3_store_url: str, proxy_for: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    files = make_data(tmp_path / "data")
    moto = os.environ["AWS_ENDPOINT_URL"]  # set by s3_store_url
    proxy = proxy_for(3, how)  # type: ignore[operator]
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)

    store = open_store(s3_store_url)
    version = store.publish("proj", "data", tmp_path / "data")
    out = store.materialize(version, tmp_path / "out")

    assert proxy.failed >= 5, "the proxy should have failed some requests"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    # Read back past the proxy, from moto itself: every blob is there and whole.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    direct = open_store(s3_store_url, cache_dir=tmp_path / "fresh-cache")
    again = direct.materialize(direct.resolve("data:v1", "proj"), tmp_path / "direct")
    assert {p.name: p.read_bytes() for p in again.iterdir()} == files


def test_a_store_that_always_fails_is_tried_max_attempts_times_then_exit_3(
    s3_store_url: str, proxy_for: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    proxy = proxy_for(1, "503")  # type: ignore[operator]
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "3")

    with pytest.raises(StoreUnavailable, match="SlowDown") as info:
        open_store(s3_store_url).list_artifacts("proj")

    assert info.value.exit_code == 3
    assert proxy.requests == 3
