"""Environment capture: what machine, interpreter, packages and code a task run used.

:func:`capture_environment` runs for every task run, so everything that is costly to
find out and cannot change while the process lives (installed distributions, Debian
packages, CPU and GPU models) is looked up once per process and cached.

Environment variables are never captured, except the allow-list of non-secret
settings in :mod:`aeromancy.tracking.secrets`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from aeromancy.identity import RunIdentity
from aeromancy.tracking.secrets import recordable_environment, redact_url

PROBE_TIMEOUT_SECONDS = 10


def capture_environment(identity: RunIdentity | None = None) -> dict[str, Any]:
    """Return what describes the machine, interpreter, packages and code of this run.

    ``identity`` supplies the git and image part. Without it, the identity the launcher
    passed into the container (``AEROMANCY_RUN_*``) is used; on the host those fields
    are then empty.
    """
    identity = identity or RunIdentity.from_environ()
    return {
        "aeromancy_version": aeromancy_version(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": {"count": os.cpu_count(), "model": cpu_model()},
        "memory_bytes": memory_bytes(),
        "gpus": list(gpu_models()),
        "container": {"inside": in_container(), "image_id": identity.image_id},
        "git": {
            "commit": identity.git_commit,
            "branch": identity.git_branch,
            "remote": redact_url(identity.git_remote),
            "dirty": identity.git_dirty,
        },
        "settings": recordable_environment(),
        "python_packages": dict(python_distributions()),
        "debian_packages": debian_packages_or_none(),
    }


@functools.cache
def aeromancy_version() -> str:
    """Return the installed Aeromancy version ('0.0.0+unknown' from a bare checkout)."""
    # Read from the metadata rather than ``aeromancy.__version__``: this module is
    # imported while the package __init__ may still be importing the executor.
    try:
        return importlib.metadata.version("aeromancy")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


@functools.cache
def python_distributions() -> tuple[tuple[str, str], ...]:
    """Return (name, version) of every installed Python distribution, sorted by name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        # A broken install can leave a distribution without metadata; skip it.
        if name:
            found.setdefault(str(name), dist.version)
    return tuple(sorted(found.items(), key=lambda item: item[0].lower()))


@functools.cache
def debian_packages() -> tuple[tuple[str, str], ...] | None:
    """Return (package, version) of every installed Debian package, or None without dpkg."""
    if shutil.which("dpkg-query") is None:
        return None
    showformat = "${binary:Package}\t${Version}\t${db:Status-Status}\n"
    listing = _run_probe(["dpkg-query", "--show", f"--showformat={showformat}"])
    if listing is None:
        return None
    packages = []
    for line in listing.splitlines():
        name, _, rest = line.partition("\t")
        version, _, status = rest.partition("\t")
        if status == "installed":
            packages.append((name, version))
    return tuple(sorted(packages))


def debian_packages_or_none() -> dict[str, str] | None:
    """Return the Debian packages as a name -> version dict, or None without dpkg."""
    packages = debian_packages()
    return None if packages is None else dict(packages)


@functools.cache
def cpu_model() -> str:
    """Return the CPU model name, or '' when the platform does not say."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model"):
                return value.strip()
    if sys.platform == "darwin":
        return _run_probe(["sysctl", "-n", "machdep.cpu.brand_string"]) or platform.processor()
    return platform.processor()


@functools.cache
def memory_bytes() -> int | None:
    """Return the total physical memory in bytes, or None when it cannot be read."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


@functools.cache
def gpu_models() -> tuple[str, ...]:
    """Return the model of each GPU ``nvidia-smi`` reports; empty without NVIDIA GPUs."""
    if shutil.which("nvidia-smi") is None:
        return ()
    listing = _run_probe(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    if not listing:
        return ()
    return tuple(line.strip() for line in listing.splitlines() if line.strip())


@functools.cache
def in_container() -> bool:
    """Return True when this process runs inside a Docker or Podman container."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    try:
        cgroups = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in cgroups for word in ("docker", "containerd", "kubepods", "libpod"))


def _run_probe(argv: list[str]) -> str | None:
    """Return the stdout of a short probe command, or None if it fails or times out."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
            # Probes need no secrets: give them a minimal environment.
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
