"""What the launcher must know about the base image: its id, Python, libc and packages.

These facts decide which wheels and which .deb files go into the build context.
They are read once per base image id by running the image (no network) and cached.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import docker.errors
from docker.models.images import Image
from rich.console import Console

from aeromancy.errors import ImageBuildError, InfrastructureError
from aeromancy.launcher.engine import docker_client, launcher_cache_dir

_PROBE = (
    "import json, platform, sys; "
    "libc = platform.libc_ver(); "
    "release = open('/etc/os-release').read() if __import__('os').path.exists('/etc/os-release') "
    "else ''; "
    "codename = [l.split('=', 1)[1].strip().strip('\"') for l in release.splitlines() "
    "if l.startswith('VERSION_CODENAME=')]; "
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
    "'implementation': sys.implementation.name, 'libc': libc[0], "
    "'libc_version': libc[1], 'machine': platform.machine(), "
    "'codename': codename[0] if codename else ''}))"
)


@dataclass(frozen=True)
class BaseImage:
    """A base image as the launcher sees it. ``libc_version`` is '' for a non-glibc image."""

    ref: str
    id: str
    python: str  # "3.11"
    implementation: str
    libc: str
    libc_version: str
    machine: str
    codename: str  # Debian release, '' when not Debian

    def marker_environment(self) -> dict[str, str]:
        """Return the PEP 508 marker values of the image's interpreter."""
        return {
            "python_version": self.python,
            "python_full_version": self.python + ".0",
            "implementation_name": self.implementation,
            "platform_python_implementation": "CPython",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": self.machine,
            "os_name": "posix",
            "platform_release": "",
            "platform_version": "",
            "implementation_version": self.python + ".0",
            "extra": "",
        }


def resolve_base_image(ref: str, console: Console) -> BaseImage:
    """Return the facts of base image ``ref``, pulling it when it is not present.

    Raises ImageBuildError when the image is neither present nor pullable.
    """
    image = _local_or_pulled(ref, console)
    cached = launcher_cache_dir() / "base-images" / (str(image.id).replace(":", "-") + ".json")
    if cached.is_file():
        return BaseImage(**{**json.loads(cached.read_text()), "ref": ref})
    facts = _probe(image)
    base = BaseImage(ref=ref, id=str(image.id), **facts)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(asdict(base)))
    return base


def _local_or_pulled(ref: str, console: Console) -> Image:
    client = docker_client()
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not look up image {ref}: {exc}") from exc
    try:
        with console.status(f"pulling base image {ref}"):
            return client.images.pull(ref)
    except docker.errors.APIError as exc:
        raise ImageBuildError(
            f"base image {ref} is not present and could not be pulled ({exc.explanation})",
            "build or load it locally, or set [tool.aeromancy] base_image",
        ) from exc


def _probe(image: Image) -> dict[str, str]:
    # Created, started and removed by hand: `containers.run(remove=True)` leaves the
    # container behind when it cannot start (an image without python3).
    client = docker_client()
    container = None
    try:
        container = client.containers.create(
            str(image.id), ["python3", "-c", _PROBE], network_mode="none", entrypoint=[]
        )
        container.start()
        status = container.wait()
        output = container.logs(stdout=True, stderr=False)
        if status.get("StatusCode") != 0:
            raise docker.errors.DockerException(f"python3 exited with {status.get('StatusCode')}")
    except docker.errors.DockerException as exc:
        raise ImageBuildError(
            f"base image {image.tags or image.id} has no working python3 ({exc})",
            "use a base image with Python 3 (e.g. python:3.11-slim)",
        ) from exc
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
    facts: dict[str, str] = json.loads(bytes(output).decode().strip().splitlines()[-1])
    return facts


def dpkg_status(base: BaseImage) -> bytes:
    """Return the base image's /var/lib/dpkg/status (what Debian packages it already has)."""
    cached = launcher_cache_dir() / "base-images" / (base.id.replace(":", "-") + ".dpkg-status")
    if cached.is_file():
        return cached.read_bytes()
    client = docker_client()
    try:
        container = client.containers.create(base.id, ["true"], entrypoint=[])
        try:
            chunks, _ = container.get_archive("/var/lib/dpkg/status")
            archive = b"".join(chunks)
        finally:
            container.remove(force=True)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(
            f"cannot read the Debian package list of {base.ref} ({exc})",
            "Debian packages need a Debian-based base image",
        ) from exc
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("status")
        status = member.read() if member is not None else b""
    cached.parent.mkdir(parents=True, exist_ok=True)
    Path(cached).write_bytes(status)
    return status
