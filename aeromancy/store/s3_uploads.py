"""Multipart uploads of killed pushes: noted locally by owner, aborted by the next push.

An S3 multipart upload cut short (a push killed mid-file) is invisible but kept, and
billed, until aborted. Before each multipart upload the store notes the bucket, key
and start time in ``<cache>/uploads/<owner>-<hex>.json`` and removes the note when
done. The next large upload of any process on this host aborts the uploads at the
keys of notes whose process is gone, unless a live process of this host has a note
for the same key. (A process on another host uploading that very blob at that
moment would see its upload fail, exit 3; pushing again succeeds.)
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from aeromancy.leftovers import abandoned, owner
from aeromancy.settings import default_cache_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def notes_dir() -> Path:
    """Return where notes of multipart uploads in progress are kept."""
    return default_cache_dir() / "uploads"


@contextlib.contextmanager
def noted(bucket: str, key: str) -> Iterator[None]:
    """Keep a note of one multipart upload to ``bucket``/``key`` for the block."""
    folder = notes_dir()
    folder.mkdir(parents=True, exist_ok=True)
    note = folder / f"{owner()}-{uuid.uuid4().hex}.json"
    note.write_text(json.dumps({"bucket": bucket, "key": key, "started": time.time()}))
    try:
        yield
    finally:
        note.unlink(missing_ok=True)


def abort_abandoned(client: S3Client, bucket: str) -> int:
    """Abort the uploads of dead processes' notes for ``bucket``; return how many."""
    notes = _read_notes()
    live = {note["key"] for path, note in notes if not _dead(path)}
    aborted = 0
    for path, note in notes:
        if not _dead(path) or note.get("bucket") != bucket:
            continue
        if note["key"] not in live:
            aborted += _abort_at(client, bucket, note["key"])
        path.unlink(missing_ok=True)
    return aborted


def _read_notes() -> list[tuple[Path, dict[str, str]]]:
    found = []
    for path in sorted(notes_dir().glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            found.append((path, json.loads(path.read_text())))
    return found


def _dead(path: Path) -> bool:
    try:
        return abandoned(path.name, path.stat().st_mtime)
    except FileNotFoundError:
        return False


def _abort_at(client: S3Client, bucket: str, key: str) -> int:
    listing = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    aborted = 0
    for upload in listing.get("Uploads", []):
        if upload.get("Key") == key:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
            aborted += 1
    return aborted
