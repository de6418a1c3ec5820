"""Small value types for artifact versions and the JSON manifest that stores them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Namespace = Literal["tracked", "dev"]
MANIFEST_FORMAT = 1
#: Manifests of up to this many files are indented, for a person to read; larger ones
#: are written compact: the indenting encoder is pure Python, and took 60 ms of a
#: 1 s push of 20,000 files against 15 ms for the compact (C) one.
INDENTED_UP_TO = 1000


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact version: relative POSIX path, size in bytes, sha256 hex."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ArtifactVersion:
    """One immutable version of an artifact, as its manifest records it."""

    project: str
    name: str
    version: int
    type: str
    files: tuple[FileEntry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    run_id: str | None = None
    namespace: Namespace = "tracked"
    aeromancy_version: str = ""

    @property
    def label(self) -> str:
        """Return the version label: ``v3`` when tracked, ``dev3`` in the dev namespace."""
        return f"{'dev' if self.namespace == 'dev' else 'v'}{self.version}"

    @property
    def ref(self) -> str:
        """Return the full reference, ``project/name:v3``."""
        return f"{self.project}/{self.name}:{self.label}"

    @property
    def digest(self) -> str:
        """Return ``sha256:<hex>`` over the sorted (path, size, sha256) list: the content id."""
        listing = [[f.path, f.size, f.sha256] for f in sorted(self.files, key=lambda f: f.path)]
        blob = json.dumps(listing, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    @property
    def size(self) -> int:
        """Return the total size of the version's files in bytes."""
        return sum(f.size for f in self.files)

    def to_json(self, nonce: str | None = None) -> bytes:
        """Return the manifest bytes stored at ``artifacts/<project>/<name>/v<N>.json``.

        ``nonce``, when given, makes these bytes this publisher's alone, so that a
        retried create can tell its own manifest from a rival's.
        """
        document: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "namespace": self.namespace,
            "type": self.type,
            "digest": self.digest,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "metadata": self.metadata,
            "created": self.created,
            "run_id": self.run_id,
            "aeromancy_version": self.aeromancy_version,
        }
        if nonce is not None:
            document["nonce"] = nonce
        indent = 2 if len(self.files) <= INDENTED_UP_TO else None
        return json.dumps(document, indent=indent, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ArtifactVersion:
        """Return the version a manifest describes."""
        doc = json.loads(data)
        return cls(
            project=doc["project"],
            name=doc["name"],
            version=int(doc["version"]),
            type=doc["type"],
            files=tuple(FileEntry(f["path"], int(f["size"]), f["sha256"]) for f in doc["files"]),
            metadata=doc.get("metadata") or {},
            created=doc.get("created", ""),
            run_id=doc.get("run_id"),
            namespace=doc.get("namespace", "tracked"),
            aeromancy_version=doc.get("aeromancy_version", ""),
        )
