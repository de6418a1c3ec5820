"""Debian packages for the image, fetched on the host because builds have no network.

The host's apt resolves the packages against the *base image's* dpkg status file
(``-o Dir::State::status=...``), so exactly the missing packages and their missing
dependencies are downloaded. The .deb files go into the build context and the
image installs them with ``dpkg -i``. The host's apt sources must be the base
image's Debian release; the launcher checks the codename.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aeromancy.errors import ImageBuildError, UsageError
from aeromancy.launcher.baseimage import BaseImage, dpkg_status
from aeromancy.launcher.engine import launcher_cache_dir

_INST = re.compile(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)")
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def check_package_names(packages: Sequence[str]) -> None:
    """Raise UsageError for a name that is not a Debian package name."""
    for name in packages:
        if not _PACKAGE_NAME.match(name):
            raise UsageError(
                f"{name!r} is not a Debian package name",
                "use names like `jq` or `libgomp1` in debian_packages / --extra-debian-package",
            )


def host_codename() -> str:
    """Return the Debian codename of the host's apt (VERSION_CODENAME), or '' when unknown."""
    return _codename(
        Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    )


def _codename(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def download_debs(packages: Sequence[str], base: BaseImage, dest: Path) -> list[str]:
    """Copy into ``dest`` the .deb files that ``packages`` add to ``base``; return their names.

    Returns [] when every package is already installed in the base image.
    """
    if not packages:
        return []
    if shutil.which("apt-get") is None:
        raise ImageBuildError(
            "Debian packages are fetched with the host's apt-get, which this host lacks",
            "install them in your own base_image instead",
        )
    if base.codename and host_codename() and base.codename != host_codename():
        raise ImageBuildError(
            f"the base image is Debian {base.codename} but this host's apt is "
            f"{host_codename()}; .deb files fetched here would not fit",
            "use a base image of the host's release, or install the packages in the base image",
        )
    archives = launcher_cache_dir() / "debs" / (base.codename or "unknown")
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aeromancy-dpkg-") as scratch:
        status = Path(scratch) / "status"
        status.write_bytes(dpkg_status(base))
        options = _apt_options(status, archives)
        planned = _planned_debs(packages, options)
        _apt(["install", "--download-only", "-y", *packages], options)
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for name, version, arch in planned:
        filename = f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
        source = archives / filename
        if not source.is_file():
            raise ImageBuildError(f"apt-get did not download {filename}", "check the apt sources")
        shutil.copy2(source, dest / filename)
        names.append(filename)
    return names


def _apt_options(status: Path, archives: Path) -> list[str]:
    return [
        "-o", f"Dir::State::status={status}",
        "-o", f"Dir::Cache::archives={archives}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Install-Recommends=false",
    ]  # fmt: skip


def _planned_debs(packages: Sequence[str], options: list[str]) -> list[tuple[str, str, str]]:
    simulated = _apt(["install", "--simulate", *packages], options)
    return [match.groups() for line in simulated.splitlines() if (match := _INST.match(line))]  # type: ignore[misc]


def _apt(args: list[str], options: list[str]) -> str:
    result = subprocess.run(
        ["apt-get", "-q", *options, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("E:")]
        detail = lines[0][2:].strip() if lines else result.stderr.strip()[-200:]
        raise UsageError(
            f"apt-get cannot provide the Debian packages: {detail}",
            "check the names in debian_packages / --extra-debian-package (`apt-cache search`)",
        )
    return result.stdout
