"""S3Backend: the store in an S3 bucket (or any S3-compatible server) through boto3.

boto3 finds credentials through its standard chain and honours ``AWS_ENDPOINT_URL``
(MinIO, Ceph, moto). Manifests and run records use a conditional PUT with
``If-None-Match: *``, so the bucket needs no versioning and no locks. Blobs under
16 MiB go up in one PUT of bytes hashed in memory, with ``ChecksumSHA256``; larger
ones in parts with boto3's transfer manager after a hash pass, and the file's size
and mtime are checked again after the upload.
botocore retries throttling, 5xx and dropped connections with backoff, a bounded
number of times (``AEROMANCY_S3_MAX_ATTEMPTS``, default 5); after that the store is
unavailable (exit 3).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from boto3.s3.transfer import S3Transfer, TransferConfig

from aeromancy.errors import NotFound, StoreUnavailable, UsageError
from aeromancy.store.backend import (
    Destination,
    FilePath,
    ObjectInfo,
    ProgressCallback,
    StoredBlob,
    read_small,
    reading_source,
    state_after,
    state_before,
)
from aeromancy.store.hashing import CHUNK_SIZE, sha256_file, write_all
from aeromancy.store.s3_client import make_client, max_attempts, timeout
from aeromancy.store.s3_fast import FastBlobs
from aeromancy.store.s3_probe import (
    PROBE_PREFIX,
    conditional_writes,
    single_writer,
    unsafe_server,
)
from aeromancy.store.s3_uploads import abort_abandoned, noted
from aeromancy.store.statcache import FileStat

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Files below this go up in one verified PUT (read into memory); larger ones in parts.
MULTIPART_THRESHOLD = 16 << 20


def transfer_config() -> TransferConfig:
    """Return the multipart settings: 8 MiB parts, 8 in flight, at most 8 parts in memory.

    One transfer manager with this config serves every file of a push, so memory
    stays near 64 MiB of part buffers however many files move at once.
    """
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=8 << 20,
        max_concurrency=8,
        max_io_queue=16,
    )
    # s3transfer reads up to this many parts ahead into memory (default 10).
    config.max_in_memory_upload_chunks = 8
    return config


_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
#: A connection that breaks while an answer's body is read: read the object again.
_BROKEN_BODY = (
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


class S3Backend:
    """A store under ``s3://bucket/prefix``."""

    remote = True

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or make_client()
        # Shared by every thread of a push: one pool of part uploads, one memory bound.
        # The stubs type ``config`` as botocore's Config; boto3 takes a TransferConfig.
        self.transfer = S3Transfer(self.client, transfer_config())  # type: ignore[arg-type]
        self._swept_uploads = False
        # Off AWS, small blobs skip boto3's per-request machinery (see s3_fast).
        usable = FastBlobs.usable(self.client, bucket)
        self.fast = FastBlobs(self.client, bucket) if usable else None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_bytes(self, key: str) -> bytes | None:
        """Return the object's bytes; a body cut off midway is read again (bounded)."""
        attempts = max_attempts()
        with self._translated():
            for attempt in range(1, attempts + 1):
                try:
                    response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) in _MISSING_CODES:
                        return None
                    raise
                try:
                    return response["Body"].read()
                except _BROKEN_BODY:
                    if attempt == attempts:
                        raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def create(self, key: str, data: bytes) -> bool:
        """Create ``key`` if absent; True also when it already holds exactly ``data``.

        The second case is our own write whose answer was lost (a reset, a timeout)
        and that botocore sent again: callers make ``data`` unique (a nonce, a run
        id), so identical bytes mean the same write. See :mod:`.s3_probe` for servers
        that do not honour ``If-None-Match``.
        """
        with self._translated():
            if not self._conditional_puts():
                if self.exists(key):
                    return self.read_bytes(key) == data
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
                return True
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
                return True
            except botocore.exceptions.ClientError as exc:
                # 409: a rival conditional write to this key is in flight; it will win or
                # fail, and either way this number is not ours to take.
                if _code(exc) in _CONFLICT_CODES:
                    return self.read_bytes(key) == data
                raise

    def _conditional_puts(self) -> bool:
        """Return True when the server honours ``If-None-Match: *``; refuse unsafe servers.

        False only in the single-writer mode the user opted into.
        """
        verdict = conditional_writes(self.client, self.bucket, self._key(PROBE_PREFIX))
        if verdict == "honoured":
            return True
        if single_writer():
            return False
        raise unsafe_server(self.endpoint(), verdict)

    def endpoint(self) -> str:
        """Return the server's URL, as messages name it."""
        return str(self.client.meta.endpoint_url)

    def store_file(
        self,
        path: FilePath,
        destination: Destination,
        progress: ProgressCallback,
        before: FileStat | None = None,
    ) -> StoredBlob:
        before = state_before(path, before)
        with self._translated():
            self._conditional_puts()  # refuse an unsafe server before any blob goes up
        if before.size < MULTIPART_THRESHOLD:
            sha256_hex, state = self._put_small(path, before, destination)
            progress(before.size)
        else:
            sha256_hex, state = self._put_large(path, before, destination, progress)
        return StoredBlob(sha256_hex, before.size, state)

    def _put_small(
        self, path: FilePath, before: FileStat, destination: Destination
    ) -> tuple[str, FileStat | None]:
        """Read a small file once, hash it in memory and PUT those very bytes.

        ``ChecksumSHA256`` lets S3 refuse bytes damaged on the way (BadDigest).
        """
        data = read_small(path, before.size)
        digest = hashlib.sha256(data).digest()
        key = destination(digest.hex())
        state = state_after(path, before)  # a file rewritten while it was read: torn
        if key is not None and self.fast is not None:
            self.fast.put(self._key(key), data, base64.b64encode(digest).decode())
        elif key is not None:
            with self._translated():
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(digest).decode(),
                )
        return digest.hex(), state

    def _put_large(
        self, path: FilePath, before: FileStat, destination: Destination, progress: ProgressCallback
    ) -> tuple[str, FileStat | None]:
        """Hash a large file, then send it in parts; delete the object if the file changed.

        The parts are read again as they go, and the client cannot hash them on the
        way, so the file's state is checked once more after the upload.
        """
        with reading_source(path):
            sha256_hex = sha256_file(path)
        key = destination(sha256_hex)
        state = state_after(path, before)
        if key is None:
            progress(before.size)
            return sha256_hex, state
        with self._translated():
            if not self._swept_uploads:
                self._swept_uploads = True
                abort_abandoned(self.client, self.bucket)  # of pushes killed mid-file
            with noted(self.bucket, self._key(key)):
                self.transfer.upload_file(str(path), self.bucket, self._key(key), callback=progress)
        try:
            after = state_after(path, before)
        except UsageError:
            self.delete(key)  # the parts may hold other bytes than the key names
            raise
        return sha256_hex, (state if after is not None else None)

    def delete(self, key: str) -> None:
        with self._translated():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def download_file(
        self,
        key: str,
        dest: Path,
        progress: ProgressCallback | None = None,
        size: int | None = None,
    ) -> str:
        """Download the object to ``dest`` in one streamed GET, hashing it as it is written.

        A connection that breaks midway resumes where it stopped (a ranged GET of the
        rest, ``If-Match`` the first answer's ETag), at most ``max_attempts()`` times.
        One stream, not parallel ranged GETs: a server that reads the whole object for
        each range (moto does, about 2.5 s per 8 MiB range of a 750 MB object, one
        request at a time) made the ranged download of a large layer time out.
        ``size`` is not needed (the answer says it).
        """
        if self.fast is not None and size is not None and size < MULTIPART_THRESHOLD:
            return self._download_small(key, dest, progress)
        digest = hashlib.sha256()
        written = 0
        etag = ""
        attempts = max_attempts()
        with open(dest, "wb", buffering=0) as writer:
            for attempt in range(1, attempts + 1):
                response = self._get_from(key, written, etag)
                etag = etag or str(response.get("ETag") or "")
                try:
                    for chunk in response["Body"].iter_chunks(CHUNK_SIZE):
                        digest.update(chunk)
                        write_all(writer, memoryview(chunk))
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    return digest.hexdigest()
                except _BROKEN_BODY as exc:
                    if attempt == attempts:
                        raise StoreUnavailable(
                            f"the connection to {self.describe()} broke {attempts} times while "
                            f"reading {key} ({written} bytes read): {exc}",
                            "check the network, then try again",
                        ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _download_small(self, key: str, dest: Path, progress: ProgressCallback | None) -> str:
        """Write a small object to ``dest`` from one lean GET; return its SHA-256."""
        assert self.fast is not None
        data = self.fast.get(self._key(key))
        if data is None:
            raise NotFound(f"{key} is missing from {self.describe()}")
        with open(dest, "wb", buffering=0) as writer:
            write_all(writer, memoryview(data))
        if progress is not None:
            progress(len(data))
        return hashlib.sha256(data).hexdigest()

    def _get_from(self, key: str, offset: int, etag: str) -> Any:
        """Return the GET answer for ``key`` from byte ``offset`` on (the same object)."""
        bucket, full_key = self.bucket, self._key(key)
        with self._translated():
            try:
                if not offset:
                    response = self.client.get_object(Bucket=bucket, Key=full_key)
                elif etag:
                    response = self.client.get_object(
                        Bucket=bucket, Key=full_key, Range=f"bytes={offset}-", IfMatch=etag
                    )
                else:
                    response = self.client.get_object(
                        Bucket=bucket, Key=full_key, Range=f"bytes={offset}-"
                    )
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING_CODES:
                    raise NotFound(f"{key} is missing from {self.describe()}") from exc
                raise
        if offset and not str(response.get("ContentRange") or "").startswith(f"bytes {offset}-"):
            raise StoreUnavailable(
                f"{self.describe()} ignored the range of a resumed download of {key}",
                "check the network, then try again (nothing was used)",
            )
        return response

    def exists(self, key: str) -> bool:
        with self._translated():
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING_CODES:
                    return False
                raise

    def list_prefix(self, prefix: str, limit: int | None = None) -> list[str]:
        full = self._key(prefix)
        strip = len(self._key(""))
        keys: list[str] = []
        with self._translated():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=full,
                PaginationConfig={"MaxItems": limit} if limit is not None else {},
            )
            for page in pages:
                keys.extend(item["Key"][strip:] for item in page.get("Contents", []))
        return sorted(keys)

    def list_objects(self, prefix: str, start_after: str = "") -> list[ObjectInfo]:
        strip = len(self._key(""))
        found: list[ObjectInfo] = []
        with self._translated():
            paginator = self.client.get_paginator("list_objects_v2")
            pages = (
                paginator.paginate(
                    Bucket=self.bucket, Prefix=self._key(prefix), StartAfter=self._key(start_after)
                )
                if start_after
                else paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            )
            for page in pages:
                found.extend(
                    ObjectInfo(item["Key"][strip:], item["Size"], item["LastModified"].timestamp())
                    for item in page.get("Contents", [])
                )
        return sorted(found)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn botocore's failures into StoreUnavailable (exit 3) with a hint."""
        try:
            yield
        except botocore.exceptions.NoCredentialsError as exc:
            raise StoreUnavailable(
                f"no AWS credentials for {self.describe()}",
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
            ) from exc
        except (
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
        ) as exc:
            raise StoreUnavailable(
                f"the S3 server at {self.endpoint()} did not answer within {timeout():g} s "
                f"({max_attempts()} attempts) for {self.describe()}",
                "check AWS_ENDPOINT_URL and the network, or raise AEROMANCY_S3_TIMEOUT",
            ) from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.IncompleteReadError,
        ) as exc:
            raise StoreUnavailable(
                f"cannot reach {self.describe()} at {self.endpoint()} after {max_attempts()} "
                f"attempts: {exc}",
                "check AWS_ENDPOINT_URL and the network, then try again",
            ) from exc
        except botocore.exceptions.ClientError as exc:
            raise _refused(self.describe(), exc) from exc
        except (S3UploadFailedError, S3TransferFailedError) as exc:
            # The transfer manager wraps the service's answer; report that answer.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise _refused(self.describe(), cause) from exc
            raise StoreUnavailable(
                f"transfer to {self.describe()} at {self.endpoint()} failed: {exc}",
                "check the bucket, credentials and network, then try again",
            ) from exc


def _refused(where: str, exc: botocore.exceptions.ClientError) -> StoreUnavailable:
    code = _code(exc)
    return StoreUnavailable(
        f"{where} refused the request: {code} {_message(exc)}".rstrip(), _hint_for(code)
    )


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _hint_for(code: str) -> str:
    hints = {
        "NoSuchBucket": "create the bucket, or fix the bucket name in --store / AEROMANCY_STORE",
        "AccessDenied": "check that your credentials may read and write this bucket",
        "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID / AWS_PROFILE",
        "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY",
    }
    return hints.get(code, "check the bucket, credentials and AWS_ENDPOINT_URL")
