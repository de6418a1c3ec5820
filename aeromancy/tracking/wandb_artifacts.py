"""How an Aeromancy artifact version appears in W&B: name, alias, metadata, entries.

A W&B artifact has the Aeromancy artifact's name and type. W&B numbers its own
versions (v0, v1, ...) and dedups identical contents, so the Aeromancy version is
carried by an alias, ``aeromancy-v3`` (``aeromancy-dev3`` for a dev version), and by
the metadata. The entries are references to the store's content-addressed blobs,
named by each file's path inside the artifact; no file is uploaded to W&B.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aeromancy.store.manifest import ArtifactVersion

if TYPE_CHECKING:
    import wandb

ALIAS_PREFIX = "aeromancy-"
METADATA_KEY = "aeromancy"


def version_alias(version: ArtifactVersion) -> str:
    """Return the W&B alias naming this Aeromancy version, e.g. ``aeromancy-v3``."""
    return f"{ALIAS_PREFIX}{version.label}"


def artifact_path(entity: str | None, project: str, name: str, alias: str) -> str:
    """Return the W&B path ``entity/project/name:alias`` (no entity part when None or '')."""
    prefix = f"{entity}/{project}" if entity else project
    return f"{prefix}/{name}:{alias}"


def input_entry(version: ArtifactVersion) -> dict[str, Any]:
    """Return how an input is recorded in a W&B run's config (and read back by sync)."""
    return {
        "project": version.project,
        "name": version.name,
        "version": version.label,
        "ref": version.ref,
        "digest": version.digest,
        "wandb_alias": version_alias(version),
    }


def artifact_metadata(version: ArtifactVersion) -> dict[str, Any]:
    """Return the W&B metadata of a version: the user's metadata plus an ``aeromancy`` key.

    The ``aeromancy`` key names the version (``name:v3``, ``project/name:v3``), its
    digest, each file's sha256 and size, and the producing run id.
    """
    ours = {
        "version": f"{version.name}:{version.label}",
        "ref": version.ref,
        "digest": version.digest,
        "run_id": version.run_id,
        "namespace": version.namespace,
        "files": {f.path: {"sha256": f.sha256, "size": f.size} for f in version.files},
    }
    return {**version.metadata, METADATA_KEY: ours}


def reference_artifact(version: ArtifactVersion, blob_uris: Mapping[str, str]) -> wandb.Artifact:
    """Return a W&B artifact whose entries reference the store blobs of ``version``.

    ``blob_uris`` maps a sha256 hex to the store URI of that blob. Local blobs
    (``file://``) are checksummed by W&B, which reads them from disk. Remote blobs
    (``s3://``) are added without a checksum: the tracker makes no network calls, and
    the URI already names the content, since blobs are stored under their sha256.
    Raises KeyError naming the blob when ``blob_uris`` lacks one of the version's files.
    """
    import wandb

    artifact = wandb.Artifact(version.name, type=version.type, metadata=artifact_metadata(version))
    for entry in version.files:
        try:
            uri = blob_uris[entry.sha256]
        except KeyError:
            raise KeyError(f"no store URI for blob {entry.sha256} of {version.ref}") from None
        artifact.add_reference(uri, name=entry.path, checksum=uri.startswith("file:"))
    return artifact
