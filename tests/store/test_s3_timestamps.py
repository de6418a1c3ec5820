"""The S3 client's timestamp parser: botocore's answers, without dateutil's cost."""

from __future__ import annotations

import time

import pytest
from botocore.utils import parse_timestamp as botocore_timestamp

from aeromancy.store.s3_client import make_client, parse_timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T00:14:44.000Z",
        "2026-12-02T00:14:44Z",
        "2026-12-02T00:14:44.123456+02:00",
        "Wed, 02 Dec 2026 00:14:44 GMT",
        "2026-12-02T00:14:44",  # no zone: botocore's reading (UTC)
    ],
)
def test_the_same_moment_as_botocore(text: str) -> None:
    assert parse_timestamp(text) == botocore_timestamp(text)
    assert parse_timestamp(text).utcoffset() == botocore_timestamp(text).utcoffset()


def test_a_listing_of_10000_timestamps_takes_milliseconds() -> None:
    started = time.process_time()
    for second in range(10_000):
        parse_timestamp(f"2026-12-02T00:{second // 60 % 60:02d}:{second % 60:02d}.000Z")
    assert time.process_time() - started < 0.5  # dateutil: about 1.5 s on this machine


def test_the_client_parses_with_it(s3_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aeromancy.store import s3_client

    seen: list[str] = []

    def counting(text: str) -> object:
        seen.append(text)
        return parse_timestamp(text)

    monkeypatch.setattr(s3_client, "parse_timestamp", counting)
    client = make_client()
    bucket = s3_store_url.removeprefix("s3://").split("/")[0]
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    [item] = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert item["LastModified"].utcoffset() is not None
    assert abs(item["LastModified"].timestamp() - time.time()) < 600
    assert len(seen) == 1
