"""The boto3 client an S3 store talks through: endpoint, retries, timeouts, checksums.

- ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) names a non-AWS server; it must be
  an ``http(s)://host[:port]`` URL (exit 2 otherwise).
- ``AEROMANCY_S3_MAX_ATTEMPTS`` (default 5) tries of each request, the first included.
- ``AEROMANCY_S3_TIMEOUT`` (default 8 s) bounds each connect and each wait for the
  server's next bytes, so a silent server costs at most attempts x timeout plus
  botocore's backoff (under a minute by default) before exit 3.
- boto3 >= 1.36 adds CRC checksums to every request and checks them in answers by
  default, which many S3-compatible servers reject or do not send; off AWS both
  settings are ``when_required`` (the SHA-256 of small uploads is still sent).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp as botocore_timestamp

from aeromancy.errors import UsageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_ATTEMPTS_ENV = "AEROMANCY_S3_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 5
TIMEOUT_ENV = "AEROMANCY_S3_TIMEOUT"
DEFAULT_TIMEOUT = 8.0
ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn")
Checksums = Literal["when_supported", "when_required"]


def max_attempts() -> int:
    """Return how many times one request is tried before the store counts as unavailable."""
    text = os.environ.get(MAX_ATTEMPTS_ENV, "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_ATTEMPTS


def timeout() -> float:
    """Return the seconds a connect or a read may wait; raise UsageError for a bad value."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"{TIMEOUT_ENV}={text!r} is not a number of seconds",
            f"give a positive number, e.g. {TIMEOUT_ENV}=30, or unset it",
        )
    return value


def endpoint_url() -> str | None:
    """Return the non-AWS endpoint the environment names (None for AWS itself).

    Raises UsageError (exit 2) when the value is not an http(s) URL with a host.
    """
    for variable in ENDPOINT_ENVS:
        value = os.environ.get(variable, "").strip()
        if value:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise UsageError(
                    f"{variable}={value!r} is not a URL",
                    "give the server's address, e.g. http://127.0.0.1:9000, or unset it for AWS",
                )
            return value
    return None


def is_aws(endpoint: str | None) -> bool:
    """Return True when ``endpoint`` is AWS S3 itself (None: boto3's default, AWS)."""
    if endpoint is None:
        return True
    host = urlparse(endpoint).hostname or ""
    return host.endswith(_AWS_HOSTS)


def client_config(checksums: Checksums) -> Config:
    """Return the client settings; ``checksums`` is ``when_supported`` or ``when_required``."""
    seconds = timeout()
    return Config(
        # total_max_attempts counts the first try; botocore's max_attempts would not.
        retries={"mode": "standard", "total_max_attempts": max_attempts()},
        connect_timeout=seconds,
        read_timeout=seconds,
        max_pool_connections=64,
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
    )


def default_checksums(endpoint: str | None) -> Checksums:
    """Return boto3's default checksum behaviour on AWS, and ``when_required`` elsewhere."""
    return "when_supported" if is_aws(endpoint) else "when_required"


def make_client(checksums: Checksums | None = None) -> S3Client:
    """Return an S3 client with bounded retries and timeouts and a pool for many threads."""
    endpoint = endpoint_url()
    config = client_config(checksums or default_checksums(endpoint))
    core = botocore.session.get_session()
    parsers = core.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
    session = boto3.session.Session(botocore_session=core)
    return session.client("s3", endpoint_url=endpoint, config=config)


def parse_timestamp(value: str) -> datetime:
    """Return a timestamp of an answer as botocore does, the ISO 8601 form fast.

    botocore parses every timestamp with dateutil: for a listing of 10,000 objects
    (each with its ``LastModified``) that is seconds of CPU; ``fromisoformat`` takes
    milliseconds. Other forms (HTTP dates in headers) go to botocore's own parser.
    """
    if len(value) >= 20 and value[10] == "T":
        text = f"{value[:-1]}+00:00" if value.endswith("Z") else value
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    return botocore_timestamp(value)
