"""Build a Debian base image locally with mmdebstrap, for machines without a registry.

``mmdebstrap ... | docker import`` gives a minimal image with Python from Debian's own
packages; name it in ``[tool.aeromancy] base_image``. The tests and the launcher
benchmark build theirs this way too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from aeromancy.errors import ImageBuildError

PYTHON_PACKAGES = ("python3", "python3-venv", "python3-pip")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def build_debian_base_image(
    tag: str,
    suite: str = "bookworm",
    packages: tuple[str, ...] = PYTHON_PACKAGES,
    mirror: str = DEFAULT_MIRROR,
    labels: Mapping[str, str] | None = None,
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
    changes = ["--change", 'CMD ["/bin/bash"]']
    for key, value in (labels or {}).items():
        changes += ["--change", f"LABEL {key}={value}"]
    # Imported untagged: `docker import` makes an image of whatever arrived, even an
    # empty stream when mmdebstrap failed, so the tag goes on only once both succeeded.
    imported = subprocess.run(
        ["docker", "import", *changes, "-"],
        stdin=bootstrap.stdout,
        capture_output=True,
        check=False,
    )
    if bootstrap.stdout is not None:
        bootstrap.stdout.close()
    image_id = imported.stdout.decode().strip()
    if bootstrap.wait() != 0 or imported.returncode != 0:
        _remove_image(image_id)
        detail = imported.stderr.decode(errors="replace").strip()[-500:]
        raise ImageBuildError(f"building the base image {tag} failed: {detail or 'mmdebstrap'}")
    tagged = subprocess.run(["docker", "tag", image_id, tag], capture_output=True, check=False)
    if tagged.returncode != 0:
        _remove_image(image_id)
        detail = tagged.stderr.decode(errors="replace").strip()[-500:]
        raise ImageBuildError(f"tagging the base image {tag} failed: {detail}")


def _remove_image(image_id: str) -> None:
    """Remove an image this module imported but did not tag (a failed build's)."""
    if image_id:
        subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True, check=False)


#: Label that ``aeromancy base-image`` puts on every image it builds (value: the suite).
BASE_IMAGE_LABEL = "org.aeromancy.base-image"


def local_base_images() -> list[str]:
    """Return the tags of the base images ``aeromancy base-image`` built here, newest first.

    Returns [] when no Docker engine answers: callers only use this to offer a default.
    """
    from aeromancy.errors import InfrastructureError
    from aeromancy.launcher.engine import docker_client

    try:
        images = docker_client().images.list(filters={"label": BASE_IMAGE_LABEL})
    except InfrastructureError:
        return []
    # Images built FROM a base image inherit its label; the launcher's own carry
    # IMAGE_LABEL too, and are no base images.
    from aeromancy.launcher.image import IMAGE_LABEL

    bases = [image for image in images if IMAGE_LABEL not in (image.labels or {})]
    newest_first = sorted(bases, key=lambda image: str(image.attrs.get("Created", "")))
    return [tag for image in reversed(newest_first) for tag in image.tags]
