"""S3 requests that meet throttling, 5xx answers or dropped connections are retried.

Between the store and moto's server (both real, on loopback) sits a small HTTP proxy
that forwards every request but fails some on purpose: it answers ``503 SlowDown``
as S3 does when throttling, or closes the connection without an answer. Nothing
in boto3 or botocore is patched; the retries are botocore's own.
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from aeromancy.errors import StoreUnavailable
from aeromancy.store import open_store
from aeromancy.store.s3 import MULTIPART_THRESHOLD

pytestmark = pytest.mark.s3

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FlakyProxy(ThreadingHTTPServer):
    """Forwards HTTP to ``upstream``, failing requests as ``how`` says (503 or drop).

    With ``every=N``, every N-th distinct request fails once and its retries pass,
    so that a push succeeds however the concurrent requests interleave. With
    ``every=1``, every request fails, retries included.
    """

    daemon_threads = True

    def __init__(self, upstream: str, every: int, how: str) -> None:
        super().__init__(("127.0.0.1", 0), FlakyHandler)
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.every, self.how = every, how
        self.requests = self.failed = 0
        self.failed_once: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

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


class FlakyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def relay(self) -> None:
        body = self.read_body()
        if self.server.should_fail(self.command, self.path):
            self.fail()
        else:
            self.forward(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = relay

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def fail(self) -> None:
        self.close_connection = True
        if self.server.how == "drop":
            return  # close without a word: the client sees the connection go
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(SLOW_DOWN)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(SLOW_DOWN)

    def forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()


@pytest.fixture
def proxy_for(s3_server: str) -> Iterator[object]:
    started: list[FlakyProxy] = []

    def start(every: int, how: str) -> FlakyProxy:
        proxy = FlakyProxy(s3_server, every, how)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.shutdown()
        proxy.server_close()


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
