"""Aeromancy itself in the image: the same version as the launcher.

Two cases:

* the project's own pdm.lock pins ``aeromancy`` (the usual case for a user):
  it is installed with the other locked pins, and must be the launcher's version;
* the launcher runs from a source checkout (as in Aeromancy's own tests, where
  Aeromancy is on no index): a wheel is built from the checkout with ``pdm build``,
  cached by a hash of the sources, and the checkout's own locked runtime pins
  join the project's.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aeromancy
from aeromancy import __version__
from aeromancy.errors import ImageBuildError, LockfileError
from aeromancy.launcher.engine import launcher_cache_dir
from aeromancy.launcher.lockfile import export_requirements, pdm_executable
from aeromancy.launcher.pins import Pin, parse_requirements

SELF_NAME = "aeromancy"


@dataclass(frozen=True)
class SelfDistribution:
    """How Aeromancy reaches the image: a wheel to install, plus its runtime pins.

    ``wheel`` is None when the project's lock already pins Aeromancy.
    ``identity`` names the exact sources (it is part of the image tag).
    """

    wheel: Path | None
    pins: tuple[Pin, ...]
    identity: str


def source_checkout() -> Path | None:
    """Return the checkout the running Aeromancy was imported from, or None if installed."""
    root = Path(aeromancy.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "pdm.lock").is_file()):
        return None
    return root if 'name = "aeromancy"' in pyproject.read_text(encoding="utf-8") else None


def checkout_identity(checkout: Path) -> str:
    """Return a hash of the checkout's package sources, pyproject.toml and pdm.lock."""
    digest = hashlib.sha256()
    files = [checkout / "pyproject.toml", checkout / "pdm.lock"]
    files += sorted(
        path
        for path in (checkout / "aeromancy").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(checkout).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def resolve_self(project_pins: list[Pin]) -> SelfDistribution:
    """Return how Aeromancy goes into the image for a project with ``project_pins``.

    Raises LockfileError when Aeromancy is neither locked by the project nor a checkout,
    or when the project locks another Aeromancy version than the launcher's.
    """
    checkout = source_checkout()
    if checkout is not None:
        identity = checkout_identity(checkout)
        return SelfDistribution(_wheel(checkout, identity), _runtime_pins(checkout), identity)
    locked = next((pin for pin in project_pins if pin.name == SELF_NAME), None)
    if locked is None:
        raise LockfileError(
            "the project's pdm.lock does not pin aeromancy, so the image cannot run it",
            "run `pdm add aeromancy` and commit pdm.lock",
        )
    if locked.version != __version__:
        raise LockfileError(
            f"pdm.lock pins aeromancy {locked.version} but this launcher is {__version__}",
            f"run `pdm add aeromancy=={__version__}` or use the locked launcher",
        )
    return SelfDistribution(None, (), f"locked:{locked.version}")


def self_identity() -> str:
    """Return the cheap identity of the launcher's Aeromancy (no build, no export)."""
    checkout = source_checkout()
    return checkout_identity(checkout) if checkout else f"locked:{__version__}"


def _runtime_pins(checkout: Path) -> tuple[Pin, ...]:
    lock_digest = hashlib.sha256((checkout / "pdm.lock").read_bytes()).hexdigest()
    cached = launcher_cache_dir() / "self-pins" / f"{lock_digest}.txt"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(export_requirements(checkout))
    return tuple(pin for pin in parse_requirements(cached.read_text()) if pin.name != SELF_NAME)


def _wheel(checkout: Path, identity: str) -> Path:
    # A rebuilt wheel has new zip timestamps; caching it by source hash keeps its bytes,
    # and so the image layer that installs it, unchanged until the sources change.
    folder = launcher_cache_dir() / "self-wheels" / identity[:32]
    wheels = sorted(folder.glob("aeromancy-*.whl"))
    if wheels:
        return wheels[-1]
    with tempfile.TemporaryDirectory(prefix="aeromancy-wheel-") as scratch:
        result = subprocess.run(
            [
                pdm_executable(),
                "build",
                "--no-sdist",
                "--dest",
                scratch,
                "--project",
                str(checkout),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(Path(scratch).glob("aeromancy-*.whl"))
        if result.returncode != 0 or not built:
            raise ImageBuildError(
                f"could not build the Aeromancy wheel from {checkout}: "
                f"{result.stderr.strip()[-300:]}",
                "check that `pdm build` works in the Aeromancy checkout",
            )
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / built[0].name
        shutil.move(built[0], target)
    return target
