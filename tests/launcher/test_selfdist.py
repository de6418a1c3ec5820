"""Aeromancy's own distribution for the image: the packed wheel, its pins, the version rule."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aeromancy import __version__
from aeromancy.errors import UsageError
from aeromancy.launcher import selfdist
from aeromancy.launcher.baseimage import BaseImage
from aeromancy.launcher.selfdist import (
    _installed_pins,
    _write_wheel,
    locked_version,
    resolve_self,
    self_identity,
    version_note,
)

BASE = BaseImage(
    ref="python:3.11-slim",
    id="sha256:" + "0" * 64,
    python="3.11",
    implementation="cpython",
    libc="glibc",
    libc_version="2.36",
    machine="x86_64",
    codename="bookworm",
)

LOCK = """\
[metadata]
groups = ["default"]

[[package]]
name = "Aeromancy"
version = "0.0.9"

[[package]]
name = "six"
version = "1.16.0"
"""


def test_packed_wheel_is_deterministic_and_complete(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _write_wheel(tmp_path / "a"), _write_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert first.name == f"aeromancy-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        info = f"aeromancy-{__version__}.dist-info"
        assert "aeromancy/__init__.py" in names
        assert "aeromancy/launcher/Dockerfile.template" in names
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
        assert "aeromancy = aeromancy.cli:main" in wheel.read(f"{info}/entry_points.txt").decode()
        record = wheel.read(f"{info}/RECORD").decode().splitlines()
    assert len(record) == len(names)  # every member listed, RECORD itself last
    assert record[-1] == f"{info}/RECORD,,"
    assert len(self_identity()) == 64


def test_installed_pins_follow_the_requirements_with_the_image_markers() -> None:
    pins = {pin.name: pin for pin in _installed_pins(BASE.marker_environment())}
    assert {"boto3", "botocore", "wandb", "click", "rich", "docker"} <= set(pins)
    assert "python-dateutil" in pins  # transitively, through botocore
    assert "tomli" not in pins  # only for Python < 3.11
    assert "pytest" not in pins  # a development group, not a requirement
    assert all(not pin.hashes for pin in pins.values())  # hashed when fetched


def test_another_locked_version_is_said_in_one_line() -> None:
    assert locked_version(LOCK) == "0.0.9"
    note = version_note(LOCK)
    assert note is not None
    assert "\n" not in note
    assert (
        f"pdm.lock pins aeromancy 0.0.9; the image runs this launcher's aeromancy {__version__}"
        in note
    )
    assert version_note(LOCK.replace("0.0.9", __version__)) is None
    assert version_note('[[package]]\nname = "six"\nversion = "1.16.0"\n') is None
    assert locked_version("not toml [") is None


def test_the_mlflow_extra_adds_its_client_and_closure_beside_the_runtime(tmp_path: Path) -> None:
    # From this checkout: pdm exports pdm.lock with and without the extra's group.
    assert selfdist.source_checkout() is not None
    plain = resolve_self(BASE.marker_environment(), tmp_path)
    assert plain.extra_pins == ()
    (tmp_path / "again").mkdir()
    with_mlflow = resolve_self(BASE.marker_environment(), tmp_path / "again", ["mlflow"])
    assert with_mlflow.pins == plain.pins  # the runtime (and its layer) is unchanged
    assert with_mlflow.identity == plain.identity
    extra = {pin.name: pin for pin in with_mlflow.extra_pins}
    assert "mlflow-skinny" in extra
    assert "mlflow" not in extra  # the client only: no server, no UI
    assert not set(extra) & {pin.name for pin in plain.pins}
    assert all(pin.hashes for pin in extra.values())  # locked, with hashes


def test_installed_pins_follow_an_extra_and_its_absence_is_one_usage_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = BASE.marker_environment()
    plain = {pin.name for pin in _installed_pins(environment)}
    with_mlflow = {pin.name for pin in _installed_pins(environment, ["mlflow"])}
    assert "mlflow-skinny" not in plain
    assert "mlflow-skinny" in with_mlflow
    assert plain < with_mlflow
    # An installation without the extra cannot tell which versions to put in the image.
    real_version = selfdist.metadata.version

    def version(name: str) -> str:
        if name == "mlflow-skinny":
            raise selfdist.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(selfdist, "source_checkout", lambda: None)
    monkeypatch.setattr(selfdist.metadata, "version", version)
    with pytest.raises(UsageError) as caught:
        resolve_self(environment, Path("/nonexistent"), ["mlflow"])
    assert str(caught.value) == (
        "the image needs aeromancy[mlflow], but mlflow-skinny is not installed beside the "
        "launcher, so its version is unknown (install the extra where Aeromancy is "
        "installed: pip install 'aeromancy[mlflow]')"
    )
