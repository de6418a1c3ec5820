"""Where environment images live in the store.

```
images/<64 hex>.json                    one image: its config blob and layer blobs
images/tags/<repository>/<tag>.json     which image a recipe tag named when it was saved
```

The ``<64 hex>`` is the image id without ``sha256:``. The config and every layer
are ordinary blobs under ``blobs/sha256/``: the config's digest is the image id, a
layer's digest is its diff id (the sha256 of the uncompressed layer tar).
"""

from __future__ import annotations

import re

from aeromancy.errors import InvalidName, UsageError

IMAGES_PREFIX = "images/"
TAGS_PREFIX = "images/tags/"
_IMAGE_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_REPOSITORY = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_TAG = re.compile(rf"({_REPOSITORY}):([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")


def check_repository(name: str) -> str:
    """Return ``name`` if Docker accepts it as a repository; raise UsageError otherwise."""
    if re.fullmatch(_REPOSITORY, name) is None or len(name) > 255:
        raise UsageError(
            f"[tool.aeromancy] image_repository {name!r} is not a Docker repository name",
            "use lower-case letters and digits, with . _ - inside a part and / between "
            "parts, e.g. aeromancy/my-project",
        )
    return name


def image_hex(image_id: str) -> str:
    """Return the 64 hex digits of ``sha256:<hex>`` (or ``<hex>``); InvalidName otherwise."""
    match = _IMAGE_ID.fullmatch(image_id)
    if match is None:
        raise InvalidName(f"not an image id: {image_id!r}", "give sha256:<64 hex digits>")
    return match.group(1)


def image_key(image_id: str) -> str:
    """Return the key of the stored image ``image_id``."""
    return f"{IMAGES_PREFIX}{image_hex(image_id)}.json"


def tag_key(tag: str) -> str:
    """Return the key recording which image ``repository:tag`` named."""
    match = _TAG.fullmatch(tag)
    if match is None:
        raise InvalidName(f"not an image tag: {tag!r}", "give repository:tag in Docker's charset")
    return f"{TAGS_PREFIX}{match.group(1)}/{match.group(2)}.json"


def parse_image_key(key: str) -> str | None:
    """Return the image id ``sha256:<hex>`` of an ``images/<hex>.json`` key, else None."""
    match = re.fullmatch(r"images/([0-9a-f]{64})\.json", key)
    return f"sha256:{match.group(1)}" if match else None
