"""Which Python a task's child process runs: the project's own environment.

In order: ``AEROMANCY_PROJECT_PYTHON`` (the image sets it to the project venv's python),
the interpreter pdm chose for the project (``.pdm-python``), the project's in-project
``.venv``, else the interpreter running Aeromancy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from aeromancy.errors import UsageError

PROJECT_PYTHON_ENV = "AEROMANCY_PROJECT_PYTHON"


def project_python(root: Path, environ: Mapping[str, str] | None = None) -> str:
    """Return the path of the project's interpreter. Raises UsageError for a bad override."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(PROJECT_PYTHON_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK) or os.path.isdir(explicit):
            raise UsageError(
                f"{PROJECT_PYTHON_ENV}={explicit} is not an executable Python",
                f"point it at the project's python or unset {PROJECT_PYTHON_ENV}",
            )
        return explicit
    for candidate in (_pdm_python(root), root / ".venv" / "bin" / "python"):
        if candidate is not None and os.access(candidate, os.X_OK):
            return str(candidate)
    return sys.executable


def _pdm_python(root: Path) -> Path | None:
    """Return the interpreter ``pdm use`` recorded for the project, or None."""
    try:
        text = (root / ".pdm-python").read_text().strip()
    except OSError:
        return None
    return Path(text) if text else None
