"""Build a Debian base image locally with mmdebstrap, for machines without a registry.

``mmdebstrap ... | docker import`` gives a minimal image with Python from Debian's own
packages; name it in ``[tool.aeromancy] base_image``. The tests and the launcher
benchmark build theirs this way too.
"""

from __future__ import annotations

import shutil
import subprocess

from aeromancy.errors import ImageBuildError

PYTHON_PACKAGES = ("python3", "python3-venv", "python3-pip")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def build_debian_base_image(
    tag: str,
    suite: str = "bookworm",
    packages: tuple[str, ...] = PYTHON_PACKAGES,
    mirror: str = DEFAULT_MIRROR,
) -> None:
    """Build a minbase ``suite`` image with ``packages`` and import it as ``tag``."""
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            "mmdebstrap is not installed", "apt-get install mmdebstrap, or set base_image"
        )
    include = "--include=" + ",".join(packages)
    bootstrap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", include, suite, "-", mirror],
        stdout=subprocess.PIPE,
    )
    imported = subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", tag],
        stdin=bootstrap.stdout,
        capture_output=True,
        check=False,
    )
    if bootstrap.stdout is not None:
        bootstrap.stdout.close()
    if bootstrap.wait() != 0 or imported.returncode != 0:
        detail = imported.stderr.decode(errors="replace").strip()[-500:]
        raise ImageBuildError(f"building the base image {tag} failed: {detail or 'mmdebstrap'}")
