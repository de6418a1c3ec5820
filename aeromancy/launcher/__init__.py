"""The host-side launcher: git gate, lockfile gate, image build and container run.

``aeromancy run`` without ``--dev`` calls :func:`launch_tracked_run` on the host;
inside the container it started, :func:`inside_container` is true and the executor
runs the graph. Modules: git_gate, lockfile, precheck, pins, baseimage, wheelhouse, selfdist,
debian, dockerfile, image, container, rerun.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec

from aeromancy.run_options import RunOptions
from aeromancy.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from aeromancy.environments.code_package import CodePackage
    from aeromancy.identity import RunIdentity
    from aeromancy.launcher.git_gate import CommittedTree
    from aeromancy.launcher.image import RunImage

P = ParamSpec("P")
IN_CONTAINER_ENV = "AEROMANCY_IN_CONTAINER"
INVOCATION_ENV = "AEROMANCY_INVOCATION"


def inside_container() -> bool:
    """Return True when this process is the launcher's tracked run inside its container."""
    return os.environ.get(IN_CONTAINER_ENV) == "1" and Path("/.dockerenv").exists()


def launch_tracked_run(settings: Settings, options: RunOptions) -> int:
    """Build the image and run the graph in a container; return the container's exit code.

    Refuses (exit 2) a dirty tree, a missing or stale pdm.lock, or a request the task
    module's source shows to be wrong, before anything is built.
    """
    from rich.console import Console

    from aeromancy.launcher.git_gate import check_committed_tree
    from aeromancy.launcher.lockfile import check_lockfile
    from aeromancy.launcher.precheck import check_request

    console = Console(stderr=True)
    committed = check_committed_tree(settings.root)
    check_lockfile(settings.root, committed)
    check_request(options, settings.root)
    return run_committed(settings, options, committed, console)


def _holding_gc_lease(
    launch: Callable[Concatenate[Settings, P], int],
) -> Callable[Concatenate[Settings, P], int]:
    """Run ``launch`` holding a gc lease (:func:`aeromancy.store.gc.launching`): no gc
    deletes an image or code package while the launch may still name it in a record."""

    def held(settings: Settings, /, *args: P.args, **kwargs: P.kwargs) -> int:
        from aeromancy.store import gc, open_store

        with gc.launching(open_store(settings.store).backend):
            return launch(settings, *args, **kwargs)

    return held


@_holding_gc_lease
def run_committed(
    settings: Settings,
    options: RunOptions,
    committed: CommittedTree,
    console: Console,
    *,
    identity_overrides: dict[str, str] | None = None,
    invocation: str | None = None,
    images: tuple[str, str] | None = None,
    code: CodePackage | None = None,
) -> int:
    """Run ``options`` in the environment image with ``committed``'s code; return the code.

    The commit's tree is stored as a code package (unless ``code``, a recorded one, is
    given) and mounted read-only at /app; the image is built only when neither this
    engine nor the store has it. ``invocation`` (default: a fresh id) becomes the
    ``group`` of every run record written. ``images`` (a rerun's recorded run image and
    environment image ids, both local) are run instead of the recipe's image.
    """
    from aeromancy.environments.code_package import materialize, publish
    from aeromancy.launcher.container import (
        ContainerSpec,
        check_extra_env_vars,
        new_invocation_id,
        run_container,
    )
    from aeromancy.launcher.image import RunImage, ensure_image, plan_image
    from aeromancy.store import open_store
    from aeromancy.tracking import tracker_extras

    check_extra_env_vars(options, os.environ)  # before a build, not after

    packages = (*settings.debian_packages, *options.extra_debian_packages)
    recipe = plan_image(
        settings.project, committed, settings.base_image, packages, console,
        repository=settings.image_repository, extras=tracker_extras(options.tracker_name),
    )  # fmt: skip
    store = open_store(settings.store)
    # The code first: a submodule that is not checked out is refused before any build.
    package = code or publish(store, settings.project, committed)
    code_dir = materialize(store, package)
    if images is None:
        image = ensure_image(recipe, console, store)
    else:
        image = RunImage(recipe, images[0], built=False, environment_id=images[1])
    state = "built just now" if image.built else "already built"
    console.print(f"image {recipe.tag} ({state})", markup=False, highlight=False)
    overrides = {"code_package": package.digest, **(identity_overrides or {})}
    identity = run_identity(settings.root, image, overrides)
    spec = ContainerSpec(
        image.id, settings, options, identity, invocation or new_invocation_id(), code_dir
    )
    return run_container(spec)


def run_identity(root: Path, image: RunImage, overrides: dict[str, str]) -> RunIdentity:
    """Return the identity recorded with every task run of ``image``."""
    from dataclasses import replace

    from aeromancy.identity import identity_from_git
    from aeromancy.launcher.dockerfile import split_at_code
    from aeromancy.launcher.image import environment_recipe_id

    recipe = image.recipe
    identity = replace(
        identity_from_git(root),
        image_id=image.id,
        environment_image_id=image.environment_id,
        environment_recipe=environment_recipe_id(recipe, split_at_code(recipe.dockerfile)[0]),
        base_image_id=recipe.base.id,
        lockfile_hash=recipe.lockfile_hash,
        dockerfile=recipe.dockerfile,
    )
    return replace(identity, **overrides)  # type: ignore[arg-type]
