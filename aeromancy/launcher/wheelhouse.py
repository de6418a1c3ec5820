"""The host-side wheelhouse: exactly the locked wheels, for the image's Python and platform.

Image builds run without network, so every locked pin is downloaded on the host
with ``pip download --only-binary=:all: --require-hashes`` for the base image's
interpreter and libc, into a cache shared by all builds. A wheel is taken from
the cache only when its sha256 is one the lockfile allows, so a stale or
tampered file is never used; inside the image pip checks the hashes again.
A pin without hashes (a version read from the launcher's own environment) is
fetched by version alone and then pinned to the sha256 of the wheel fetched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from rich.console import Console

from aeromancy.errors import ImageBuildError
from aeromancy.launcher.baseimage import BaseImage
from aeromancy.launcher.engine import launcher_cache_dir
from aeromancy.launcher.pins import Pin
from aeromancy.long_steps import plain_step, size_text


def wheelhouse_dir() -> Path:
    """Return the shared wheel cache directory."""
    path = launcher_cache_dir() / "wheelhouse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def platform_tags(base: BaseImage) -> list[str]:
    """Return the wheel platform tags the base image accepts, most specific first."""
    arch = base.machine
    if base.libc != "glibc" or not base.libc_version:
        return [f"linux_{arch}"]
    major, minor = (int(part) for part in base.libc_version.split(".")[:2])
    manylinux = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    manylinux += [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]
    return [*manylinux, f"linux_{arch}"]


def supported_tags(base: BaseImage) -> frozenset[Tag]:
    """Return every wheel tag the base image's interpreter can install."""
    version = tuple(int(part) for part in base.python.split("."))
    platforms = platform_tags(base)
    interpreter = f"cp{version[0]}{version[1]}"
    tags = set(cpython_tags(version, [interpreter, "abi3", "none"], platforms))
    tags.update(compatible_tags(version, interpreter, platforms))
    return frozenset(tags)


def ensure_wheels(pins: Sequence[Pin], base: BaseImage, console: Console) -> dict[str, Path]:
    """Return pin name -> a wheel in the wheelhouse that fits ``base``, downloading misses.

    Pins whose environment marker does not hold in the image are left out.
    Raises ImageBuildError when pip cannot provide a matching wheel.
    """
    environment = base.marker_environment()
    wanted = [pin for pin in pins if pin.applies_to(environment)]
    tags = supported_tags(base)
    found = {pin.name: wheel for pin in wanted if (wheel := _cached_wheel(pin, tags))}
    missing = [pin for pin in wanted if pin.name not in found]
    if missing:
        text = f"downloading {len(missing)} locked wheels for Python {base.python}"
        with plain_step(console, text) as step, console.status(text):
            before = _wheelhouse_bytes()
            _download(missing, base)
            step.detail = size_text(_wheelhouse_bytes() - before)
        for pin in missing:
            wheel = _cached_wheel(pin, tags)
            if wheel is None:
                raise ImageBuildError(
                    f"pip fetched no wheel of {pin.name}=={pin.version} matching pdm.lock's "
                    f"hashes for Python {base.python} on {base.machine}",
                    "lock a version that publishes wheels; builds cannot compile sdists",
                )
            found[pin.name] = wheel
    return found


def _wheelhouse_bytes() -> int:
    return sum(path.stat().st_size for path in wheelhouse_dir().glob("*.whl"))


def _cached_wheel(pin: Pin, tags: frozenset[Tag]) -> Path | None:
    for path in sorted(wheelhouse_dir().glob("*.whl")):
        try:
            name, version, _, wheel_tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(name) != pin.name or str(version) != _normal(pin.version):
            continue
        if wheel_tags & tags and (not pin.hashes or file_sha256(path) in pin.hashes):
            return path
    return None


def hashed_pins(pins: Sequence[Pin], wheels: Mapping[str, Path]) -> list[Pin]:
    """Return the pins that have a wheel, each without hashes pinned to its wheel's sha256."""
    return [
        pin if pin.hashes else replace(pin, hashes=frozenset({file_sha256(wheels[pin.name])}))
        for pin in pins
        if pin.name in wheels
    ]


def _normal(version: str) -> str:
    from packaging.version import Version

    return str(Version(version))


def file_sha256(path: Path) -> str:
    """Return the sha256 hex of ``path``, memoised beside it (keyed by size and mtime)."""
    stat = path.stat()
    memo = path.with_name(path.name + ".sha256")
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    if memo.is_file():
        stored_key, _, digest = memo.read_text().partition(" ")
        if stored_key == key:
            return digest.strip()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    memo.write_text(f"{key} {digest}")
    return digest


def _download(pins: Sequence[Pin], base: BaseImage) -> None:
    hashed = [pin for pin in pins if pin.hashes]
    if hashed:
        _pip_download([pin.requirement_line() for pin in hashed], base, ["--require-hashes"])
    unhashed = [f"{pin.name}=={pin.version}" for pin in pins if not pin.hashes]
    if unhashed:
        _pip_download(unhashed, base, [])


def _pip_download(lines: Sequence[str], base: BaseImage, options: Sequence[str]) -> None:
    interpreter = "cp" + base.python.replace(".", "")
    args = ["download", "--no-deps", "--only-binary=:all:", *options]
    args += ["--dest", str(wheelhouse_dir()), "--python-version", base.python]
    args += ["--implementation", "cp", "--abi", interpreter, "--abi", "abi3", "--abi", "none"]
    for platform in platform_tags(base):
        args += ["--platform", platform]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        result = subprocess.run(
            [*_pip_command(), *args, "-r", handle.name, "--disable-pip-version-check", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(handle.name).unlink()
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        detail = errors[0] if errors else result.stderr.strip()[-300:]
        raise ImageBuildError(
            f"pip could not download the locked wheels: {detail}",
            "check network access to the package index from this host",
        )


def _pip_command() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise ImageBuildError(
        "pip is needed on the host to fill the wheelhouse, and none was found",
        "install pip (python3 -m ensurepip)",
    )
