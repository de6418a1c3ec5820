"""The lean small-blob path (aeromancy/store/s3_fast.py) against moto's real S3 server."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import boto3
import pytest

from aeromancy.errors import StoreUnavailable
from aeromancy.store.s3_client import make_client
from aeromancy.store.s3_fast import FastBlobs

pytestmark = pytest.mark.s3


def fast_for(url: str) -> FastBlobs:
    client = make_client()
    bucket = url.removeprefix("s3://").split("/")[0]
    assert FastBlobs.usable(client, bucket)
    return FastBlobs(client, bucket)


def test_a_put_blob_reads_back_through_boto3_and_the_fast_get(s3_store_url: str) -> None:
    fast = fast_for(s3_store_url)
    data = b"small blob \x00\xff" * 50
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    fast.put("store/blobs/x y+z", data, checksum)
    assert fast.get("store/blobs/x y+z") == data
    stored = (
        boto3.session.Session()
        .client("s3")
        .get_object(Bucket=fast.bucket, Key="store/blobs/x y+z", ChecksumMode="ENABLED")
    )
    assert stored["Body"].read() == data
    assert stored["ChecksumSHA256"] == checksum  # sent as the boto3 path sends it


def test_a_missing_blob_is_none(s3_store_url: str) -> None:
    assert fast_for(s3_store_url).get("store/blobs/absent") is None


def test_a_server_that_keeps_failing_is_unavailable_after_the_attempts(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = s3_proxy(lambda request: ("answer", 503, b"<Error><Code>SlowDown</Code></Error>"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.url)
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "3")
    with pytest.raises(StoreUnavailable, match="after 3 attempts") as caught:
        fast_for(s3_store_url).get("store/blobs/any")
    assert len(relay.seen) == 3
    assert "Authorization" not in str(caught.value)
    assert "testing" not in str(caught.value)


def test_a_dropped_connection_is_unavailable_after_the_attempts(
    s3_store_url: str, s3_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = s3_proxy(lambda request: "drop")
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.url)
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "2")
    with pytest.raises(StoreUnavailable, match="after 2 attempts"):
        fast_for(s3_store_url).put("store/blobs/any", b"x", "AAAA")
    assert len(relay.seen) == 2
