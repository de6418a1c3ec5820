"""The two archive formats: what ``docker save`` writes, and what ``docker load`` reads.

Reading: ``docker save`` writes each layer as an uncompressed tar (``<id>/layer.tar``
in Docker's own format, ``blobs/sha256/<hex>`` in the OCI layout of newer engines)
whose sha256 is the layer's diff id, and the config, whose sha256 is the image id.
The archive is read as a stream; each layer is spooled to one temporary file while
it is hashed, handed on, and removed.

Writing: a loadable archive needs only ``manifest.json``, the config and the layers:
``[{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<diff id>.tar", ...]}]``.
A layer whose chain the engine already holds may be left out: ``docker load`` looks
a layer up by its chain id before it opens the layer's file.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Protocol, cast

from aeromancy.environments.record import Blob, StoredImage
from aeromancy.errors import InfrastructureError
from aeromancy.store.backend import ProgressCallback
from aeromancy.store.hashing import CHUNK_SIZE


class Readable(Protocol):
    """Anything with ``read(size)``: a pipe, a file, a :class:`CountingReader`."""

    def read(self, size: int = -1, /) -> bytes: ...


#: Called with (diff id hex, spooled file, size) for each layer of a saved archive.
LayerSink = Callable[[str, Path, int], None]
#: Members smaller than this are hashed in memory; they are metadata, never layers.
SMALL_MEMBER = 64 << 10


def read_saved_archive(
    stream: Readable, image_id: str, diff_ids: list[str], sink: LayerSink, spool_dir: Path
) -> bytes:
    """Read a ``docker save`` archive of ``image_id``; hand each layer to ``sink``.

    ``diff_ids`` (hex, from the engine) say which members are layers. Returns the
    config's bytes; raises InfrastructureError when the config or a layer is missing.
    """
    wanted_config = image_id.removeprefix("sha256:")
    layers = set(diff_ids)
    config: bytes | None = None
    seen: set[str] = set()
    # A stream ("r|") is only ever read(): the cast states what tarfile needs of it.
    with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", bufsize=CHUNK_SIZE) as archive:
        for member in archive:
            if not member.isfile():
                continue  # directories; a repeated layer is a symlink to the first copy
            handle = archive.extractfile(member)
            assert handle is not None
            if member.size < SMALL_MEMBER:
                data = handle.read()
                digest = hashlib.sha256(data).hexdigest()
                if digest == wanted_config:
                    config = data
                    continue
                if digest not in layers:
                    continue
                spooled = _spool_bytes(data, spool_dir)
            else:
                spooled, digest = _spool(handle, spool_dir)
                if digest not in layers:
                    spooled.unlink()
                    continue
            try:
                if digest not in seen:
                    seen.add(digest)
                    sink(digest, spooled, member.size)
            finally:
                spooled.unlink(missing_ok=True)
    missing = layers - seen
    if config is None or missing:
        what = "its config" if config is None else f"{len(missing)} of its layers"
        raise InfrastructureError(
            f"docker save of {image_id} lacked {what} (an engine storing compressed layers?)",
            "report this with `docker version`; tracked runs still work with "
            "AEROMANCY_STORE_IMAGES=0",
        )
    return config


def write_loadable_archive(
    out: IO[bytes],
    image: StoredImage,
    files: Mapping[str, Path],
    progress: ProgressCallback,
) -> None:
    """Write to ``out`` an archive ``docker load`` turns into ``image``.

    ``files`` maps the config's and each needed layer's digest to a verified local
    copy; layers absent from it are left out (the engine holds their chain).
    """
    manifest = [
        {
            "Config": f"{image.config.sha256}.json",
            "RepoTags": list(image.tags),
            "Layers": [f"{layer.sha256}.tar" for layer in image.layers],
        }
    ]
    with tarfile.open(
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK_SIZE
    ) as archive:
        _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        _add_file(archive, f"{image.config.sha256}.json", image.config, files, progress)
        for layer in image.distinct_layers():
            if layer.sha256 in files:
                _add_file(archive, f"{layer.sha256}.tar", layer, files, progress)


def _spool(handle: IO[bytes], spool_dir: Path) -> tuple[Path, str]:
    """Copy ``handle`` into a temporary file while hashing it; return (file, sha256 hex)."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".layer", delete=False) as spooled:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            spooled.write(chunk)
    return Path(spooled.name), digest.hexdigest()


def _spool_bytes(data: bytes, spool_dir: Path) -> Path:
    with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".layer", delete=False) as spooled:
        spooled.write(data)
    return Path(spooled.name)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _add_file(
    archive: tarfile.TarFile,
    name: str,
    blob: Blob,
    files: Mapping[str, Path],
    progress: ProgressCallback,
) -> None:
    info = tarfile.TarInfo(name)
    info.size = blob.size
    info.mode = 0o644
    with files[blob.sha256].open("rb") as handle:
        archive.addfile(info, CountingReader(handle, progress))


class CountingReader(io.RawIOBase):
    """A reader that reports each read's size to a progress callback."""

    def __init__(self, handle: Readable, progress: ProgressCallback) -> None:
        self.handle = handle
        self.progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.progress(len(data))
        return data
