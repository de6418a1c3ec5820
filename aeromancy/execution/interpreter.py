"""Which Python a task's child process runs: the project's own environment.

In order: ``AEROMANCY_PROJECT_PYTHON`` (the image sets it to the project venv's python),
the interpreter pdm chose for the project (``.pdm-python``), the project's in-project
``.venv``, else the interpreter running Aeromancy.
"""

from __future__ import annotations

import os
import subprocess
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


def python_version(interpreter: str) -> str:
    """Return ``interpreter``'s version as ``X.Y.Z``.

    Read from the venv's ``pyvenv.cfg`` where there is one (no process started), else
    asked of the interpreter itself.
    """
    if os.path.realpath(interpreter) == os.path.realpath(sys.executable):
        return ".".join(str(part) for part in sys.version_info[:3])
    recorded = _pyvenv_version(Path(interpreter).parent.parent / "pyvenv.cfg")
    if recorded:
        return recorded
    asked = subprocess.run(
        [interpreter, "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    return asked.stdout.strip() or "unknown"


def _pyvenv_version(config: Path) -> str | None:
    """Return the Python version a venv's ``pyvenv.cfg`` records, or None."""
    try:
        lines = config.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            parts = value.strip().split(".")[:3]
            return ".".join(parts) if parts[0] else None
    return None
