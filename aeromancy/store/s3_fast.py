"""A lean GET and PUT of small blobs off AWS: botocore's SigV4 signing over one urllib3 pool.

A push or pull of many small files is one request per blob; against a local server
boto3's client spends most of each request's CPU in its own machinery (hooks,
endpoint rules, serializing, parsing). This path signs with botocore's ``SigV4Auth``
and the credentials, region and endpoint the boto3 client resolved, and sends through
one ``urllib3.PoolManager``. Only for non-AWS, path-style endpoints; blobs only.
Retries (connection errors, 5xx, 429) are bounded by ``max_attempts()`` with backoff;
then StoreUnavailable (exit 3). Messages never carry headers or keys.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from aeromancy.errors import StoreUnavailable
from aeromancy.store.s3_client import is_aws, max_attempts, timeout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_RETRIED = {429, 500, 502, 503, 504}
_UNSIGNED = "UNSIGNED-PAYLOAD"


class FastBlobs:
    """Small-blob GET and PUT for one bucket on a non-AWS endpoint."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.endpoint = str(client.meta.endpoint_url).rstrip("/")
        self.bucket = bucket
        seconds = timeout()
        self.pool = urllib3.PoolManager(
            maxsize=64, retries=False, timeout=urllib3.Timeout(connect=seconds, read=seconds)
        )

    @staticmethod
    def usable(client: S3Client, bucket: str) -> bool:
        """Return True when the endpoint is not AWS and the bucket can go in the path."""
        endpoint = client.meta.endpoint_url
        return (
            not is_aws(endpoint)
            and re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) is not None
            and client._request_signer._credentials is not None  # type: ignore[attr-defined]
        )

    def get(self, key: str) -> bytes | None:
        """Return the object's bytes, or None when it does not exist (404)."""
        response = self._send("GET", key, b"", {})
        return None if response.status == 404 else response.data

    def put(self, key: str, data: bytes, sha256_b64: str) -> None:
        """PUT ``data`` with its SHA-256, so the server refuses damaged bytes."""
        self._send(
            "PUT",
            key,
            data,
            {"x-amz-checksum-sha256": sha256_b64, "x-amz-sdk-checksum-algorithm": "SHA256"},
        )

    def _send(
        self, method: str, key: str, body: bytes, extra: dict[str, str]
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self.endpoint}/{self.bucket}/{quote(key, safe='/~')}"
        attempts = max_attempts()
        problem = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(min(0.05 * 2**attempt, 2.0))
            headers = self._signed(method, url, body, extra)
            try:
                response = self.pool.request(method, url, body=body or None, headers=headers)
            except urllib3.exceptions.HTTPError as exc:
                problem = type(exc).__name__
                continue
            if response.status in _RETRIED:
                problem = f"HTTP {response.status}"
                continue
            if response.status < 300 or (method == "GET" and response.status == 404):
                return response
            raise StoreUnavailable(
                f"s3://{self.bucket} refused the request: HTTP {response.status} "
                f"{_code(response.data)}".rstrip(),
                "check the bucket, credentials and AWS_ENDPOINT_URL",
            )
        raise StoreUnavailable(
            f"cannot reach s3://{self.bucket} at {self.endpoint} after {attempts} attempts "
            f"({problem})",
            "check AWS_ENDPOINT_URL and the network, then try again",
        )

    def _signed(self, method: str, url: str, body: bytes, extra: dict[str, str]) -> dict[str, str]:
        credentials = self.client._request_signer._credentials  # type: ignore[attr-defined]
        frozen = credentials.get_frozen_credentials()
        headers = {"x-amz-content-sha256": _UNSIGNED, **extra}
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(frozen, "s3", self.client.meta.region_name).add_auth(request)
        return dict(request.headers.items())


def _code(body: bytes) -> str:
    """Return the S3 error code in an error answer's XML, or ''."""
    found = re.search(rb"<Code>([A-Za-z0-9.]{1,64})</Code>", body or b"")
    return found.group(1).decode() if found else ""
