"""Artifact store: backends, content-addressed blobs, manifests, read cache, run records.

``open_store(url)`` returns a :class:`Store`; docs/architecture.md lists its methods.
"""

from __future__ import annotations

from aeromancy.store.manifest import ArtifactVersion, FileEntry, Namespace
from aeromancy.store.open import open_store
from aeromancy.store.refs import Reference, parse_ref
from aeromancy.store.store import Store

__all__ = [
    "ArtifactVersion",
    "FileEntry",
    "Namespace",
    "Reference",
    "Store",
    "open_store",
    "parse_ref",
]
