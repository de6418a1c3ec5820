"""What of the process environment may be recorded, and how credentials are kept out of it.

Run records and tracker runs never copy the environment wholesale: it holds AWS keys,
W&B API keys, MLflow passwords and whatever the user passes with ``--extra-env-var``. Only the
variables on :data:`RECORDABLE_VARIABLES` are recorded, and URL-valued ones are
recorded with their credentials (user info, query string) replaced by ``***``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# Settings that change what a run does or where it writes, and are never secret by
# themselves. Values that are URLs may still embed credentials and are redacted.
RECORDABLE_VARIABLES = (
    "AEROMANCY_STORE",
    "AEROMANCY_CACHE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "WANDB_MODE",
    "WANDB_ENTITY",
    "WANDB_BASE_URL",
    "WANDB_DIR",
    "MLFLOW_TRACKING_URI",
)


def redact_url(value: str) -> str:
    """Return ``value`` with any URL credentials (user info, query) replaced by ``***``.

    A value that is not a URL (a plain path, a region name) is returned unchanged.
    """
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def recordable_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the allow-listed, redacted settings found in ``environ`` (default: os.environ).

    Returns an empty dict when none of the allow-listed variables is set.
    """
    env = os.environ if environ is None else environ
    return {name: redact_url(env[name]) for name in RECORDABLE_VARIABLES if env.get(name)}
