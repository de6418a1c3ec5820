"""Large blobs (image layers) from S3: one streamed GET that resumes where a cut stopped.

The S3 server is the loopback moto fixture; between it and the client a small TCP
relay (a real socket, here in the test) closes the connection once a number of
bytes have gone back to the client, as a network that drops mid-download would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from aeromancy.errors import StoreUnavailable
from aeromancy.store.s3 import S3Backend

pytestmark = pytest.mark.s3

BLOB_BYTES = 24 << 20  # above the old 16 MiB threshold of the ranged transfer manager
CUT_AFTER = 5 << 20


class CuttingRelay:
    """Relay TCP to ``upstream``; cut the first ``cuts`` connections that have sent
    more than ``cut_after`` bytes back to the client."""

    def __init__(self, upstream: str, cut_after: int, cuts: int) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.cut_after = cut_after
        self.cuts = cuts
        self.cut = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
                threading.Thread(
                    target=self._pipe, args=(client, server, False), daemon=True
                ).start()
                threading.Thread(
                    target=self._pipe, args=(server, client, True), daemon=True
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)
                sent += len(data)
                if downstream and sent > self.cut_after and self._take_cut():
                    break
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cut >= self.cuts:
                return False
            self.cut += 1
            return True


@pytest.fixture
def stored_blob(s3_store_url: str, tmp_path: Path) -> tuple[str, str, str]:
    """Store a random blob through moto directly; return (bucket, key, sha256 hex)."""
    parsed = urlparse(s3_store_url)
    backend = S3Backend(parsed.netloc, parsed.path)
    source = tmp_path / "layer.bin"
    source.write_bytes(os.urandom(BLOB_BYTES))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    backend.store_file(source, lambda hex_: f"blobs/{hex_}", lambda _count: None)
    return parsed.netloc, f"blobs/{digest}", digest


def through_relay(
    monkeypatch: pytest.MonkeyPatch, bucket: str, cuts: int
) -> tuple[S3Backend, list[Any]]:
    relay = CuttingRelay(os.environ["AWS_ENDPOINT_URL"], CUT_AFTER, cuts)
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.endpoint)
    backend = S3Backend(bucket, "store")
    ranges: list[Any] = []
    backend.client.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **_: ranges.append(request.headers.get("Range")),
    )
    return backend, ranges


def test_a_download_cut_midway_resumes_where_it_stopped(
    stored_blob: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket, key, digest = stored_blob
    backend, ranges = through_relay(monkeypatch, bucket, cuts=1)
    moved: list[int] = []

    written = backend.download_file(key, tmp_path / "out.bin", moved.append, BLOB_BYTES)

    assert written == digest
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).hexdigest() == digest
    assert sum(moved) == BLOB_BYTES  # no byte counted twice
    assert len(ranges) == 2
    assert ranges[0] is None
    offset = int(ranges[1].decode().removeprefix("bytes=").rstrip("-"))
    assert CUT_AFTER // 2 < offset < BLOB_BYTES  # the rest only, not the whole blob again


def test_a_connection_that_keeps_breaking_is_unavailable_after_the_attempts(
    stored_blob: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket, key, _digest = stored_blob
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "2")
    backend, ranges = through_relay(monkeypatch, bucket, cuts=99)

    with pytest.raises(StoreUnavailable, match="broke 2 times while reading") as caught:
        backend.download_file(key, tmp_path / "out.bin")

    assert caught.value.exit_code == 3
    assert len(ranges) == 2
