"""``aeromancy rerun`` runs the recorded image: local, else loaded from the store.

Where the image is in neither place it is rebuilt, which the rerun says in one
line and ``--verify`` reports with the facts that differ. A rerun's offline W&B
run is written into the project's ``wandb/``, not into the temporary worktree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import aeromancy, forget_images, fresh_machine, records

pytestmark = pytest.mark.docker


def test_rerun_verify_on_a_second_machine_loads_the_recorded_image(
    project: Path, local_store_url: str, tmp_path: Path
) -> None:
    first = aeromancy(project, local_store_url, "run", "--tracker", "none")
    assert first.returncode == 0, first.stderr
    (original,) = records(local_store_url)
    forget_images(original)

    machine = {**fresh_machine(tmp_path), "WANDB_MODE": "offline"}
    again = aeromancy(
        project,
        local_store_url,
        "rerun",
        original["run_id"],
        "--verify",
        "--tracker",
        "wandb",
        env=machine,
    )

    assert again.returncode == 0, again.stdout + again.stderr
    assert "reproduced: run" in again.stdout
    assert "loading environment image" in again.stdout
    assert "environment rebuilt" not in again.stdout
    rerun = records(local_store_url)[-1]
    assert rerun["run_id"] != original["run_id"]
    assert rerun["image_id"] == original["image_id"]
    assert rerun["environment_image_id"] == original["environment_image_id"]
    # The rerun's offline W&B run outlives the temporary worktree: it is the project's.
    run_name = str(rerun["wandb_run"]).rsplit("/", 1)[-1]
    assert list((project / "wandb").glob(f"offline-run-*-{run_name}"))
    forget_images(original)


def test_rerun_of_an_image_gone_everywhere_rebuilds_and_says_so(
    project: Path, local_store_url: str, tmp_path: Path
) -> None:
    unsaved = {"AEROMANCY_STORE_IMAGES": "0"}
    first = aeromancy(project, local_store_url, "run", "--tracker", "none", env=unsaved)
    assert first.returncode == 0, first.stderr
    (original,) = records(local_store_url)
    forget_images(original)

    again = aeromancy(
        project, local_store_url, "rerun", original["run_id"], "--verify", "--tracker", "none"
    )

    assert again.returncode == 0, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    short = original["image_id"].removeprefix("sha256:")[:12]
    notice = [line for line in lines if line.startswith("environment rebuilt: image")]
    assert notice == [
        f"environment rebuilt: image {short} of run {original['run_id']} is neither on this "
        f"Docker engine nor in the store {local_store_url}; using the image commit "
        f"{original['git_commit'][:12]} builds"
    ]
    assert any(line.startswith("reproduced: run") for line in lines)
    verdict = lines.index("environment rebuilt")
    rerun = records(local_store_url)[-1]
    assert rerun["image_id"] != original["image_id"]
    new_short = rerun["image_id"].removeprefix("sha256:")[:12]
    assert f"  image id: {short} -> {new_short}" in lines[verdict + 1 :]
    forget_images(rerun)
