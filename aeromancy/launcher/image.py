"""The environment image: tagged by what goes into it, reused when present, else built offline.

The tag hashes the base image id, the rendered Dockerfile up to the project's code,
pdm.lock and Aeromancy's own identity, all known without building, so an image that
exists is found in well under a second. The image holds no project code: the commit's
tree reaches the container as a code package (:mod:`aeromancy.environments.code_package`),
so a code-only commit builds nothing. A build sends a context of ``.aeromancy/``
(requirements, wheels, .deb files; pyproject.toml and pdm.lock come from the commit,
never the working directory) and runs with no network.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker.errors
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aeromancy.environments.layout import check_repository
from aeromancy.environments.shelf import ImageShelf
from aeromancy.errors import ImageBuildError, InfrastructureError, UsageError
from aeromancy.launcher import debian
from aeromancy.launcher.baseimage import BaseImage, resolve_base_image
from aeromancy.launcher.dockerfile import (
    EXTRAS_CONTEXT,
    TEMPLATE_NAME,
    default_template,
    render,
    split_at_code,
)
from aeromancy.launcher.engine import docker_client
from aeromancy.launcher.git_gate import CommittedTree, git
from aeromancy.launcher.lockfile import LOCKFILE, export_requirements
from aeromancy.launcher.pins import Pin, parse_requirements
from aeromancy.launcher.selfdist import SELF_NAME, resolve_self, self_identity, version_note
from aeromancy.launcher.wheelhouse import ensure_wheels, hashed_pins
from aeromancy.long_steps import plain_step, size_text
from aeromancy.store import Store

log = logging.getLogger(__name__)
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")
IMAGE_LABEL = "aeromancy.repository"  # on every image built: its repository, for clean-ups


@dataclass(frozen=True)
class ImageRecipe:
    """Everything that decides an image, known before any build. ``tag`` names it."""

    project: str
    committed: CommittedTree
    base: BaseImage
    debian_packages: tuple[str, ...]
    dockerfile: str
    lockfile_hash: str
    tag: str
    repository: str = ""  # '' means repository_name(project)
    extras: tuple[str, ...] = ()  # Aeromancy's extras in its runtime venv (mlflow)


@dataclass(frozen=True)
class RunImage:
    """An image ready to run: its recipe, its id, and whether it was built just now."""

    recipe: ImageRecipe
    id: str
    built: bool
    environment_id: str = ""  # the dependency image's id: everything but the code


def plan_image(
    project: str,
    committed: CommittedTree,
    base_image: str,
    debian_packages: Sequence[str],
    console: Console,
    *,
    repository: str = "",
    extras: Sequence[str] = (),
) -> ImageRecipe:
    """Return the recipe of the image for ``committed`` (no build, no download).

    Images are named ``repository`` (``[tool.aeromancy] image_repository``), by default
    ``aeromancy/<project>``. ``extras`` are Aeromancy's extras the run needs in the image
    (``mlflow`` for ``--tracker mlflow``); they change the Dockerfile, so the tag.
    """
    repository = check_repository(repository) if repository else repository_name(project)
    packages = tuple(sorted(set(debian_packages)))
    debian.check_package_names(packages)
    template = _committed_file(committed, TEMPLATE_NAME) or default_template()
    wanted = tuple(sorted(set(extras)))
    dockerfile = render(template, base_image, packages, wanted)
    check_nothing_after_code(dockerfile)
    base = resolve_base_image(base_image, console)
    lock = _committed_file(committed, LOCKFILE) or ""
    note = version_note(lock)
    if note:
        console.print(f"note: {note}", markup=False, highlight=False)
    lockfile_hash = "sha256:" + hashlib.sha256(lock.encode()).hexdigest()
    recipe = ImageRecipe(
        project, committed, base, packages, dockerfile, lockfile_hash, "", repository, wanted
    )
    return replace(recipe, tag=dependency_tag(recipe, split_at_code(dockerfile)[0]))


def check_nothing_after_code(dockerfile: str) -> None:
    """Raise UsageError when the template has instructions after ``{{ project_code }}``.

    The code is mounted when the container starts, not built into the image, so
    nothing in the image can use it.
    """
    _head, tail = split_at_code(dockerfile)
    lines = [line.strip() for line in tail.splitlines()[1:]]
    after = [line for line in lines if line and not line.startswith("#")]
    if after:
        raise UsageError(
            f"{TEMPLATE_NAME} has instructions after {{{{ project_code }}}} ({after[0][:60]}); "
            "the code is mounted read-only when the container starts, so no build step can use it",
            "move them above {{ project_code }}, or into a task",
        )


def repository_name(project: str) -> str:
    """Return the Docker repository for a project's images (lower case, Docker's charset)."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", project.lower()).strip("._-") or "project"
    return f"aeromancy/{cleaned}"


def ensure_image(recipe: ImageRecipe, console: Console, store: Store | None = None) -> RunImage:
    """Return the environment image of ``recipe``, building it only when no image has its tag.

    With a ``store``, an image missing here is loaded from the store's saved images
    instead of built, and each image used is saved there unless it is already.
    """
    head, _tail = split_at_code(recipe.dockerfile)
    shelf = ImageShelf(store, console)
    image_id = _image_id(recipe.tag) or shelf.load(recipe.tag)
    built = not image_id
    if built:
        image_id = _build(recipe.tag, _dependency_context(recipe, head, console), console)
    shelf.keep(recipe.tag, image_id)
    return RunImage(recipe, image_id, built=built, environment_id=image_id)


def environment_recipe_id(recipe: ImageRecipe, head: str) -> str:
    """Return ``recipe:<sha256 hex>`` over what goes into the dependency image.

    ``head`` is the Dockerfile up to the project's code. The same recipe gives the same
    id on every machine, however often its image is rebuilt.
    """
    digest = hashlib.sha256()
    for part in (recipe.base.id, head, recipe.lockfile_hash, self_identity()):
        digest.update(part.encode() + b"\0")
    return f"recipe:{digest.hexdigest()}"


def dependency_tag(recipe: ImageRecipe, head: str) -> str:
    """Return the tag of the image holding everything but the project's code."""
    hexdigest = environment_recipe_id(recipe, head).removeprefix("recipe:")
    repository = recipe.repository or repository_name(recipe.project)
    return f"{repository}:deps-{hexdigest[:24]}"


def _image_id(tag: str) -> str:
    """Return the id of the image tagged ``tag``, or '' when there is none."""
    try:
        return str(docker_client().images.get(tag).id)
    except docker.errors.ImageNotFound:
        return ""
    except docker.errors.APIError as exc:
        raise InfrastructureError(f"Docker could not look up {tag}: {exc}") from exc


def _committed_file(committed: CommittedTree, name: str) -> str | None:
    shown = git(committed.repo_root, "show", f"{committed.treeish}:{name}")
    return shown.stdout if shown.returncode == 0 else None


def _dependency_context(recipe: ImageRecipe, dockerfile: str, console: Console) -> bytes:
    """Return the dependency image's build context: .deb files, Aeromancy's runtime wheels
    and its own wheel, the project's locked wheels (each set with its requirements.txt).
    """
    code = _commit_archive(recipe.committed)
    with tempfile.TemporaryDirectory(prefix="aeromancy-context-") as scratch:
        # pdm reads only these two files; they come from the commit, not the working tree.
        for name in ("pyproject.toml", LOCKFILE):
            (Path(scratch) / name).write_bytes(_member_bytes(code, name))
        exported = parse_requirements(export_requirements(Path(scratch)))
        # Aeromancy in the image is always the launcher's own, in a venv of its own.
        project_pins = [pin for pin in exported if pin.name != SELF_NAME]
        self_dist = resolve_self(recipe.base.marker_environment(), Path(scratch), recipe.extras)
        debs = Path(scratch) / "debs"
        deb_names = debian.download_debs(recipe.debian_packages, recipe.base, debs)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", dockerfile.encode())
            _add_wheels(tar, ".aeromancy/runtime", self_dist.pins, recipe.base, console)
            if recipe.extras:
                _add_wheels(tar, EXTRAS_CONTEXT, self_dist.extra_pins, recipe.base, console)
            _add_file(tar, f".aeromancy/self/{self_dist.wheel.name}", self_dist.wheel)
            _add_wheels(tar, ".aeromancy/wheels", project_pins, recipe.base, console)
            for name in deb_names:
                _add_file(tar, f".aeromancy/debs/{name}", debs / name)
        return buffer.getvalue()


def _add_wheels(
    tar: tarfile.TarFile, folder: str, pins: Sequence[Pin], base: BaseImage, console: Console
) -> None:
    """Add the wheels of ``pins`` for ``base`` and their requirements.txt under ``folder``."""
    wheels = ensure_wheels(pins, base, console)
    requirements = "".join(pin.requirement_line() + "\n" for pin in hashed_pins(pins, wheels))
    _add_bytes(tar, f"{folder}/requirements.txt", requirements.encode())
    for wheel in sorted(wheels.values()):
        _add_file(tar, f"{folder}/{wheel.name}", wheel)


def _commit_archive(committed: CommittedTree) -> tarfile.TarFile:
    """Return ``git archive`` of the committed project directory, opened as a tar."""
    archive = subprocess.run(
        ["git", "-C", str(committed.repo_root), "archive", "--format=tar", committed.treeish],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise ImageBuildError(f"git archive failed: {archive.stderr.decode().strip()}")
    return tarfile.open(fileobj=io.BytesIO(archive.stdout))


def _member_bytes(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = archive.extractfile(name)
    except KeyError:
        handle = None
    return handle.read() if handle is not None else b""


def _normalised(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    # Fixed owner and time: the layer cache must see only content and mode.
    copied = tarfile.TarInfo(name)
    copied.size, copied.mode, copied.type, copied.linkname = (
        info.size,
        info.mode,
        info.type,
        info.linkname,
    )
    copied.uid = copied.gid = 0
    copied.mtime = 0
    return copied


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = _normalised(tar.gettarinfo(str(path), arcname=name), name)
    with path.open("rb") as handle:
        tar.addfile(info, handle)


def _build(tag: str, context: bytes, console: Console) -> str:
    """Build ``context`` (no network) as ``tag``; return the image id."""
    with plain_step(console, f"building image {tag} ({size_text(len(context))} context)") as step:
        image_id = _build_stream(tag, context, console)
        step.detail = size_text(_image_size(image_id))
    return image_id


def _image_size(image_id: str) -> int:
    try:
        return int(docker_client().images.get(image_id).attrs.get("Size") or 0)
    except docker.errors.DockerException:
        return 0


def _build_stream(tag: str, context: bytes, console: Console) -> str:
    try:
        stream = docker_client().api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="none",
            decode=True,
            labels={IMAGE_LABEL: tag.rpartition(":")[0]},
        )
        _follow(stream, console, tag)
        return str(docker_client().images.get(tag).id)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"building {tag} failed: {exc}") from exc


def _follow(stream: Iterator[dict[str, Any]], console: Console, tag: str) -> None:
    """Show the build's steps as a progress bar; raise ImageBuildError on a failed step."""
    tail: list[str] = []
    step = ""
    progress = Progress(
        TextColumn("[bold]building[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task(tag, total=None)
        for chunk in stream:
            if "error" in chunk:
                detail = "; ".join(line for line in tail[-3:] if line) or ""
                raise ImageBuildError(
                    f"image build failed at `{step}`: {chunk['error'].strip()}"
                    + (f" ({detail})" if detail else ""),
                    "see the output above; run with --debug for the full build log",
                )
            text = str(chunk.get("stream", "")).strip()
            if not text:
                continue
            log.debug("build: %s", text)
            tail = [*tail[-9:], text]
            match = _STEP.match(text)
            if match:
                number, total, step = int(match.group(1)), int(match.group(2)), match.group(3)
                progress.update(task, total=total, completed=number - 1,
                                description=f"{tag}: {step[:60]}")  # fmt: skip
        progress.update(task, completed=progress.tasks[0].total or 0)
