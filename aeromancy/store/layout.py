"""Where each kind of object lives in the store (the layout in DESIGN.md).

```
blobs/sha256/<2 hex>/<64 hex>                  file contents, shared by both namespaces
artifacts/<project>/<name>/v<N>.json           tracked manifests
dev/artifacts/<project>/<name>/dev<N>.json     dev manifests
runs/<project>/<run-id>.json                   tracked run records
dev/runs/<project>/<run-id>.json               dev run records
```
"""

from __future__ import annotations

import re

from aeromancy.errors import InvalidName
from aeromancy.store.manifest import Namespace

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAMESPACE_ROOT: dict[str, str] = {"tracked": "", "dev": "dev/"}


def check_namespace(namespace: str) -> Namespace:
    """Return ``namespace`` if it is 'tracked' or 'dev'; raise InvalidName otherwise."""
    if namespace == "tracked":
        return "tracked"
    if namespace == "dev":
        return "dev"
    raise InvalidName(f"unknown store namespace {namespace!r}", "use 'tracked' or 'dev'")


def label(namespace: Namespace, number: int) -> str:
    """Return the version label: ``v3`` (tracked) or ``dev3`` (dev)."""
    return f"{'dev' if namespace == 'dev' else 'v'}{number}"


def blob_key(sha256_hex: str) -> str:
    """Return the key of a blob; raise InvalidName for anything but 64 lowercase hex digits."""
    if _SHA256.fullmatch(sha256_hex) is None:
        raise InvalidName(f"not a sha256 digest: {sha256_hex!r}", "give 64 lowercase hex digits")
    return f"blobs/sha256/{sha256_hex[:2]}/{sha256_hex}"


def artifacts_prefix(namespace: Namespace, project: str) -> str:
    """Return the folder holding every artifact of ``project`` in ``namespace``."""
    return f"{_NAMESPACE_ROOT[namespace]}artifacts/{project}/"


def versions_prefix(namespace: Namespace, project: str, name: str) -> str:
    """Return the folder holding every manifest of one artifact."""
    return f"{artifacts_prefix(namespace, project)}{name}/"


def manifest_key(namespace: Namespace, project: str, name: str, number: int) -> str:
    """Return the key of one version's manifest."""
    return f"{versions_prefix(namespace, project, name)}{label(namespace, number)}.json"


def parse_manifest_key(key: str, namespace: Namespace) -> tuple[str, int] | None:
    """Return (name, number) for a manifest key under an artifacts prefix, or None."""
    parts = key.rsplit("/", 2)
    if len(parts) != 3:
        return None
    _, name, filename = parts
    prefix = "dev" if namespace == "dev" else "v"
    match = re.fullmatch(rf"{prefix}([1-9][0-9]*)\.json", filename)
    return (name, int(match.group(1))) if match else None


def runs_prefix(namespace: Namespace, project: str) -> str:
    """Return the folder holding the run records of ``project``."""
    return f"{_NAMESPACE_ROOT[namespace]}runs/{project}/"


def run_record_key(namespace: Namespace, project: str, run_id: str) -> str:
    """Return the key of one run record."""
    return f"{runs_prefix(namespace, project)}{run_id}.json"
