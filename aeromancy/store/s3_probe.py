"""Does this S3 server honour ``If-None-Match: *``? Asked once per endpoint and bucket.

Versions and run records are created with a conditional PUT; a server that ignores
the header (Garage) lets a second publisher silently replace the first one's
manifest, and one that refuses it (older MinIO, Backblaze B2, OVH: NotImplemented)
cannot create anything safely. Before the first create, the store writes a probe
object, writes it again with ``If-None-Match: *`` and deletes it:

- 412 Precondition Failed: honoured; creates are conditional PUTs.
- success: ignored; refused (exit 3) unless ``AEROMANCY_S3_SINGLE_WRITER=1`` says only
  one process ever writes to the store, when a create is a HEAD then a plain PUT.
- NotImplemented (or 501): refused likewise, with the same opt-in.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from typing import TYPE_CHECKING, Literal

import botocore.exceptions

from aeromancy.errors import InfrastructureError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SINGLE_WRITER_ENV = "AEROMANCY_S3_SINGLE_WRITER"
PROBE_PREFIX = "tmp/conditional-write-probe-"
Verdict = Literal["honoured", "ignored", "refused"]

_verdicts: dict[tuple[str, str], Verdict] = {}
_lock = threading.Lock()
_PRECONDITION = {"PreconditionFailed", "412"}
_UNSUPPORTED = {"NotImplemented", "501"}


def single_writer() -> bool:
    """Return True when the user declared that only one process writes to the store."""
    return os.environ.get(SINGLE_WRITER_ENV, "").strip().lower() in ("1", "true", "yes")


def conditional_writes(client: S3Client, bucket: str, probe_key: str) -> Verdict:
    """Return how the server at ``client``'s endpoint treats ``If-None-Match: *`` (cached)."""
    cache_key = (str(client.meta.endpoint_url), bucket)
    with _lock:
        if cache_key not in _verdicts:
            _verdicts[cache_key] = _probe(client, bucket, f"{probe_key}{uuid.uuid4().hex}")
        return _verdicts[cache_key]


def forget_verdicts() -> None:
    """Drop every cached verdict (a server may be upgraded while a process runs)."""
    with _lock:
        _verdicts.clear()


def _probe(client: S3Client, bucket: str, key: str) -> Verdict:
    try:
        for attempt in ("first", "second"):
            try:
                client.put_object(Bucket=bucket, Key=key, Body=b"probe", IfNoneMatch="*")
            except botocore.exceptions.ClientError as exc:
                code = _code(exc)
                if code in _UNSUPPORTED:
                    return "refused"
                if code in _PRECONDITION and attempt == "second":
                    return "honoured"
                raise
        return "ignored"
    finally:
        with contextlib.suppress(botocore.exceptions.ClientError):  # refused: say why above
            client.delete_object(Bucket=bucket, Key=key)


def unsafe_server(endpoint: str, verdict: Verdict) -> InfrastructureError:
    """Return the exit-3 error for a server that cannot create objects atomically."""
    behaviour = {
        "ignored": "ignores If-None-Match: * (a second conditional PUT of one key succeeded)",
        "refused": "does not implement conditional PUTs (If-None-Match: * is NotImplemented)",
    }[verdict]
    return InfrastructureError(
        f"the S3 server at {endpoint} {behaviour}, so concurrent publishers could overwrite "
        "each other's versions",
        f"use a server that honours it (AWS S3, current MinIO, Ceph RGW, R2), or set "
        f"{SINGLE_WRITER_ENV}=1 if only one process ever writes to this store",
    )


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
