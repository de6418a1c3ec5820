"""``aeromancy base-image``: build a local Debian base image where none can be pulled.

Tracked runs build ``FROM`` ``[tool.aeromancy] base_image`` (default ``python:X.Y-slim``).
A machine that reaches no image registry can make one here instead: mmdebstrap
bootstraps a minimal Debian with its own python3, python3-venv and python3-pip, and
``docker import`` turns it into an image. The image is labelled so that
``aeromancy init`` finds it; the command prints the line to put in pyproject.toml.
"""

from __future__ import annotations

import shutil
import time

import click
import docker.errors

from aeromancy.cli.output import duration, human_size, stderr_console, stdout_console
from aeromancy.errors import InfrastructureError, UsageError
from aeromancy.launcher.debian_base import (
    BASE_IMAGE_LABEL,
    DEFAULT_MIRROR,
    PYTHON_PACKAGES,
    build_debian_base_image,
)
from aeromancy.launcher.engine import docker_client

DEFAULT_SUITE = "bookworm"


def _present_size(tag: str) -> int | None:
    """Return the size of image ``tag`` when the engine has it, else None."""
    try:
        return int(docker_client().images.get(tag).attrs.get("Size") or 0)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not look up image {tag}: {exc}") from exc


def _check_tools() -> None:
    if shutil.which("mmdebstrap") is None:
        raise UsageError(
            "mmdebstrap is not installed; it builds the base image",
            "apt-get install mmdebstrap, or set [tool.aeromancy] base_image to an image "
            "you can pull",
        )
    if shutil.which("docker") is None:
        raise InfrastructureError(
            "the docker command is not on PATH; `docker import` makes the image",
            "install the Docker CLI",
        )


def _parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise UsageError(f"--label {value}: expected KEY=VALUE")
        labels[key] = text
    return labels


@click.command("base-image")
@click.option(
    "--tag",
    default=None,
    metavar="TAG",
    help=f"Image tag to build (default: aeromancy-base:{DEFAULT_SUITE}, or :SUITE).",
)
@click.option("--suite", default=DEFAULT_SUITE, show_default=True, help="Debian release.")
@click.option("--mirror", default=DEFAULT_MIRROR, show_default=True, help="Debian mirror.")
@click.option("--rebuild", is_flag=True, help="Build again even if TAG is already present.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra image label (repeatable).",
)
def base_image(
    tag: str | None, suite: str, mirror: str, rebuild: bool, labels: tuple[str, ...]
) -> None:
    """Build a Debian base image locally, for machines that reach no image registry.

    Needs a Docker engine and mmdebstrap (apt-get install mmdebstrap); takes a few
    minutes. An image already present under TAG is reused unless --rebuild. Prints
    the tag and the `base_image = "..."` line for [tool.aeromancy] in pyproject.toml.
    """
    tag = tag or f"aeromancy-base:{suite}"
    extra = _parse_labels(labels)
    progress = stderr_console()
    size = _present_size(tag)
    if size is not None and not rebuild:
        progress.print(
            f"base image {tag} is already present ({human_size(size)}; --rebuild builds it again)",
            markup=False,
            highlight=False,
        )
    else:
        _check_tools()
        progress.print(
            f"building base image {tag}: Debian {suite} minbase + {', '.join(PYTHON_PACKAGES)} "
            f"from {mirror} (mmdebstrap, a few minutes)",
            markup=False,
            highlight=False,
        )
        started = time.monotonic()
        build_debian_base_image(
            tag, suite, PYTHON_PACKAGES, mirror, labels={**extra, BASE_IMAGE_LABEL: suite}
        )
        built = _present_size(tag) or 0
        progress.print(
            f"built base image {tag} ({human_size(built)}) in "
            f"{duration(time.monotonic() - started)}",
            markup=False,
            highlight=False,
        )
    out = stdout_console()
    out.print(tag, markup=False, highlight=False)
    out.print("put this line in [tool.aeromancy] of pyproject.toml:", markup=False)
    out.print(f'base_image = "{tag}"', markup=False, highlight=False)


COMMANDS: list[click.Command] = [base_image]
