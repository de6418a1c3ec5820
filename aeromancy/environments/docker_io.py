"""``docker save`` and ``docker load`` as byte streams (the docker CLI, through pipes).

Neither end ever holds an archive in memory or on disk: the launcher reads the
saved archive as ``docker save`` writes it and writes the archive to load as
``docker load`` reads it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO

from aeromancy.errors import InfrastructureError


@contextmanager
def saved_archive(image_id: str) -> Iterator[IO[bytes]]:
    """Yield the stdout of ``docker save IMAGE``; raise InfrastructureError when it fails."""
    process = subprocess.Popen(
        [_docker(), "save", image_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        yield process.stdout
        process.stdout.read()  # whatever the reader left, so docker save can finish
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    error = process.stderr.read().decode(errors="replace").strip()
    if process.wait() != 0:
        raise InfrastructureError(
            f"docker save {image_id} failed: {error or f'exit {process.returncode}'}",
            "check that the Docker engine is running and the image exists",
        )


@contextmanager
def loader() -> Iterator[IO[bytes]]:
    """Yield the stdin of ``docker load``; raise InfrastructureError when the load fails."""
    process = subprocess.Popen(
        [_docker(), "load", "--quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe, drained once the archive is written
    )
    assert process.stdin is not None
    try:
        yield process.stdin
    except BrokenPipeError:
        pass  # docker load gave up early; its own message follows
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        with suppress(BrokenPipeError):
            process.stdin.close()
    assert process.stdout is not None
    output = process.stdout.read()
    if process.wait() != 0:
        message = output.decode(errors="replace").strip()
        raise InfrastructureError(
            f"docker load failed: {message or f'exit {process.returncode}'}",
            "check that the Docker engine is running and has space",
        )


def _docker() -> str:
    found = shutil.which("docker")
    if found is None:
        raise InfrastructureError(
            "the docker command is not on PATH", "install the Docker CLI, or use --dev"
        )
    return found
