"""Fixtures for the store suites: an opened store, raw access behind its back, and a
fault-making HTTP proxy between the store and moto's S3 server (``s3_proxy``).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

from aeromancy.store import Store, open_store


class RawStore:
    """Reads, writes and deletes store objects directly, bypassing Aeromancy (to corrupt)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.is_s3 = parsed.scheme == "s3"
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root = Path(url)

    def keys(self, prefix: str = "") -> list[str]:
        """Return every key under ``prefix`` (relative to the store root), sorted."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/{prefix}"
            )
            strip = len(self.prefix) + 1
            return sorted(o["Key"][strip:] for p in pages for o in p.get("Contents", []))
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(path.relative_to(self.root)) for path in base.rglob("*") if path.is_file()
        )

    def write(self, key: str, data: bytes) -> None:
        """Overwrite the object at ``key``."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)
            return
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        """Remove the object at ``key``."""
        if self.is_s3:
            client = boto3.session.Session().client("s3")
            client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        else:
            (self.root / key).unlink()


@pytest.fixture
def store(store_url: str) -> Store:
    """Return the store at ``store_url`` (each backend in turn)."""
    return open_store(store_url)


@pytest.fixture
def raw(store_url: str) -> RawStore:
    """Return direct access to the objects of ``store``."""
    return RawStore(store_url)


# -- a proxy in front of moto that misbehaves on purpose --------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass(frozen=True)
class Request:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return a header's value (case-insensitive), or None."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


#: What ``decide`` returns for a request: ``"forward"``; ``("strip", {header names})``
#: (forward without them); ``("answer", status, body)`` (upstream not asked);
#: ``"drop"`` (close without a word); ``"lose_reply"`` (forward, then close without
#: passing the answer on); ``"stall"`` (never answer); ``"stall_mid_body"`` (forward,
#: send the headers and half the body, then hang); ``"cut_mid_body"`` (forward, send
#: the headers and half the body, then close the connection).
Action = str | tuple[Any, ...]
Decide = Callable[[Request], Action]


class Relay(ThreadingHTTPServer):
    """Forwards HTTP to ``upstream``, doing to each request what ``decide`` says."""

    daemon_threads = True

    def __init__(self, upstream: str, decide: Decide) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.decide = decide
        self.seen: list[Request] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Relay
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def relay(self) -> None:
        request = Request(self.command, self.path, dict(self.headers.items()), self.read_body())
        with self.server.lock:
            self.server.seen.append(request)
        action = self.server.decide(request)
        kind = action if isinstance(action, str) else action[0]
        if kind == "answer":
            self.answer(action[1], action[2])
        elif kind == "drop":
            self.close_connection = True
        elif kind == "stall":
            self.server.closing.wait()
            self.close_connection = True
        else:
            strip = set(action[1]) if kind == "strip" else set()
            self.forward(request, kind, strip)

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

    def answer(self, status: int, body: bytes) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def forward(self, request: Request, kind: str, strip: set[str]) -> None:
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        dropped = HOP_BY_HOP | {name.lower() for name in strip}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        headers["Content-Length"] = str(len(request.body))
        upstream.request(request.method, request.path, body=request.body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        upstream.close()
        if kind == "lose_reply":
            self.close_connection = True
            return
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if request.method == "HEAD":
            return
        if kind in ("stall_mid_body", "cut_mid_body"):
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if kind == "stall_mid_body":
                self.server.closing.wait()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def s3_proxy(s3_server: str) -> Iterator[Callable[[Decide], Relay]]:
    """Return start(decide): a proxy on loopback in front of moto, stopped after the test.

    Nothing in boto3 or botocore is patched; the client meets real sockets that
    behave as ``decide`` says (see :data:`Action`).
    """
    started: list[Relay] = []

    def start(decide: Decide) -> Relay:
        relay = Relay(s3_server, decide)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.closing.set()
        relay.shutdown()
        relay.server_close()
