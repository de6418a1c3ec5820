"""Aeromancy itself in the image: always the launcher's own code and dependency versions.

However the running Aeromancy was installed, the image gets the same:

* its code, as a wheel packed from the imported ``aeromancy`` package directory and the
  distribution's metadata (``METADATA``, ``entry_points.txt``), so an editable checkout,
  a tool venv (pipx, ``uv tool``) and a project's venv all work the same way. The wheel
  is deterministic (sorted entries, fixed times): equal sources give equal bytes, and so
  an unchanged image layer;
* its runtime dependencies at the versions the launcher runs with: from a source
  checkout, the checkout's own ``pdm.lock`` (with its hashes); otherwise the versions
  installed beside the launcher (read with ``importlib.metadata``), whose wheels are
  fetched on the host and pinned to the sha256 of the files fetched;
* the dependencies of the extras a run needs (``mlflow`` for ``--tracker mlflow``), the
  same way, as pins of their own (``SelfDistribution.extra_pins``) that the image installs
  in a layer after the runtime's: an image without extras is the same as before, and one
  with them shares the runtime layer.

A project's lock that pins another Aeromancy version does not change this: the launcher
says so in one line (:func:`version_note`) and the image runs the launcher's version.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import aeromancy
from aeromancy import __version__
from aeromancy.errors import ImageBuildError, UsageError
from aeromancy.launcher.engine import launcher_cache_dir
from aeromancy.launcher.lockfile import export_requirements
from aeromancy.launcher.pins import Pin, parse_requirements

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SELF_NAME = "aeromancy"
_METADATA_FILES = ("METADATA", "entry_points.txt")
_WHEEL_FILE = (
    "Wheel-Version: 1.0\nGenerator: aeromancy-launcher\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SelfDistribution:
    """How Aeromancy reaches the image: its wheel, plus its runtime pins.

    A pin without hashes is a version taken from the launcher's environment; the
    wheelhouse pins it to the sha256 of the wheel it fetches. ``identity`` names the
    exact code and pins (it is part of the image tag). ``extra_pins`` are what the
    requested extras add to ``pins``, transitively (none without extras).
    """

    wheel: Path
    pins: tuple[Pin, ...]
    identity: str
    extra_pins: tuple[Pin, ...] = ()


def source_checkout() -> Path | None:
    """Return the checkout the running Aeromancy was imported from, or None if installed."""
    root = package_dir().parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "pdm.lock").is_file()):
        return None
    return root if 'name = "aeromancy"' in pyproject.read_text(encoding="utf-8") else None


def package_dir() -> Path:
    """Return the directory the running ``aeromancy`` package was imported from."""
    return Path(aeromancy.__file__).resolve().parent


def self_identity() -> str:
    """Return a hash of the launcher's code, metadata and pin source (no build, no export)."""
    digest = hashlib.sha256()
    for name, data in _wheel_members():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    checkout = source_checkout()
    pin_source = (checkout / "pdm.lock").read_bytes() if checkout else _environment_versions()
    digest.update(b"pins\0" + hashlib.sha256(pin_source).digest())
    return digest.hexdigest()


def resolve_self(
    environment: Mapping[str, str], scratch: Path, extras: Sequence[str] = ()
) -> SelfDistribution:
    """Return Aeromancy's wheel (written into ``scratch``) and runtime pins for an image.

    ``environment`` holds the image interpreter's PEP 508 marker values; ``extras`` names
    Aeromancy's extras the image needs as well (``mlflow``). Raises ImageBuildError when
    the launcher's installation lacks what the image needs, UsageError when it lacks
    what an extra needs.
    """
    checkout = source_checkout()
    wanted = tuple(sorted(set(extras)))
    if checkout:
        pins = _checkout_pins(checkout)
        with_extras = _checkout_pins(checkout, wanted) if wanted else pins
    else:
        pins = _installed_pins(environment)
        with_extras = _installed_extra_pins(environment, wanted) if wanted else pins
    base = {pin.name for pin in pins}
    extra_pins = tuple(pin for pin in with_extras if pin.name not in base)
    return SelfDistribution(_write_wheel(scratch), pins, self_identity(), extra_pins)


def locked_version(lock_text: str) -> str | None:
    """Return the Aeromancy version a project's pdm.lock pins, or None when it pins none."""
    try:
        packages = tomllib.loads(lock_text).get("package", [])
    except tomllib.TOMLDecodeError:
        return None
    for package in packages:
        if canonicalize_name(str(package.get("name", ""))) == SELF_NAME:
            return str(package.get("version", "")) or None
    return None


def version_note(lock_text: str) -> str | None:
    """Return the one line saying the image runs the launcher's Aeromancy, not the locked one."""
    locked = locked_version(lock_text)
    if locked is None or locked == __version__:
        return None
    return (
        f"pdm.lock pins aeromancy {locked}; the image runs this launcher's aeromancy "
        f"{__version__} (run the locked one, e.g. `pdm run aeromancy`, to use {locked})"
    )


def _distribution() -> metadata.Distribution:
    try:
        found = metadata.distribution(SELF_NAME)
    except metadata.PackageNotFoundError:
        found = None
    if found is None or found.read_text("METADATA") is None:
        raise ImageBuildError(
            f"Aeromancy at {package_dir()} has no installed metadata, so it cannot be put "
            "into the image",
            "install it (pip install, pipx, uv tool, or pdm install in a checkout)",
        )
    return found


def _wheel_members() -> Iterator[tuple[str, bytes]]:
    """Yield (name in the wheel, bytes) for the package's files and its metadata, sorted."""
    root = package_dir()
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        yield f"{SELF_NAME}/{path.relative_to(root).as_posix()}", path.read_bytes()
    info = f"{SELF_NAME}-{__version__}.dist-info"
    distribution = _distribution()
    for name in _METADATA_FILES:
        text = distribution.read_text(name)
        if text is not None:
            yield f"{info}/{name}", text.encode()
    yield f"{info}/WHEEL", _WHEEL_FILE.encode()


def _write_wheel(folder: Path) -> Path:
    """Write Aeromancy's wheel into ``folder`` (same sources, same bytes); return its path."""
    members = list(_wheel_members())
    record = [f"{name},sha256={_record_digest(data)},{len(data)}" for name, data in members]
    record_name = f"{SELF_NAME}-{__version__}.dist-info/RECORD"
    members.append((record_name, ("\n".join([*record, f"{record_name},,"]) + "\n").encode()))
    path = folder / f"{SELF_NAME}-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members:
            entry = zipfile.ZipInfo(name, _FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return path


def _record_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _checkout_pins(checkout: Path, extras: tuple[str, ...] = ()) -> tuple[Pin, ...]:
    lock_digest = hashlib.sha256((checkout / "pdm.lock").read_bytes()).hexdigest()
    suffix = "".join(f"+{extra}" for extra in extras)
    cached = launcher_cache_dir() / "self-pins" / f"{lock_digest}{suffix}.txt"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(export_requirements(checkout, extras))
    return tuple(pin for pin in parse_requirements(cached.read_text()) if pin.name != SELF_NAME)


def _environment_versions() -> bytes:
    """Return the name==version of every distribution beside the launcher, sorted."""
    lines = {
        f"{canonicalize_name(dist.metadata['Name'])}=={dist.version}"
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return "\n".join(sorted(lines)).encode()


def _installed_extra_pins(
    environment: Mapping[str, str], extras: tuple[str, ...]
) -> tuple[Pin, ...]:
    """Return :func:`_installed_pins` with ``extras``; raise UsageError when one is missing."""
    try:
        return _installed_pins(environment, extras)
    except _NotInstalled as exc:
        wanted = f"aeromancy[{','.join(extras)}]"
        raise UsageError(
            f"the image needs {wanted}, but {exc.name} is not installed beside the "
            "launcher, so its version is unknown",
            f"install the extra where Aeromancy is installed: pip install '{wanted}'",
        ) from None


def _installed_pins(environment: Mapping[str, str], wanted: Sequence[str] = ()) -> tuple[Pin, ...]:
    """Return Aeromancy's runtime dependencies, transitively, at the installed versions.

    ``wanted`` adds the requirements of those extras of Aeromancy. Markers are evaluated
    for the image's interpreter; each pin has no hashes yet.
    """
    pins: dict[str, Pin] = {}
    pending: list[tuple[str, frozenset[str]]] = [(SELF_NAME, frozenset(wanted))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for requirement in _requirements(name):
            if not _holds(requirement, environment, extras):
                continue
            dependency = str(canonicalize_name(requirement.name))
            version = _installed_version(dependency, name)
            pins.setdefault(dependency, Pin(dependency, version, frozenset()))
            pending.append((dependency, frozenset(requirement.extras)))
    return tuple(sorted(pins.values(), key=lambda pin: pin.name))


def _requirements(name: str) -> list[Requirement]:
    try:
        declared = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    return [Requirement(line) for line in declared]


def _holds(
    requirement: Requirement, environment: Mapping[str, str], extras: frozenset[str]
) -> bool:
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras)
    )


class _NotInstalled(ImageBuildError):
    """A distribution the image needs is not installed beside the launcher."""

    def __init__(self, name: str, needed_by: str) -> None:
        super().__init__(
            f"{name}, which {needed_by} needs in the image, is not installed beside the "
            "launcher, so its version is unknown",
            "install Aeromancy with its dependencies (pip install aeromancy) on a Python "
            "of the image's version",
        )
        self.name = name


def _installed_version(name: str, needed_by: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        raise _NotInstalled(name, needed_by) from None
